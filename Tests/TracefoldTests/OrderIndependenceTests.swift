import TracefoldFold
import TracefoldMapping
import TracefoldModel
import XCTest

/// SPEC §3.3: records are a pure function of the set of distinct spans,
/// whatever the arrival order, batching or duplication.
final class OrderIndependenceTests: XCTestCase {
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var x = state
            x ^= x >> 33
            x = x &* 0xff51_afd7_ed55_8ccd
            return x ^ (x >> 33)
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }
    }

    /// A trace with conflicting trace names, user ids, tags, I/O, metadata at
    /// both levels, metadata events and an extended-trace target.
    static func spans(traceIndex: Int, rng: inout Rng) -> [(Span, Resource, InstrumentationScope)] {
        let trace = TraceID(high: 0xABCD, low: UInt64(traceIndex + 1))
        let count = 2 + rng.int(6)
        var out = [(Span, Resource, InstrumentationScope)]()
        let resources = [Conformance.r0, Resource(attributes: [Attribute("service.version", .string("v\(rng.int(3))")), Attribute("langfuse.environment", .string(rng.pick(["prod", "Staging", "langfuse-dev"])))])]
        let scopes = [Conformance.sdk, InstrumentationScope(name: "openinference.x", version: "1")]
        for i in 0..<count {
            var attrs: [String: AttributeValue] = [:]
            if rng.int(2) == 0 { attrs["langfuse.trace.name"] = .string("name-\(rng.int(4))") }
            if rng.int(2) == 0 { attrs["user.id"] = .string("u\(rng.int(3))") }
            if rng.int(2) == 0 { attrs["langfuse.trace.tags"] = .array((0..<rng.int(3)).map { _ in .string("t\(rng.int(5))") }) }
            if rng.int(3) == 0 { attrs["langfuse.trace.input"] = .string("in-\(rng.int(5))") }
            if rng.int(2) == 0 { attrs["langfuse.observation.output"] = .string(#"{"o":\#(rng.int(9))}"#) }
            if rng.int(2) == 0 { attrs["langfuse.trace.metadata.\(rng.pick(["a", "b", "c"]))"] = .string("\(rng.int(100))") }
            if rng.int(2) == 0 { attrs["langfuse.observation.metadata.\(rng.pick(["x", "y"]))"] = .string("\"v\(rng.int(9))\"") }
            if rng.int(4) == 0 { attrs["langfuse.trace.public"] = .bool(true) }
            if rng.int(4) == 0 { attrs["langfuse.observation.cost_details"] = .string(#"{"total":0.\#(rng.int(1000) + 1)}"#) }
            if rng.int(5) == 0 { attrs["langfuse.internal.as_root"] = .bool(true) }
            var events = [SpanEvent]()
            if rng.int(2) == 0 {
                events.append(MetadataModelTests.metadataEvent(#"{"k\#(rng.int(3))":\#(rng.int(50))}"#, kind: rng.pick(["billing", "", "tracefold.score"]), scope: rng.pick(["trace", "observation"]), at: UInt64(rng.int(40))))
            }
            if rng.int(3) == 0 {
                let target = Conformance.id(UInt64(rng.int(count + 2)))
                events.append(MetadataModelTests.metadataEvent(#"{"e":\#(rng.int(50))}"#, kind: "net", scope: "extended_trace", spanID: target.hex, at: UInt64(rng.int(40))))
            }
            // Equal start times on purpose: the span id must break the tie.
            let start = UInt64(rng.int(4) * 10)
            let parent: UInt64? = i == 0 && rng.int(4) != 0 ? nil : UInt64(rng.int(count + 3))
            var span = Conformance.S("op-\(i)", id: UInt64(i), parent: parent == UInt64(i) ? nil : parent, start, start + UInt64(rng.int(20)),
                                     status: rng.int(5) == 0 ? SpanStatus(code: .error, message: "e") : SpanStatus(), attrs, events: events, trace: trace)
            if rng.int(6) == 0 { span.endTimeUnixNano = 0 }
            out.append((span, rng.pick(resources), rng.pick(scopes)))
        }
        return out
    }

    static func canonical(_ items: [(Span, Resource, InstrumentationScope)]) -> String {
        var byTrace = [TraceID: [(Span, Resource, InstrumentationScope)]]()
        for item in items { byTrace[item.0.traceID, default: []].append(item) }
        var lines = [String]()
        for trace in byTrace.keys.sorted() {
            let f = Conformance.fold(byTrace[trace]!)
            lines.append(JSONWriter.serialize(.object(f.trace)))
            for id in f.observations.keys.sorted() { lines.append(JSONWriter.serialize(.object(f.observations[id]!))) }
        }
        return lines.joined(separator: "\n")
    }

    func testRecordsDoNotDependOnArrivalOrderBatchingOrDuplicates() {
        var rng = Rng(state: 20_261_121)
        for caseIndex in 0..<200 {
            var all = [(Span, Resource, InstrumentationScope)]()
            for t in 0..<(1 + rng.int(3)) { all += Self.spans(traceIndex: caseIndex * 10 + t, rng: &rng) }
            let expected = Self.canonical(all)
            for _ in 0..<3 {
                // Random order with duplicates, cut into random batches; the
                // fold sees batches one after another.
                var delivery = all
                for _ in 0..<rng.int(all.count + 1) { delivery.append(rng.pick(all)) }
                for i in stride(from: delivery.count - 1, to: 0, by: -1) { delivery.swapAt(i, rng.int(i + 1)) }
                var batches = [[(Span, Resource, InstrumentationScope)]]()
                var rest = delivery[...]
                while !rest.isEmpty {
                    let n = 1 + rng.int(rest.count)
                    batches.append(Array(rest.prefix(n)))
                    rest = rest.dropFirst(n)
                }
                XCTAssertEqual(Self.canonical(batches.flatMap { $0 }), expected, "case \(caseIndex)")
            }
        }
    }
}
