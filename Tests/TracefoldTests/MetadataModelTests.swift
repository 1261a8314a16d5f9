import TracefoldFold
import TracefoldMapping
import TracefoldModel
import XCTest

/// SPEC §4 on the OTLP path, with the cases of reference/metadata-rules.md §(c).
final class MetadataModelTests: XCTestCase {
    typealias C = Conformance

    static func metadataEvent(_ values: String, kind: String? = nil, scope: String? = nil, spanID: String? = nil, at ms: UInt64 = 1) -> SpanEvent {
        var attrs = [Attribute("tracefold.metadata.values", .string(values))]
        if let kind { attrs.append(Attribute("tracefold.metadata.kind", .string(kind))) }
        if let scope { attrs.append(Attribute("tracefold.metadata.scope", .string(scope))) }
        if let spanID { attrs.append(Attribute("tracefold.metadata.span_id", .string(spanID))) }
        return SpanEvent(timeUnixNano: (C.T + ms) * 1_000_000, name: "tracefold.metadata", attributes: attrs)
    }

    func entries(_ record: [String: JSONValue]) -> [JSONValue] { record["metadataEntries"]!.arrayValue! }

    func entry(_ record: [String: JSONValue], kind: String, scope: String) -> JSONValue? {
        entries(record).first { $0["kind"] == .string(kind) && $0["scope"] == .string(scope) }
    }

    func testSizeFormula() {
        XCTAssertEqual(JSONDecoding.updateSize(["status": .string("ok")]), 10)
        XCTAssertEqual(JSONDecoding.updateSize(["status": .string("processing")]), 18)  // T1
        XCTAssertEqual(JSONDecoding.updateSize(json(#"{ "x" : { "y" : 1 } }"#).objectValue!), 8)  // T17
        XCTAssertEqual(JSONDecoding.updateSize(["ключ": .string("é")]), 12)  // T18
        XCTAssertEqual(JSONDecoding.updateSize(["k": .string("a/b")]), 6)  // T19: 1 + 5
        XCTAssertEqual(JSONDecoding.updateSize(json(#"{"a":1,"a":2}"#).objectValue!), 2)  // T15
        XCTAssertEqual(JSONDecoding.updateSize(["n": .double(2.0)]), 2, "integers without .0")
    }

    /// T2/T3 on the OTLP path: at the limit kept, one byte over dropped with a
    /// warning, and the span kept.
    func testPerUpdateLimitAtAndOverTheByte() {
        // key "k" (1 byte) + a JSON string of n bytes including its quotes.
        func span(_ valueBytes: Int) -> Span {
            let inner = String(repeating: "x", count: valueBytes - 2)
            return C.S("s", id: 1, 0, 1, ["langfuse.trace.metadata.k": .string("\"\(inner)\"")])
        }
        let at = C.fold([span(65_535)])
        XCTAssertEqual(at.trace["metadata"]?["k"]?.stringValue?.utf8.count, 65_533)
        XCTAssertNil(entry(at.trace, kind: "tracefold.warnings", scope: "trace"))
        let over = C.fold([span(65_536)])
        XCTAssertNil(over.trace["metadata"]?["k"])
        XCTAssertEqual(over.trace["observations"]?.arrayValue?.count, 1, "the span is kept")
        let warning = entry(over.trace, kind: "tracefold.warnings", scope: "trace")?["values"]?.objectValue
        XCTAssertEqual(warning?.values.first?.stringValue, "metadata update of 65537 bytes exceeds the 65536-byte limit; dropped")
        XCTAssertEqual(entry(over.trace, kind: "tracefold.warnings", scope: "trace")?["label"], .string("Warnings"))
    }

    /// T4/T5: the cumulative limit at exactly 1 048 576 bytes and one over.
    func testCumulativeLimitAtAndOverTheByte() {
        func spans(lastValueBytes: Int) -> [Span] {
            // 16 updates of 1 + 65 535 = 65 536 bytes fill exactly 1 MiB… less one
            // update, then the last one brings it to the edge.
            var out = [Span]()
            for i in 0..<15 {
                out.append(C.S("s\(i)", id: UInt64(i + 1), parent: i == 0 ? nil : 1, UInt64(i), UInt64(i + 1), ["langfuse.trace.metadata.\(i % 10)": .string("\"\(String(repeating: "y", count: 65_535 - 2))\"")]))
            }
            // 15 × 65 536 = 983 040; 1 048 576 − 983 040 = 65 536 remains.
            out.append(C.S("last", id: 99, parent: 1, 50, 60, ["langfuse.trace.metadata.z": .string("\"\(String(repeating: "z", count: lastValueBytes - 2))\"")]))
            return out
        }
        let at = C.fold(spans(lastValueBytes: 65_535))
        XCTAssertEqual(at.state.cumulativeMetadataBytes, 1_048_576)
        XCTAssertNotNil(at.trace["metadata"]?["z"])
        let over = C.fold(spans(lastValueBytes: 65_536))
        XCTAssertEqual(over.state.cumulativeMetadataBytes, 983_040, "a rejected update counts zero")
        XCTAssertNil(over.trace["metadata"]?["z"])
        XCTAssertEqual(entry(over.trace, kind: "tracefold.warnings", scope: "trace")?["values"]?.objectValue?.count, 1)
        XCTAssertEqual(over.trace["observations"]?.arrayValue?.count, 16)
    }

    func testDuplicateSpansCountOnce() {
        let s = C.S("s", id: 1, 0, 1, ["langfuse.trace.metadata.a": .string("\"xxxx\"")])
        XCTAssertEqual(C.fold([s, s, s]).state.cumulativeMetadataBytes, 7)
    }

    func testMetadataEventsKindsScopesAndLabels() {
        let target = "00f067aa0ba902b7"
        let f = C.fold([C.S("root", id: 1, 0, 30, events: [
            Self.metadataEvent(#"{"plan":"pro","seats":3}"#, kind: "billing", scope: "trace", at: 2),
            Self.metadataEvent(#"{"step":"parse"}"#, at: 3),
            Self.metadataEvent(#"{"retries":2}"#, kind: "", scope: "step", at: 4),
            Self.metadataEvent(#"{"http.route":"/x"}"#, kind: "userland.net", scope: "extended_trace", spanID: target, at: 5),
            Self.metadataEvent(#"{"score":1}"#, kind: "tracefold.score", scope: "run", at: 6),
        ])])
        XCTAssertEqual(entry(f.trace, kind: "userland.billing", scope: "trace")?["values"], json(#"{"plan":"pro","seats":3}"#))
        XCTAssertEqual(entry(f.trace, kind: "userland.billing", scope: "trace")?["label"], .string("User Metadata (billing)"))
        XCTAssertEqual(entry(f.trace, kind: "tracefold.score", scope: "trace")?["values"], json(#"{"score":1}"#))
        XCTAssertNil(f.trace["metadata"]?["plan"], "other kinds never merge into the Langfuse view")
        let obs = f.obs(1)
        XCTAssertEqual(entry(obs, kind: "userland.default", scope: "observation")?["values"], json(#"{"retries":2,"step":"parse"}"#))
        XCTAssertEqual(entry(obs, kind: "userland.default", scope: "observation")?["label"], .string("User Metadata"))
        XCTAssertEqual(obs["metadata"]?["step"], .string("parse"))
        // The extended_trace entry waits for its span, which never arrived.
        let pending = f.state.values(EntryKey(scope: .extendedTrace, target: SpanID(hex: target)!, kind: "userland.net"))
        XCTAssertEqual(pending, ["http.route": .string("/x")])
    }

    func testExtendedTraceUpdateAttachesWhicheverArrivesFirst() {
        let addressed = C.id(2).hex
        let carrier = C.S("root", id: 1, 0, 30, events: [Self.metadataEvent(#"{"k":"v"}"#, kind: "net", scope: "extended_trace", spanID: addressed)])
        let target = C.S("http-call", id: 2, parent: 1, 5, 6)
        for order in [[carrier, target], [target, carrier]] {
            let e = entry(C.fold(order).obs(2), kind: "userland.net", scope: "extended_trace")
            XCTAssertEqual(e?["values"], json(#"{"k":"v"}"#))
            XCTAssertEqual(e?["spanId"], .string(addressed))
        }
    }

    func testBadEventsAreDroppedWithAWarning() {
        let f = C.fold([C.S("root", id: 1, 0, 30, events: [
            Self.metadataEvent("[1,2]"),
            Self.metadataEvent(#"{"a":1}"#, kind: "tracefold.internal"),
            Self.metadataEvent(#"{"a":1}"#, kind: String(repeating: "k", count: 129)),
            Self.metadataEvent(#"{"a":1}"#, scope: "extended_trace"),
            Self.metadataEvent(#"{"a":1}"#, kind: String(repeating: "k", count: 119)),
        ])])
        XCTAssertEqual(entry(f.trace, kind: "tracefold.warnings", scope: "trace")?["values"]?.objectValue?.count, 4)
        // T11/T12: merge in any case is accepted; any other op is dropped with a warning.
        func withOp(_ op: String) -> SpanEvent {
            var e = Self.metadataEvent(#"{"o":1}"#, kind: "ops", scope: "trace")
            e.attributes.append(Attribute("tracefold.metadata.op", .string(op)))
            return e
        }
        let ops = C.fold([C.S("root", id: 1, 0, 30, events: [withOp("MERGE"), withOp("delete"), withOp("replace")])])
        XCTAssertEqual(entry(ops.trace, kind: "userland.ops", scope: "trace")?["values"], json(#"{"o":1}"#))
        let opWarnings = entry(ops.trace, kind: "tracefold.warnings", scope: "trace")?["values"]?.objectValue
        XCTAssertEqual(opWarnings?.values.compactMap(\.stringValue).sorted(), ["unsupported op \"delete\"", "unsupported op \"replace\""])
        // A 119-byte user kind becomes "userland." + 119 = 128 bytes: accepted.
        XCTAssertNotNil(entry(f.obs(1), kind: "userland." + String(repeating: "k", count: 119), scope: "observation"))
    }

    func testSystemExtractors() {  // T30
        let f = C.fold([C.S("llm", id: 1, 0, 5, [
            "gen_ai.request.model": .string("gpt-4o"), "gen_ai.usage.input_tokens": .int(12), "gen_ai.response.finish_reasons": .array([.string("stop")]),
            "http.request.method": .string("POST"), "http.response.status_code": .int(200), "url.full": .string("https://api/x"),
        ])])
        let ai = entry(f.obs(1), kind: "tracefold.ai", scope: "extended_trace")
        XCTAssertEqual(ai?["values"], json(#"{"gen_ai.request.model":"gpt-4o","gen_ai.response.finish_reasons":["stop"],"gen_ai.usage.input_tokens":12}"#))
        XCTAssertEqual(ai?["label"], .string("AI Metadata"))
        XCTAssertEqual(entry(f.obs(1), kind: "tracefold.http", scope: "extended_trace")?["values"], json(#"{"http.request.method":"POST","http.response.status_code":200,"url.full":"https://api/x"}"#))
    }

    func testInternalAttributesAreStripped() {  // T27
        let scope = InstrumentationScope(name: "custom")
        let f = C.fold([C.S("s", id: 1, 0, 1, ["_tracefold.metadata.kind": .string("x"), "ok": .int(1)])],
                       resource: Resource(attributes: [Attribute("_tracefold.tenant", .string("forged"))]), scope: scope)
        let m = f.obs(1)["metadata"]!
        XCTAssertEqual(m["attributes"], json(#"{"ok":1}"#))
        XCTAssertEqual(m["resourceAttributes"], json("{}"))
    }

    func testTraceBlobAndPrefixedKeys() {  // T28, T29
        let f = C.fold([
            C.S("root", id: 1, 0, 30, ["langfuse.trace.metadata": .string(#"{"a":1,"b":2}"#), "langfuse.trace.metadata.a": .int(3)]),
            C.S("child", id: 2, parent: 1, 1, 2, ["langfuse.observation.metadata.step": .string("parse")]),
        ])
        XCTAssertEqual(f.trace["metadata"]?["a"], .int(3))
        XCTAssertEqual(f.trace["metadata"]?["b"], .int(2))
        XCTAssertNil(f.trace["metadata"]?["step"])
        XCTAssertEqual(f.obs(2)["metadata"]?["step"], .string("parse"))
    }

    /// T13, T14, T15, T24: shallow merge by order key, null stored, the last
    /// duplicate key wins, kinds never merge.
    func testMergeSemanticsOfEvents() {
        let f = C.fold([C.S("root", id: 1, 0, 30, events: [
            Self.metadataEvent(#"{"a":1,"b":{"x":1}}"#, scope: "trace", at: 1),
            Self.metadataEvent(#"{"b":{"y":2}}"#, scope: "trace", at: 2),
            Self.metadataEvent(#"{"c":1,"c":2}"#, scope: "trace", at: 3),
            Self.metadataEvent(#"{"a":null}"#, scope: "trace", at: 4),
            Self.metadataEvent(#"{"a":2}"#, kind: "billing", scope: "trace", at: 5),
        ])])
        XCTAssertEqual(entry(f.trace, kind: "userland.default", scope: "trace")?["values"], json(#"{"a":null,"b":{"y":2},"c":2}"#))
        XCTAssertEqual(entry(f.trace, kind: "userland.billing", scope: "trace")?["values"], json(#"{"a":2}"#))
        XCTAssertEqual(f.trace["metadata"]?["a"], .null)
        // Events in the opposite order: the order key, not arrival, decides.
        let reversed = C.fold([C.S("root", id: 1, 0, 30, events: [
            Self.metadataEvent(#"{"a":null}"#, scope: "trace", at: 4),
            Self.metadataEvent(#"{"b":{"y":2}}"#, scope: "trace", at: 2),
            Self.metadataEvent(#"{"a":1,"b":{"x":1}}"#, scope: "trace", at: 1),
        ])])
        XCTAssertEqual(entry(reversed.trace, kind: "userland.default", scope: "trace")?["values"], json(#"{"a":null,"b":{"y":2}}"#))
    }

    func testUsageReportsMergedBytes() {  // T6
        let f = C.fold([
            C.S("a", id: 1, 0, 1, events: [Self.metadataEvent(#"{"a":"xxxx"}"#, scope: "trace", at: 1)]),
            C.S("b", id: 2, parent: 1, 2, 3, events: [Self.metadataEvent(#"{"a":"xxxx"}"#, scope: "trace", at: 2)]),
        ])
        let usage = entry(f.trace, kind: "tracefold.usage", scope: "trace")?["values"]
        XCTAssertEqual(usage?["metadataBytes"], .int(7))
        XCTAssertEqual(usage?["acceptedUpdateBytes"], .int(14))
    }
}
