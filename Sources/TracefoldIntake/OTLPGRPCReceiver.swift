import GRPCCore
import HTTPTypes
import OTLP
import TracefoldModel

/// OTLP/gRPC trace intake (SPEC §1.12): the service
/// `opentelemetry.proto.collector.trace.v1.TraceService/Export`, on the
/// same `IntakePath` as OTLP/HTTP. Messages stay bytes through grpc-swift:
/// the request is decoded by protobuf-c like an HTTP protobuf body, and the
/// response is written by tracefold's protobuf writer; no swift-protobuf.
///
/// Status codes, as the OTLP specification and the Collector give them:
/// INVALID_ARGUMENT for a message that does not decode, UNAUTHENTICATED for
/// missing or wrong credentials, RESOURCE_EXHAUSTED past
/// `max_recv_msg_size` (the transport checks it after decompression) and
/// for a rate limit, UNAVAILABLE with a `RetryInfo` detail when shedding
/// load or when the intake log cannot be written.
public struct OTLPGRPCReceiver: RegistrableRPCService {
    public static let method = MethodDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService", method: "Export")

    let intake: IntakePath
    /// `max_recv_msg_size`, after decompression.
    let maxMessageSize: Int

    public init(intake: IntakePath, maxMessageSize: Int) {
        self.intake = intake
        self.maxMessageSize = maxMessageSize
    }

    /// The transport's own limit. Past its limit grpc-swift resets the
    /// stream without a status, which clients report as CANCELLED; so the
    /// transport takes up to twice `max_recv_msg_size` and this receiver
    /// answers RESOURCE_EXHAUSTED for anything over `max_recv_msg_size`, as
    /// the Collector does. Only a message over twice the limit is reset.
    public static func transportLimit(maxMessageSize: Int) -> Int {
        maxMessageSize > Int.max / 2 ? Int.max : 2 * maxMessageSize
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(forMethod: Self.method, deserializer: BytesDeserializer(), serializer: BytesSerializer()) { request, context in
            let single = try await ServerRequest(stream: request)
            let response = await export(single)
            intake.counters?.request(code: Self.statusName(response.accepted))
            return StreamingServerResponse(single: response)
        }
    }

    /// The gRPC status as the spec spells it, for `/metrics`.
    public static func statusName(_ result: Result<ServerResponse<[UInt8]>.Contents, RPCError>) -> String {
        guard case .failure(let error) = result else { return "OK" }
        switch error.code {
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .unauthenticated: return "UNAUTHENTICATED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .unavailable: return "UNAVAILABLE"
        default: return "\(error.code)"
        }
    }

    /// One Export call: the request's metadata are its headers.
    func export(_ request: ServerRequest<[UInt8]>) async -> ServerResponse<[UInt8]> {
        let metadata = request.metadata
        guard case .allowed(let apiKey) = intake.authenticate(authorization: Self.first(metadata, "authorization")) else {
            return ServerResponse(error: RPCError(code: .unauthenticated, message: "missing or invalid credentials"))
        }
        if let refusal = await intake.refusalBeforeBody() {
            return ServerResponse(error: Self.error(for: refusal))
        }
        guard request.message.count <= maxMessageSize else {
            return ServerResponse(error: RPCError(
                code: .resourceExhausted,
                message: "the message of \(request.message.count) bytes exceeds max_recv_msg_size (\(maxMessageSize) bytes) after decompression"
            ))
        }
        let receivedAt = WallClock.nowUnixNano()
        switch await intake.accept(
            body: request.message, wire: request.message, encoding: .protobuf, coding: .identity, apiKey: apiKey,
            headers: Self.fields(metadata), receivedAtUnixNano: receivedAt
        ) {
        case .accepted(let rejectedSpans, let message):
            return ServerResponse(message: OTLPResponse.export(rejectedSpans: rejectedSpans, errorMessage: message, encoding: .protobuf))
        case .undecodable(let message):
            return ServerResponse(error: RPCError(code: .invalidArgument, message: message))
        case .refused(let refusal):
            return ServerResponse(error: Self.error(for: refusal))
        }
    }

    /// UNAVAILABLE (RESOURCE_EXHAUSTED for a rate limit) with a
    /// `google.rpc.RetryInfo` detail in `grpc-status-details-bin`, which OTLP
    /// exporters read as the delay before their retry.
    static func error(for refusal: IntakePath.Refusal) -> RPCError {
        let code: RPCError.Code = refusal.isRateLimit ? .resourceExhausted : .unavailable
        var metadata = Metadata()
        metadata.addBinary(
            OTLPResponse.statusWithRetryInfo(code: Int32(code.rawValue), message: refusal.message, retryAfterSeconds: refusal.retryAfterSeconds),
            forKey: "grpc-status-details-bin"
        )
        return RPCError(code: code, message: refusal.message, metadata: metadata)
    }

    static func first(_ metadata: Metadata, _ key: String) -> String? {
        metadata[stringValues: key].first { _ in true }
    }

    /// gRPC metadata as HTTP fields, for `x-tracefold-metadata` and
    /// `headers_to_metadata` (binary values are not headers and are left out).
    static func fields(_ metadata: Metadata) -> HTTPFields {
        var fields = HTTPFields()
        for (key, value) in metadata {
            guard case .string(let text) = value, let name = HTTPField.Name(key) else { continue }
            fields.append(HTTPField(name: name, value: text))
        }
        return fields
    }
}

/// The message's bytes, as they arrived (after the transport's
/// decompression): protobuf-c decodes them, so no Swift message types. The
/// load generator's client uses both for the other direction.
public struct BytesDeserializer: MessageDeserializer {
    public init() {}

    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// Bytes already encoded (an `ExportTraceServiceResponse`, or the load
/// generator's request).
public struct BytesSerializer: MessageSerializer {
    public init() {}

    public func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }
}
