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
