import OTLP
import TracefoldModel
import XCTest

final class OTLPProtobufDecoderTests: XCTestCase {
    func testEveryFieldRoundTripsThroughProtobufC() throws {
        var batch = Fixtures.batch([Fixtures.fullSpan])
        batch.resourceSpans[0].schemaURL = "https://opentelemetry.io/schemas/1.21.0"
        batch.resourceSpans[0].resource.droppedAttributesCount = 6
        batch.resourceSpans[0].scopeSpans[0].schemaURL = "https://scope"
        batch.resourceSpans[0].scopeSpans[0].scope.attributes = [Attribute("sa", .bool(true))]
        batch.resourceSpans[0].scopeSpans[0].scope.droppedAttributesCount = 2
        let decoded = try OTLPProtobufDecoder.decode(OTLPProtobufEncoder.encode(batch))
        XCTAssertEqual(decoded.rejectedSpans, 0)
        XCTAssertEqual(decoded.batch, batch)
    }

    /// The encoder writes nested messages in place and moves them up when
    /// their length needs a second or third varint byte: messages of 127,
    /// 128, 16,383 and 16,384 bytes and more, nested, must still decode.
    func testMessagesPastEachLengthPrefixSizeRoundTrip() throws {
        for size in [0, 100, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 16_370, 16_376, 16_377, 16_378, 16_383, 16_384, 2_100_000] {
            var span = Fixtures.span(1)
            span.attributes = [Attribute("k", .string(String(repeating: "x", count: size))),
                               Attribute("nested", .kvlist([Attribute("a", .array([.string(String(repeating: "y", count: size))]))]))]
            let batch = Fixtures.batch([span])
            let decoded = try OTLPProtobufDecoder.decode(OTLPProtobufEncoder.encode(batch))
            XCTAssertEqual(decoded.batch, batch, "value of \(size) bytes")
        }
    }

    /// Found by the protobuf fuzzer in CI: protobuf-c keeps a negative enum
    /// varint as is, Swift imports the C enum as UInt32, and the Int32
    /// conversion trapped; one request could kill the collector.
    func testNegativeEnumValuesReadAsUnspecified() throws {
        var w = ProtobufWriter()
        w.message(1) { rs in
            rs.message(2) { ss in
                ss.message(2) { span in
                    span.bytes(1, [UInt8](repeating: 1, count: 16))
                    span.bytes(2, [UInt8](repeating: 2, count: 8))
                    span.string(5, "s")
                    span.int64(6, -105)
                    span.message(15) { status in status.int64(3, -1) }
                }
            }
        }
        let decoded = try OTLPProtobufDecoder.decode(w.bytes)
        let span = try XCTUnwrap(decoded.batch.resourceSpans.first?.scopeSpans.first?.spans.first)
        XCTAssertEqual(span.kind, .unspecified)
        XCTAssertEqual(span.status.code, .unset)
    }

    func testTruncatedBodyIsADecodeError() throws {
        let bytes = OTLPProtobufEncoder.encode(Fixtures.batch([Fixtures.fullSpan]))
        XCTAssertThrowsError(try OTLPProtobufDecoder.decode(Array(bytes.dropLast(5))))
        XCTAssertThrowsError(try OTLPProtobufDecoder.decode([0xFF, 0xFF, 0xFF]))
    }

    func testEmptyBodyIsAnEmptyRequest() throws {
        XCTAssertEqual(try OTLPProtobufDecoder.decode([]).batch.spanCount, 0)
    }

    /// Spans with bad ids, written at the wire level because the span model
    /// cannot hold them.
    static func requestWithIDs(_ ids: [(trace: [UInt8], span: [UInt8], parent: [UInt8])]) -> [UInt8] {
        var w = ProtobufWriter()
        w.message(1) { rs in
            rs.message(2) { ss in
                for id in ids {
                    ss.message(2) { s in
                        s.bytes(1, id.trace)
                        s.bytes(2, id.span)
                        if !id.parent.isEmpty { s.bytes(4, id.parent) }
                        s.string(5, "x")
                    }
                }
            }
        }
        return w.bytes
    }

    func testInvalidIdsAreRejectedSpanBySpan() throws {
        let good = Fixtures.traceID.bytes
        let body = Self.requestWithIDs([
            (good, [1, 2, 3, 4, 5, 6, 7, 8], []),
            (Array(good.prefix(12)), [1, 2, 3, 4, 5, 6, 7, 9], []),
            (good, [0, 0, 0, 0, 0, 0, 0, 0], []),
            (good, [1, 2, 3], []),
            (good, [1, 2, 3, 4, 5, 6, 7, 10], [1, 2, 3]),
            ([UInt8](repeating: 0, count: 16), [1, 2, 3, 4, 5, 6, 7, 11], []),
        ])
        let d = try OTLPProtobufDecoder.decode(body)
        XCTAssertEqual(d.batch.spanCount, 1)
        XCTAssertEqual(d.rejectedSpans, 5)
        XCTAssertEqual(d.partialSuccessMessage, "5 spans rejected: trace_id must be 16 bytes, got 12")
    }

    func testResponsesInProtobuf() {
        XCTAssertEqual(OTLPResponse.export(rejectedSpans: 0, errorMessage: nil, encoding: .protobuf), [])
        var r = WireReader(OTLPResponse.export(rejectedSpans: 2, errorMessage: "2 spans rejected: x", encoding: .protobuf))
        let outer = r.fields()
        var inner = WireReader(outer[1]![0] as! [UInt8])
        let partial = inner.fields()
        XCTAssertEqual(partial[1]![0] as? UInt64, 2)
        XCTAssertEqual(String(decoding: partial[2]![0] as! [UInt8], as: UTF8.self), "2 spans rejected: x")

        var s = WireReader(OTLPResponse.status(httpStatus: 400, message: "bad", encoding: .protobuf))
        let status = s.fields()
        XCTAssertEqual(status[1]![0] as? UInt64, 3)
        XCTAssertEqual(String(decoding: status[2]![0] as! [UInt8], as: UTF8.self), "bad")
    }

    func testContentTypeParsing() {
        XCTAssertEqual(OTLPEncoding(contentType: "application/x-protobuf"), .protobuf)
        XCTAssertEqual(OTLPEncoding(contentType: "application/json; charset=utf-8"), .json)
        XCTAssertEqual(OTLPEncoding(contentType: "Application/JSON"), .json)
        XCTAssertNil(OTLPEncoding(contentType: "text/plain"))
        XCTAssertNil(OTLPEncoding(contentType: "application/protobuf"))
    }
}

import TracefoldMapping

/// Values that used to trap in the mapper (found while fixing the fuzzer's
/// enum crash): each is a span anyone can send.
final class MapperTrapTests: XCTestCase {
    func testOutOfRangeNumbersAndTimesDoNotTrap() {
        let span = Span(
            traceID: TraceID(high: 1, low: 1), spanID: SpanID(1), parentSpanID: nil, name: "g", kind: .internal,
            startTimeUnixNano: 1, endTimeUnixNano: 2,
            attributes: [
                Attribute("langfuse.observation.type", .string("generation")),
                Attribute("langfuse.observation.usage_details", .string(#"{"input": 9223372036854775807, "output": 9223372036854775807}"#)),
                Attribute("langfuse.observation.prompt.version", .double(1e300)),
                Attribute("langfuse.observation.completion_start_time", .string(#""9999-12-31T23:59:59Z""#)),
            ]
        )
        let mapped = SpanMapper().map(span, resource: Resource(), scope: InstrumentationScope())
        XCTAssertEqual(mapped.observation.usageDetails["total"], .double(1.8446744073709552e19), "a sum past Int64 is a double")
        XCTAssertNil(mapped.observation.promptVersion)
        XCTAssertNil(mapped.observation.completionStartTime, "past 2554 is out of range")
        XCTAssertEqual(ISOTime.parse("2554-07-21T23:34:32Z"), 18_446_744_072_000_000_000)
        XCTAssertNil(ISOTime.parse("2554-07-21T23:34:33Z"))
    }
}
