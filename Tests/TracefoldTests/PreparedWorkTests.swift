import Foundation
import TracefoldFold
import TracefoldMapping
import TracefoldModel
import XCTest

/// The mapping split around the ack: the request works out a span's
/// metadata updates (what its `partial_success` needs), the mapping queue
/// the rest, and the fold reads the result from the batch's slot.
final class PreparedWorkTests: XCTestCase {
    func testAPendingSlotIsFilledOnceAndItsReaderWaitsForIt() {
        let slot = PreparedWork.pending()
        XCTAssertTrue(slot.isPending)
        XCTAssertNil(slot.value(waiting: .milliseconds(20)), "nothing until it is filled")
        let copy = slot  // a batch copied into the pipeline shares the slot
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { slot.fill([7]) }
        XCTAssertEqual(copy.value(waiting: .seconds(30)) as? [Int], [7], "the reader waits for the fill")
        XCTAssertFalse(slot.fill([8]), "filled once")
        XCTAssertEqual(copy.value() as? [Int], [7])
        XCTAssertFalse(PreparedWork([1]).isPending)
    }

    /// The fold takes the work out of the slot, so that it holds the only
    /// copy: a second reader finds nothing (and maps the spans itself),
    /// and the slot stays filled.
    func testTakenWorkIsGoneFromTheSlot() {
        let slot = PreparedWork.pending()
        XCTAssertNil(slot.take(waiting: .milliseconds(20)), "nothing until it is filled")
        XCTAssertTrue(slot.fill([7]))
        XCTAssertEqual(slot.take() as? [Int], [7])
        XCTAssertNil(slot.take())
        XCTAssertNil(slot.value())
        XCTAssertFalse(slot.isPending)
        XCTAssertFalse(slot.fill([8]), "filled once, even once taken")
    }

    /// Mapping in two steps gives what one mapping gives, warnings and
    /// updates included, and the drops the request reports are the ones
    /// worked out from the whole mapping.
    func testMappingInTwoStepsIsTheSameAsInOne() {
        let big = String(repeating: "x", count: 70_000)
        let spans = [
            Conformance.S("plain", id: 1, 0, 10, ["langfuse.trace.metadata.tenant": .string("acme"), "http.method": .string("GET")]),
            Conformance.S("bad blob", id: 2, parent: 1, 1, 5, ["langfuse.observation.metadata": .string("42"), "gen_ai.request.model": .string("gpt-4o")]),
            Conformance.S("too big", id: 3, parent: 1, 2, 6, ["langfuse.trace.metadata.big": .string(big)],
                          events: [SpanEvent(timeUnixNano: 5, name: SpanMapper.metadataEventName, attributes: [Attribute("tracefold.metadata.scope", .string("nowhere"))])]),
        ]
        let mapper = SpanMapper()
        let context = SpanMapper.Context(resource: Conformance.r0, scope: Conformance.sdk)
        var drops = 0
        for span in spans {
            let updates = mapper.mapUpdates(span, context: context)
            let whole = mapper.map(span, context: context)
            XCTAssertEqual(mapper.map(span, context: context, updates: updates), whole, span.name)
            XCTAssertEqual(updates.updates, whole.updates, span.name)
            XCTAssertEqual(updates.warnings, whole.warnings, span.name)
            let fromUpdates = TraceState.stateIndependentDrops(updates, limits: MetadataLimits())
            XCTAssertEqual(fromUpdates, TraceState.stateIndependentDrops(whole, limits: MetadataLimits()), span.name)
            drops += fromUpdates.count
        }
        XCTAssertEqual(drops, 3, "the blob that is not an object, the 70 KB update and the bad event")
    }
}

/// The threads that work after the ack: below the default priority, and
/// the mapping queue's in order, ending when idle and starting again.
final class BackgroundThreadTests: XCTestCase {
    /// What a thread saw, written from the thread.
    final class Seen: @unchecked Sendable {
        let lock = NSLock()
        var values: [String] = []
        func add(_ v: String) { lock.withLock { values.append(v) } }
        var all: [String] { lock.withLock { values } }
    }

    static func niceness() -> Int32 {
        #if canImport(Glibc)
        getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        #else
        getpriority(PRIO_PROCESS, 0)
        #endif
    }

    /// The calling thread's name and nice value, as top shows them.
    static func thread() -> String {
        let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
        return name.trimmingCharacters(in: .whitespacesAndNewlines) + " \(niceness())"
    }

    func testABackgroundThreadRunsNicerAndAnotherDoesNot() {
        let base = Self.niceness()
        let seen = Seen()
        let b = ThreadRunner(name: "test-background", background: true)
        b.start { seen.add(Self.thread()) }
        b.join()
        let f = ThreadRunner(name: "test-foreground")
        f.start { seen.add(Self.thread()) }
        f.join()
        XCTAssertEqual(seen.all, ["test-background \(min(19, base + ThreadRunner.backgroundNice))", "test-foreground \(base)"])
        XCTAssertEqual(Self.niceness(), base, "the caller's own priority is left alone")
    }

    func testASerialWorkerRunsItsWorkInOrderAndStartsAgainAfterIdling() {
        let worker = SerialWorker(name: "test-serial", idleTimeout: 0.05)
        let order = Seen()
        let threads = Seen()
        func submit(_ n: Int, done: XCTestExpectation? = nil) {
            worker.submit {
                order.add(String(n))
                threads.add(Self.thread())
                done?.fulfill()
            }
        }
        let first = expectation(description: "first round")
        for n in 0..<100 { submit(n, done: n == 99 ? first : nil) }
        wait(for: [first], timeout: 30)
        Thread.sleep(forTimeInterval: 0.3)  // past the idle timeout: the thread ends
        let second = expectation(description: "second round")
        for n in 100..<110 { submit(n, done: n == 109 ? second : nil) }
        wait(for: [second], timeout: 30)
        XCTAssertEqual(order.all, (0..<110).map(String.init))
        XCTAssertEqual(Set(threads.all), ["test-serial \(min(19, Self.niceness() + ThreadRunner.backgroundNice))"])
    }
}
