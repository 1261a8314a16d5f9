import Foundation
import NIOConcurrencyHelpers
import XCTest

@testable import TracefoldCollector

final class ShutdownSignalTests: XCTestCase {
    /// SPEC §9's bound starts at SIGTERM. Under load every thread of the
    /// cooperative pool may be busy with a request, and the service group
    /// learns of the signal through a task: the watchdog must be armed
    /// without one. Here the pool is held until the arm has been seen (or
    /// 30 s have passed), so a task-based arm cannot pass.
    func testSIGTERMArmsTheWatchdogWhileTheCooperativePoolIsBusy() {
        let armed = ConditionLock(value: 0)
        let arm = ShutdownSignalArm {
            armed.lock()
            armed.unlock(withValue: 1)
        }
        // The signal's disposition stays libdispatch's: other tests' sources
        // for it need that.
        defer { arm.cancel() }
        // (started, finished, saw the arm)
        let counts = NIOLockedValueBox((started: 0, finished: 0, seen: 0))
        let width = ProcessInfo.processInfo.activeProcessorCount
        // Twice the pool's width: each task blocks its thread until the arm
        // was seen, so no pool thread is free before then. (This test runs
        // on the main thread, not in the pool.)
        for _ in 0..<width * 2 {
            Task.detached {
                counts.withLockedValue { $0.started += 1 }
                let seen = armed.lock(whenValue: 1, timeoutSeconds: 30)
                if seen { armed.unlock() }
                counts.withLockedValue {
                    $0.finished += 1
                    if seen { $0.seen += 1 }
                }
            }
        }
        // The pool is taken once `width` of them run.
        while counts.withLockedValue({ $0.started }) < width { usleep(1000) }
        kill(getpid(), SIGTERM)
        while counts.withLockedValue({ $0.finished }) < width * 2 { usleep(1000) }
        XCTAssertEqual(counts.withLockedValue { $0.seen }, width * 2, "the signal did not arm the watchdog while the pool was busy")
    }
}
