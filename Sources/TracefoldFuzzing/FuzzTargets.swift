import Compression
import OTLP
import TracefoldMapping
import TracefoldModel

/// The bodies of the libFuzzer targets under `Fuzz/`, kept in an ordinary
/// library so the XCTest suite replays every committed seed and every crash
/// the fuzzers found (`Fuzz/corpus/`, `Fuzz/regressions/`) on each test run,
/// without the fuzzer build. Each one feeds untrusted bytes to one intake
/// stage and checks an invariant that must hold for any input; a broken
/// invariant traps, which libFuzzer reports as a crash.
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "protobuf": protobuf, "json": json, "gzip": gzip, "metadata": metadata,
    ]

    /// protobuf → span model → mapper. The collector's decoder and the
    /// protobuf-c reference must both refuse a body or both take it, with
    /// the same spans and rejections; what decodes must re-encode to bytes
    /// that decode to the same model, with every span valid.
    public static func protobuf(_ bytes: [UInt8]) {
        let decoded = try? OTLPDecoder.decode(bytes, encoding: .protobuf)
        let reference = try? ProtobufCDecoder.decode(bytes)
        precondition((decoded == nil) == (reference == nil), "protobuf-c \(reference == nil ? "refuses" : "takes") a body the decoder \(decoded == nil ? "refuses" : "takes")")
        guard let decoded, let reference else { return }
        precondition(decoded.rejectedSpans == reference.rejectedSpans && decoded.firstRejection == reference.firstRejection, "rejections differ from protobuf-c's")
        // Bytes, not values: NaN attributes are equal only bit for bit.
        precondition(OTLPProtobufEncoder.encode(decoded.batch) == OTLPProtobufEncoder.encode(reference.batch), "spans differ from protobuf-c's")
        checkRoundTrip(decoded)
        mapAll(decoded.batch)
    }

    /// OTLP/JSON → span model → mapper, with the same round trip through
    /// protobuf.
    public static func json(_ bytes: [UInt8]) {
        guard let decoded = try? OTLPDecoder.decode(bytes, encoding: .json) else { return }
        checkRoundTrip(decoded)
        mapAll(decoded.batch)
    }

    /// Streaming gzip and deflate with the body limit: the output never
    /// passes the limit, and feeding the stream in pieces (the first byte
    /// picks the piece size) gives the same answer as feeding it whole.
    public static func gzip(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let stream = Array(bytes.dropFirst())
        let piece = Int(first) + 1
        for coding in [ContentCoding.gzip, .deflate] {
            let limit = 1 << 16
            let whole = inflate(stream, coding: coding, limit: limit, piece: stream.count + 1)
            let pieces = inflate(stream, coding: coding, limit: limit, piece: piece)
            if case .success(let out) = whole { precondition(out.count <= limit, "inflated past the limit") }
            precondition(whole == pieces, "chunked inflate differs from whole inflate")
        }
        // And what we compress, we inflate back.
        if stream.count <= 1 << 16 {
            precondition(inflate(Gzip.compress(stream), coding: .gzip, limit: 1 << 16, piece: piece) == .success(stream), "gzip round trip")
        }
    }

    /// Metadata JSON: parsing, the canonical compact form and the SPEC §4.5
    /// size. The canonical form parses back to the same value, its length is
    /// the value's canonical size, and the mapper takes the text as a
    /// Langfuse metadata attribute and as a `tracefold.metadata` event.
    /// The one-pass canonical text of an input or output (`JSONText`) is
    /// the same bytes as parsing the text and writing the value.
    public static func metadata(_ bytes: [UInt8]) {
        if let value = try? JSONParser.parse(bytes) {
            let canonical = JSONWriter.serialize(value)
            precondition(JSONDecoding.canonicalSize(value) == canonical.utf8.count, "canonical size")
            guard let reparsed = try? JSONParser.parse(canonical) else { preconditionFailure("the canonical form does not parse: \(canonical)") }
            precondition(JSONWriter.serialize(reparsed) == canonical, "the canonical form is not stable")
            if case .object(let values) = value {
                let size = values.reduce(0) { $0 + $1.key.utf8.count + JSONWriter.serialize($1.value).utf8.count }
                precondition(JSONDecoding.updateSize(values) == size, "update size")
            }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        precondition(JSONText.decoding(text) == JSONText(JSONDecoding.decodeIfJSON(text)), "the one-pass canonical text differs")
        let span = Span(
            traceID: TraceID(high: 1, low: 1), spanID: SpanID(1), parentSpanID: nil, name: "fuzz", kind: .internal,
            startTimeUnixNano: 1, endTimeUnixNano: 2,
            attributes: [Attribute("langfuse.trace.metadata", .string(text)), Attribute("langfuse.observation.metadata.k", .string(text))],
            events: [
                SpanEvent(timeUnixNano: 1, name: SpanMapper.metadataEventName, attributes: [
                    Attribute("tracefold.metadata.values", .string(text)), Attribute("tracefold.metadata.kind", .string("billing")),
                ]),
                SpanEvent(timeUnixNano: 1, name: SpanMapper.metadataEventName, attributes: [
                    Attribute("tracefold.metadata.values", .string(text)), Attribute("tracefold.metadata.scope", .string("extended_trace")),
                    Attribute("tracefold.metadata.span_id", .string(String(text.prefix(16)))),
                ]),
            ]
        )
        let mapped = SpanMapper().map(span, resource: Resource(), scope: InstrumentationScope())
        // Values are kept as text: the size counted from it is the size of
        // the values it parses to.
        for update in mapped.updates {
            precondition(update.size == JSONDecoding.updateSize(update.values.mapValues(\.value)), "update size of the kept text")
        }
    }

    private static func checkRoundTrip(_ decoded: DecodedExport) {
        let encoded = OTLPProtobufEncoder.encode(decoded.batch)
        guard let again = try? OTLPDecoder.decode(encoded, encoding: .protobuf) else { preconditionFailure("re-encoded batch does not decode") }
        precondition(again.rejectedSpans == 0, "a re-encoded accepted span is rejected: \(again.firstRejection ?? "")")
        precondition(again.batch.spanCount == decoded.batch.spanCount, "span count changed in the round trip")
        // Bytes, not values: NaN attributes are equal only bit for bit.
        precondition(OTLPProtobufEncoder.encode(again.batch) == encoded, "the round trip changed a span")
    }

    private static func mapAll(_ batch: SpanBatch) {
        let mapper = SpanMapper()
        for rs in batch.resourceSpans {
            for ss in rs.scopeSpans {
                for span in ss.spans { _ = mapper.map(span, resource: rs.resource, scope: ss.scope) }
            }
        }
    }

    private enum Inflated: Equatable {
        case success([UInt8])
        case limitExceeded
        case corrupt
    }

    private static func inflate(_ stream: [UInt8], coding: ContentCoding, limit: Int, piece: Int) -> Inflated {
        let inflater = StreamingInflater(coding: coding, limit: limit)
        do {
            var offset = 0
            while offset < stream.count {
                let end = min(stream.count, offset + piece)
                try inflater.feed(Array(stream[offset..<end]))
                offset = end
            }
            return .success(try inflater.finish())
        } catch .limitExceeded {
            return .limitExceeded
        } catch {
            return .corrupt
        }
    }
}
