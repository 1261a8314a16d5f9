import AsyncHTTPClient
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import TracefoldIntake

/// How one Export request went, in the terms a client acts on.
struct ExportAnswer: Sendable {
    /// The HTTP status code, or the gRPC status name.
    var status: String
    var acknowledged: Bool
    /// Set when the server asks for a retry (429/503, RESOURCE_EXHAUSTED,
    /// UNAVAILABLE): the delay it gave.
    var retryAfterSeconds: Double?
}

/// One OTLP transport, so the load loop is the same for HTTP and gRPC.
protocol ExportTransport: Sendable {
    /// `worker` is the sending loop's number: a transport with its own
    /// connection per worker sends on that one.
    func export(_ body: [UInt8], worker: Int) async throws -> ExportAnswer
    func shutdown() async throws
}

/// OTLP/HTTP: keep-alive HTTP/1.1 POSTs of protobuf bodies, gzipped in
/// advance when `gzip`.
struct HTTPExportTransport: ExportTransport {
    let url: String
    let gzip: Bool
    let headers: [(name: String, value: String)]
    let client: HTTPClient

    init(url: String, connections: Int, gzip: Bool, headers: [(name: String, value: String)]) {
        self.url = url
        self.gzip = gzip
        self.headers = headers
        var config = HTTPClient.Configuration()
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    func export(_ body: [UInt8], worker: Int) async throws -> ExportAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-protobuf")
        if gzip { request.headers.add(name: "Content-Encoding", value: "gzip") }
        for header in headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        let code = Int(response.status.code)
        let retry = code == 429 || code == 503 ? response.headers.first(name: "Retry-After").flatMap(Double.init) ?? 1 : nil
        return ExportAnswer(status: String(code), acknowledged: code == 200, retryAfterSeconds: retry)
    }

    func shutdown() async throws { try await client.shutdown() }
}

/// OTLP/gRPC: unary `TraceService/Export` calls, one client (one HTTP/2
/// connection, as an OTel exporter keeps) per worker, like the HTTP load's
/// one keep-alive connection per worker; with `gzip` each message is
/// compressed by the transport (`grpc-encoding: gzip`).
final class GRPCExportTransport: ExportTransport {
    let clients: [GRPCClient<HTTP2ClientTransport.Posix>]
    let options: CallOptions
    let running: [Task<Void, any Error>]
    static let export = MethodDescriptor(fullyQualifiedService: "opentelemetry.proto.collector.trace.v1.TraceService", method: "Export")

    init(host: String, port: Int, connections: Int, gzip: Bool) throws {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.compression.enabledAlgorithms = [.gzip]
        clients = try (0..<max(1, connections)).map { _ in
            GRPCClient(transport: try HTTP2ClientTransport.Posix(target: .ipv4(host: host, port: port), transportSecurity: .plaintext, config: config))
        }
        running = clients.map { client in Task { try await client.runConnections() } }
        var options = CallOptions.defaults
        options.compression = gzip ? .gzip : CompressionAlgorithm.none
        options.timeout = .seconds(30)
        self.options = options
    }

    func export(_ body: [UInt8], worker: Int) async throws -> ExportAnswer {
        do {
            _ = try await clients[worker % clients.count].unary(
                request: ClientRequest(message: body), descriptor: Self.export, serializer: BytesSerializer(), deserializer: BytesDeserializer(),
                options: options
            ) { try $0.message }
            return ExportAnswer(status: "OK", acknowledged: true)
        } catch let error as RPCError {
            let retryable = error.code == .unavailable || error.code == .resourceExhausted
            let name = OTLPGRPCReceiver.statusName(.failure(error))
            // 1 s, what tracefold's RetryInfo says when it sheds load (the
            // 5 s of a failing store does not occur in the bench).
            return ExportAnswer(status: name, acknowledged: false, retryAfterSeconds: retryable ? 1 : nil)
        }
    }

    func shutdown() async throws {
        for client in clients { client.beginGracefulShutdown() }
        for task in running { try await task.value }
    }
}
