import Foundation

/// Runs the work given to it one piece at a time, in the order given, on a
/// background thread of its own (`ThreadRunner`, below the default
/// priority). The thread ends once it has had nothing to do for
/// `idleTimeout` and starts again with the next piece, so an owner needs no
/// stop call and an idle owner holds no thread.
public final class SerialWorker: @unchecked Sendable {
    public let name: String
    let idleTimeout: TimeInterval
    private let condition = NSCondition()
    // Guarded by condition.
    private var work: [@Sendable () -> Void] = []
    private var next = 0
    private var running = false

    public init(name: String, idleTimeout: TimeInterval = 1) {
        self.name = name
        self.idleTimeout = idleTimeout
    }

    public func submit(_ piece: @escaping @Sendable () -> Void) {
        condition.lock()
        work.append(piece)
        let start = !running
        running = true
        condition.signal()
        condition.unlock()
        if start { ThreadRunner(name: name, background: true).start { [self] in run() } }
    }

    private func run() {
        condition.lock()
        while true {
            if next == work.count {
                work.removeAll(keepingCapacity: true)
                next = 0
                let deadline = Date(timeIntervalSinceNow: idleTimeout)
                while work.isEmpty {
                    if !condition.wait(until: deadline) && work.isEmpty {
                        running = false
                        condition.unlock()
                        return
                    }
                }
            }
            let piece = work[next]
            next += 1
            condition.unlock()
            piece()
            condition.lock()
        }
    }
}
