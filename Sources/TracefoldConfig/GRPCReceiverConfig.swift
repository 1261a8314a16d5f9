import Yams

/// `receivers.otlp.protocols.grpc`: the OTLP/gRPC listener (SPEC §1.12).
/// Present in the embedded defaults, so on by default as in the Collector;
/// a config file without it runs HTTP only. Credentials and the rate limit
/// are the receiver's (`protocols.http.auth`, `rate_limit`): one set of keys
/// for both protocols.
public struct GRPCReceiverConfig: Sendable, Equatable {
    /// `host:port`; the Collector's default port is 4317.
    public var endpoint = "127.0.0.1:4317"
    /// Largest request message after decompression; the Collector's default.
    public var maxRecvMsgSize = 4 << 20
    /// Serve gRPC over TLS; nil is plaintext (h2c).
    public var tls: TLSServerConfig?

    public init() {}

    public var host: String { OTLPReceiverConfig.split(endpoint)?.host ?? "127.0.0.1" }
    public var port: Int { OTLPReceiverConfig.split(endpoint)?.port ?? 4317 }

    static func parse(_ node: Node, _ r: YAMLReader) throws(ConfigError) -> GRPCReceiverConfig {
        var c = GRPCReceiverConfig()
        let path = "receivers.otlp.protocols.grpc"
        for (key, _, value) in try r.mapping(node, at: path, allowed: ["endpoint", "max_recv_msg_size", "tls"]) ?? [] {
            switch key {
            case "endpoint":
                c.endpoint = try r.endpoint(value, at: "\(path).endpoint")
            case "tls":
                c.tls = try TLSServerConfig.parse(value, r, at: "\(path).tls")
            default:
                c.maxRecvMsgSize = try r.byteSize(value, at: "\(path).max_recv_msg_size")
                guard c.maxRecvMsgSize > 0 else { throw r.error(value, "\(path).max_recv_msg_size must be positive") }
            }
        }
        return c
    }
}
