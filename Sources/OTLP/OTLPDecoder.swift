import TracefoldModel

/// The two request encodings OTLP/HTTP allows. Responses use the request's.
public enum OTLPEncoding: Sendable, Hashable {
    case protobuf
    case json

    /// Picks the encoding from a Content-Type, ignoring parameters such as
    /// `; charset=utf-8` (SPEC §1.3). Nil means 415.
    public init?(contentType: String) {
        let media = String(contentType.split(separator: ";", maxSplits: 1).first ?? "")
            .filter { $0 != " " && $0 != "\t" }.lowercased()
        switch media {
        case "application/x-protobuf": self = .protobuf
        case "application/json": self = .json
        default: return nil
        }
    }

    public var contentType: String {
        switch self {
        case .protobuf: "application/x-protobuf"
        case .json: "application/json"
        }
    }
}

/// The result of decoding one export request: the spans that passed
/// validation, and how many did not (SPEC §1.6).
public struct DecodedExport: Sendable {
    public var batch: SpanBatch
    public var rejectedSpans: Int
    /// The reason the first rejected span was rejected.
    public var firstRejection: String?

    public init(batch: SpanBatch, rejectedSpans: Int = 0, firstRejection: String? = nil) {
        self.batch = batch
        self.rejectedSpans = rejectedSpans
        self.firstRejection = firstRejection
    }

    /// `"<N> spans rejected: <first reason>"`, or nil when nothing was rejected.
    public var partialSuccessMessage: String? {
        guard rejectedSpans > 0 else { return nil }
        return "\(rejectedSpans) spans rejected: \(firstRejection ?? "invalid span")"
    }
}

/// A body that cannot be decoded at all. The request gets 400.
public struct OTLPDecodeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum OTLPDecoder {
    /// Bound on AnyValue nesting (arrays and kvlists inside each other). A span
    /// that nests deeper is rejected on its own; the rest of the batch stays.
    public static let maxAttributeDepth = 64

    public static func decode(_ body: [UInt8], encoding: OTLPEncoding) throws(OTLPDecodeError) -> DecodedExport {
        switch encoding {
        case .protobuf: try OTLPProtobufDecoder.decode(body)
        case .json: try OTLPJSONDecoder.decode(body)
        }
    }
}

/// Collects valid spans and counts the rejected ones while a decoder walks a
/// request. Both decoders share the id rules through it.
struct SpanValidation {
    var rejected = 0
    var firstRejection: String?

    mutating func reject(_ reason: String) {
        rejected += 1
        if firstRejection == nil { firstRejection = reason }
    }

    /// SPEC §1.6: trace id 16 bytes and not all zero, span id 8 bytes and not
    /// all zero, parent empty or 8 bytes. An all-zero parent is read as no
    /// parent, as the W3C invalid span id means "none".
    static func ids(
        traceID: UnsafeRawBufferPointer, spanID: UnsafeRawBufferPointer, parent: UnsafeRawBufferPointer
    ) -> Result<(TraceID, SpanID, SpanID?), SpanRejection> {
        guard let t = TraceID(bytes: traceID) else {
            return .failure(SpanRejection("trace_id must be 16 bytes, got \(traceID.count)"))
        }
        guard !t.isZero else { return .failure(SpanRejection("trace_id is all zero")) }
        guard let s = SpanID(bytes: spanID) else {
            return .failure(SpanRejection("span_id must be 8 bytes, got \(spanID.count)"))
        }
        guard !s.isZero else { return .failure(SpanRejection("span_id is all zero")) }
        if parent.isEmpty { return .success((t, s, nil)) }
        guard let p = SpanID(bytes: parent) else {
            return .failure(SpanRejection("parent_span_id must be empty or 8 bytes, got \(parent.count)"))
        }
        return .success((t, s, p.isZero ? nil : p))
    }
}

struct SpanRejection: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}
