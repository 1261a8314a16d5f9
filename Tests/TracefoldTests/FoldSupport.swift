import TracefoldFold
import TracefoldMapping
import TracefoldModel
import XCTest

/// Builds spans in the notation of reference/langfuse.md §(e):
/// `S(name, parent, start..end, status, {attrs})`, times in ms after T.
enum Conformance {
    static let T: UInt64 = 1_700_000_000_000
    static let trace = TraceID(hex: "2cce18f7a1b2c3d4e5f60718293a8391")!
    static let r0 = Resource(attributes: [Attribute("telemetry.sdk.language", .string("python")), Attribute("service.name", .string("svc"))])
    static let sdk = InstrumentationScope(name: "langfuse-sdk", version: "5.0.4", attributes: [Attribute("public_key", .string("pk"))])

    static func id(_ n: UInt64) -> SpanID { SpanID(0xA000 + n) }

    static func S(
        _ name: String, id n: UInt64, parent: UInt64? = nil, _ start: UInt64, _ end: UInt64? = nil,
        status: SpanStatus = SpanStatus(), _ attrs: [String: AttributeValue] = [:], events: [SpanEvent] = [], trace: TraceID = trace
    ) -> Span {
        Span(
            traceID: trace, spanID: id(n), parentSpanID: parent.map(id), name: name, kind: .internal,
            startTimeUnixNano: (T + start) * 1_000_000, endTimeUnixNano: end.map { (T + $0) * 1_000_000 } ?? 0,
            attributes: attrs.sorted { $0.key < $1.key }.map { Attribute($0.key, $0.value) }, events: events, status: status
        )
    }

    struct Folded {
        var trace: [String: JSONValue]
        var observations: [String: [String: JSONValue]]
        var state: TraceState

        func obs(_ n: UInt64) -> [String: JSONValue] { observations[Conformance.id(n).hex]! }
    }

    /// Maps and folds spans in the given order, skipping repeated keys as the
    /// store does, and renders the records.
    static func fold(
        _ spans: [Span], resource: Resource = r0, scope: InstrumentationScope = sdk, limits: MetadataLimits = MetadataLimits()
    ) -> Folded {
        fold(spans.map { ($0, resource, scope) }, limits: limits)
    }

    static func fold(_ items: [(Span, Resource, InstrumentationScope)], limits: MetadataLimits = MetadataLimits()) -> Folded {
        let mapper = SpanMapper()
        var state = TraceState(traceID: items[0].0.traceID)
        var seen = Set<SpanKey>()
        var observations = [SpanID: Observation]()
        for (span, resource, scope) in items where seen.insert(span.key).inserted {
            let mapped = mapper.map(span, resource: resource, scope: scope)
            observations[span.spanID] = mapped.observation
            state.add(mapped, limits: limits)
        }
        return Folded(
            trace: record(RecordRenderer.trace(state) { observations[$0] }.json),
            observations: Dictionary(uniqueKeysWithValues: observations.map { ($0.key.hex, record(RecordRenderer.observation($0.value, state: state).json)) }),
            state: state
        )
    }
}

func json(_ s: String) -> JSONValue { try! JSONParser.parse(s) }

/// A rendered record as the query API reads it back. The bytes must be what
/// `JSONWriter` writes for the parsed object (keys sorted, one spelling of
/// each value), as the records were when they were built as dictionaries.
func record(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [String: JSONValue] {
    let parsed = try! JSONParser.parse(bytes)
    XCTAssertEqual(JSONWriter.serialize(parsed), String(decoding: bytes, as: UTF8.self), "a record's keys are out of order", file: file, line: line)
    return parsed.objectValue!
}
