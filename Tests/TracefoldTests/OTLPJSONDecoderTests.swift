import Foundation
import OTLP
import TracefoldModel
import XCTest

/// One test per OTLP/JSON quirk of SPEC §1.5.
final class OTLPJSONDecoderTests: XCTestCase {
    private func decode(_ json: String) throws -> DecodedExport {
        try OTLPJSONDecoder.decode(Array(json.utf8))
    }

    private func request(span: String, resource: String = "", scope: String = #""scope":{"name":"s"},"#) -> String {
        #"{"resourceSpans":[{\#(resource)"scopeSpans":[{\#(scope)"spans":[\#(span)]}]}]}"#
    }

    private func onlySpan(_ d: DecodedExport, file: StaticString = #filePath, line: UInt = #line) throws -> Span {
        XCTAssertEqual(d.batch.spanCount, 1, file: file, line: line)
        return try XCTUnwrap(d.batch.resourceSpans.first?.scopeSpans.first?.spans.first, file: file, line: line)
    }

    func testHexIdsInEitherCaseAreStoredLowercase() throws {
        let d = try decode(request(span: #"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19b7ec3c1B174","parentSpanId":"0A0B0C0D0E0F1011"}"#))
        let span = try onlySpan(d)
        XCTAssertEqual(span.traceID.hex, "5b8efff798038103d269b633813fc60c")
        XCTAssertEqual(span.spanID.hex, "eee19b7ec3c1b174")
        XCTAssertEqual(span.parentSpanID?.hex, "0a0b0c0d0e0f1011")
        // The bytes the stores bind, in the same order as the hex.
        XCTAssertEqual(span.traceID.bytes, HexCoding.decode("5b8efff798038103d269b633813fc60c"))
        XCTAssertEqual(span.traceID.data, Data(HexCoding.decode("5b8efff798038103d269b633813fc60c")!))
        XCTAssertEqual(span.spanID.bytes, HexCoding.decode("eee19b7ec3c1b174"))
        XCTAssertEqual(span.spanID.data, Data(HexCoding.decode("eee19b7ec3c1b174")!))
        XCTAssertEqual(TraceID(high: .max, low: 0).hex, "ffffffffffffffff0000000000000000")
    }

    func testInt64AsStringOrNumber() throws {
        let d = try decode(request(span: #"""
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
             "attributes":[{"key":"s","value":{"intValue":"42"}},{"key":"n","value":{"intValue":42}},
                           {"key":"neg","value":{"intValue":"-9223372036854775808"}}]}
            """#))
        let span = try onlySpan(d)
        XCTAssertEqual(span.startTimeUnixNano, 1_544_712_660_000_000_000)
        XCTAssertEqual(span.endTimeUnixNano, 1_544_712_661_000_000_000)
        XCTAssertEqual(span.attributes, [Attribute("s", .int(42)), Attribute("n", .int(42)), Attribute("neg", .int(Int64.min))])
    }

    func testEnumsAsIntegerOrName() throws {
        let byName = try onlySpan(decode(request(span: #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_ERROR","message":"x"}}"#)))
        XCTAssertEqual(byName.kind, .client)
        XCTAssertEqual(byName.status, SpanStatus(code: .error, message: "x"))
        let byNumber = try onlySpan(decode(request(span: #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":3,"status":{"code":2}}"#)))
        XCTAssertEqual(byNumber.kind, .client)
        XCTAssertEqual(byNumber.status.code, .error)
    }

    func testUnknownEnumNameRejectsOnlyThatSpan() throws {
        let d = try decode(request(span: #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_NOPE"},{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175"}"#))
        XCTAssertEqual(d.batch.spanCount, 1)
        XCTAssertEqual(d.rejectedSpans, 1)
        XCTAssertEqual(d.partialSuccessMessage, "1 spans rejected: unknown span kind at resourceSpans[0].scopeSpans[0].spans[0].kind")
    }

    func testSnakeCaseKeysEverywhere() throws {
        let json = #"""
            {"resource_spans":[{"resource":{"attributes":[{"key":"r","value":{"string_value":"rv"}}],"dropped_attributes_count":1},
              "schema_url":"https://r","scope_spans":[{"scope":{"name":"s","version":"1","dropped_attributes_count":2},"schema_url":"https://s",
              "spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","parent_span_id":"0102030405060708",
                "trace_state":"a=b","start_time_unix_nano":"5","end_time_unix_nano":"6","dropped_attributes_count":7,
                "dropped_events_count":8,"dropped_links_count":9,
                "attributes":[{"key":"i","value":{"int_value":"1"}},{"key":"b","value":{"bool_value":true}},
                  {"key":"d","value":{"double_value":1.5}},{"key":"y","value":{"bytes_value":"AAE="}},
                  {"key":"a","value":{"array_value":{"values":[{"string_value":"x"}]}}},
                  {"key":"k","value":{"kvlist_value":{"values":[{"key":"z","value":{"int_value":2}}]}}}],
                "events":[{"time_unix_nano":"5","name":"e","dropped_attributes_count":1}],
                "links":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"0102030405060708","trace_state":"l=1","dropped_attributes_count":3}]}]}]}]}
            """#
        let d = try decode(json)
        let rs = try XCTUnwrap(d.batch.resourceSpans.first)
        XCTAssertEqual(rs.schemaURL, "https://r")
        XCTAssertEqual(rs.resource, Resource(attributes: [Attribute("r", .string("rv"))], droppedAttributesCount: 1))
        XCTAssertEqual(rs.scopeSpans.first?.schemaURL, "https://s")
        XCTAssertEqual(rs.scopeSpans.first?.scope, InstrumentationScope(name: "s", version: "1", droppedAttributesCount: 2))
        let span = try onlySpan(d)
        XCTAssertEqual(span.parentSpanID, SpanID(hex: "0102030405060708"))
        XCTAssertEqual(span.traceState, "a=b")
        XCTAssertEqual(span.startTimeUnixNano, 5)
        XCTAssertEqual(span.endTimeUnixNano, 6)
        XCTAssertEqual(span.droppedAttributesCount, 7)
        XCTAssertEqual(span.droppedEventsCount, 8)
        XCTAssertEqual(span.droppedLinksCount, 9)
        XCTAssertEqual(span.attributes, [
            Attribute("i", .int(1)), Attribute("b", .bool(true)), Attribute("d", .double(1.5)), Attribute("y", .bytes([0, 1])),
            Attribute("a", .array([.string("x")])), Attribute("k", .kvlist([Attribute("z", .int(2))])),
        ])
        XCTAssertEqual(span.events, [SpanEvent(timeUnixNano: 5, name: "e", droppedAttributesCount: 1)])
        XCTAssertEqual(span.links, [SpanLink(traceID: Fixtures.traceID.bytes, spanID: [1, 2, 3, 4, 5, 6, 7, 8], traceState: "l=1", droppedAttributesCount: 3)])
    }

    func testUnknownFieldsAreIgnoredAtEveryLevel() throws {
        let plain = try decode(request(span: #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"n","attributes":[{"key":"a","value":{"stringValue":"v"}}]}"#))
        let noisy = try decode(#"""
            {"fooBar":{"x":[1,2]},"resourceSpans":[{"fooBar":1,"scopeSpans":[{"fooBar":null,"scope":{"name":"s","fooBar":true},
              "spans":[{"fooBar":{"deep":{}},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"n",
                "attributes":[{"key":"a","fooBar":"z","value":{"stringValue":"v","fooBar":3}}]}]}]}]}
            """#)
        XCTAssertEqual(plain.batch, noisy.batch)
        XCTAssertEqual(noisy.rejectedSpans, 0)
    }

    func testBytesValueIsBase64() throws {
        let span = try onlySpan(decode(request(span: #"""
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[
              {"key":"std","value":{"bytesValue":"AAH+/w=="}},{"key":"url","value":{"bytesValue":"AAH-_w"}},{"key":"empty","value":{"bytesValue":""}}]}
            """#)))
        XCTAssertEqual(span.attributes, [Attribute("std", .bytes([0, 1, 254, 255])), Attribute("url", .bytes([0, 1, 254, 255])), Attribute("empty", .bytes([]))])
    }

    func testInvalidBase64IsADecodeError() {
        XCTAssertThrowsError(try decode(request(span: #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{"key":"x","value":{"bytesValue":"!!"}}]}"#)))
    }

    func testNaNAndInfinityStringsForDoubles() throws {
        let span = try onlySpan(decode(request(span: #"""
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[
              {"key":"nan","value":{"doubleValue":"NaN"}},{"key":"inf","value":{"doubleValue":"Infinity"}},
              {"key":"ninf","value":{"doubleValue":"-Infinity"}},{"key":"num","value":{"doubleValue":2}},{"key":"str","value":{"doubleValue":"0.5"}}]}
            """#)))
        guard case .double(let nan) = span.attributes[0].value else { return XCTFail("not a double") }
        XCTAssertTrue(nan.isNaN)
        XCTAssertEqual(span.attributes[1].value, .double(.infinity))
        XCTAssertEqual(span.attributes[2].value, .double(-.infinity))
        XCTAssertEqual(span.attributes[3].value, .double(2))
        XCTAssertEqual(span.attributes[4].value, .double(0.5))
    }

    func testInvalidIdsRejectEachSpanAndKeepTheRest() throws {
        let spans = [
            #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}"#,
            #"{"traceId":"","spanId":"eee19b7ec3c1b174"}"#,  // empty → zero length
            #"{"traceId":"00000000000000000000000000000000","spanId":"eee19b7ec3c1b174"}"#,
            #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000000"}"#,
            #"{"traceId":"W46/95gDgQPSabYzgT/GDA==","spanId":"eee19b7ec3c1b174"}"#,  // base64, not hex
            #"{"traceId":"5b8efff798038103d269b633813fc6","spanId":"eee19b7ec3c1b174"}"#,  // 15 bytes
            #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"0102"}"#,
            #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b176","parentSpanId":"0000000000000000"}"#,
        ]
        let d = try decode(request(span: spans.joined(separator: ",")))
        XCTAssertEqual(d.batch.spanCount, 2)
        XCTAssertEqual(d.rejectedSpans, 6)
        XCTAssertEqual(d.partialSuccessMessage, "6 spans rejected: trace_id must be 16 bytes, got 0")
        let kept = d.batch.resourceSpans[0].scopeSpans[0].spans
        XCTAssertNil(kept[1].parentSpanID, "an all-zero parent means no parent")
    }

    func testNotJSONOrNotAnObjectIsADecodeError() {
        for body in ["", "{", "[1,2]", "\"x\"", #"{"resourceSpans":5}"#, #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":7}]}]}]}"#] {
            XCTAssertThrowsError(try decode(body), "body \(body)")
        }
    }

    func testEmptyRequestDecodesToNoSpans() throws {
        XCTAssertEqual(try decode("{}").batch.spanCount, 0)
        XCTAssertEqual(try decode(#"{"resourceSpans":[]}"#).batch.spanCount, 0)
    }

    func testNestingDepthIsBounded() throws {
        var value = #"{"stringValue":"leaf"}"#
        for _ in 0..<100 { value = #"{"arrayValue":{"values":[\#(value)]}}"# }
        let d = try decode(request(span: #"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","attributes":[{"key":"deep","value":\#(value)}]}"#))
        XCTAssertEqual(d.batch.spanCount, 0)
        XCTAssertEqual(d.rejectedSpans, 1)
    }
}

final class OTLPJSONEncoderTests: XCTestCase {
    /// A spans_jsonl line decodes back, through the OTLP/JSON decoder, to the
    /// span it was written from.
    func testSpanLineRoundTripsThroughTheJSONDecoder() throws {
        let batch = Fixtures.batch([Fixtures.fullSpan])
        var w = JSONWriter()
        batch.forEachSpan { span, resource, scope in OTLPJSONEncoder.spanLine(span, resource: resource, scope: scope, into: &w) }
        let line = try JSONParser.parse(w.bytes)
        XCTAssertEqual(JSONWriter.serialize(line).utf8.count, w.bytes.count, "keys are written in canonical (sorted) order")
        var span = line.objectValue!
        let resource = span.removeValue(forKey: "resource")!
        let scope = span.removeValue(forKey: "scope")!
        let request: JSONValue = .object(["resourceSpans": .array([.object([
            "resource": resource,
            "scopeSpans": .array([.object(["scope": scope, "spans": .array([.object(span)])])]),
        ])])])
        XCTAssertEqual(try OTLPJSONDecoder.decode(Array(JSONWriter.serialize(request).utf8)).batch, batch)
    }
}
