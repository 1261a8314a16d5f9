import TracefoldModel

/// Response bodies of OTLP/HTTP, in the request's encoding (SPEC §1.7).
public enum OTLPResponse {
    /// An `ExportTraceServiceResponse`. With nothing rejected and no warning,
    /// `partial_success` is left unset: `{}` in JSON, empty in protobuf.
    public static func export(rejectedSpans: Int, errorMessage: String?, encoding: OTLPEncoding) -> [UInt8] {
        let message = errorMessage ?? ""
        let partial = rejectedSpans != 0 || !message.isEmpty
        switch encoding {
        case .protobuf:
            guard partial else { return [] }
            var w = ProtobufWriter()
            w.message(1) { p in
                if rejectedSpans != 0 { p.int64(1, Int64(rejectedSpans)) }
                if !message.isEmpty { p.string(2, message) }
            }
            return w.bytes
        case .json:
            guard partial else { return Array("{}".utf8) }
            // int64 fields are strings in OTLP/JSON.
            let body: JSONValue = .object([
                "partialSuccess": .object([
                    "rejectedSpans": .string(String(rejectedSpans)),
                    "errorMessage": .string(message),
                ])
            ])
            var w = JSONWriter()
            w.write(body)
            return w.bytes
        }
    }

    /// A `google.rpc.Status` for a 4xx/5xx. When the request's encoding is not
    /// known (415, 405), pass `.json`.
    public static func status(httpStatus: Int, message: String, encoding: OTLPEncoding) -> [UInt8] {
        let code = grpcCode(forHTTPStatus: httpStatus)
        switch encoding {
        case .protobuf:
            var w = ProtobufWriter()
            if code != 0 { w.int64(1, Int64(code)) }
            if !message.isEmpty { w.string(2, message) }
            return w.bytes
        case .json:
            var w = JSONWriter()
            w.write(.object(["code": .int(Int64(code)), "message": .string(message)]))
            return w.bytes
        }
    }

    /// A `google.rpc.Status` with one detail, a `google.rpc.RetryInfo`
    /// whose `retry_delay` is `retryAfterSeconds`: what a gRPC server puts
    /// in `grpc-status-details-bin` so that OTLP exporters wait that long
    /// before retrying (the OTLP specification's throttling).
    public static func statusWithRetryInfo(code: Int32, message: String, retryAfterSeconds: Int) -> [UInt8] {
        var w = ProtobufWriter()
        if code != 0 { w.int64(1, Int64(code)) }
        if !message.isEmpty { w.string(2, message) }
        w.message(3) { any in
            any.string(1, "type.googleapis.com/google.rpc.RetryInfo")
            var info = ProtobufWriter()
            info.message(1) { duration in duration.int64(1, Int64(retryAfterSeconds)) }
            any.bytes(2, info.bytes)
        }
        return w.bytes
    }

    /// The gRPC code that matches an HTTP status, following the OTLP/HTTP
    /// mapping otelcol uses in the other direction.
    public static func grpcCode(forHTTPStatus status: Int) -> Int32 {
        switch status {
        case 400, 415: 3  // INVALID_ARGUMENT
        case 401: 16  // UNAUTHENTICATED
        case 403: 7  // PERMISSION_DENIED
        case 404: 5  // NOT_FOUND
        case 405: 12  // UNIMPLEMENTED
        case 413, 429: 8  // RESOURCE_EXHAUSTED
        case 503: 14  // UNAVAILABLE
        case 408, 504: 4  // DEADLINE_EXCEEDED
        default: 13  // INTERNAL
        }
    }
}
