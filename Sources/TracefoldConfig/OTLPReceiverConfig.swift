import Yams

/// `receivers.otlp.protocols.http`: the OTLP/HTTP listener, which also
/// serves the query API. Its `auth` and `rate_limit` apply to the gRPC
/// listener too.
public struct OTLPReceiverConfig: Sendable, Equatable {
    /// `host:port`; SPEC §1.1 default `127.0.0.1:4318`.
    public var endpoint: String = "127.0.0.1:4318"
    /// Limit on the request body after decompression (SPEC §1.4).
    public var maxRequestBodySize: Int = 64 << 20
    public var auth: AuthConfig = .init()
    /// Idle keep-alive connections are closed after this.
    public var idleTimeout: Duration = .seconds(60)
    /// A request body must arrive within this, or the request gets 408 and
    /// the connection is closed: a slow sender cannot hold a connection and
    /// its buffer forever (otelcol's `read_timeout`).
    public var readTimeout: Duration = .seconds(30)
    /// Request body bytes (wire plus inflated) all connections may hold at
    /// once; past it a request gets 503 with Retry-After. At least twice
    /// `maxRequestBodySize`, so one request of the largest size always fits.
    public var maxInFlightBytes: Int = 256 << 20
    /// Spans per second each credential may send; nil is unlimited. An API
    /// key's own `rate_limit` replaces it for that key (SPEC §1.9).
    public var rateLimit: RateLimit?
    /// Serve HTTPS instead of HTTP; nil is plain HTTP.
    public var tls: TLSServerConfig?

    public init() {}

    public var host: String { Self.split(endpoint)?.host ?? "127.0.0.1" }
    public var port: Int { Self.split(endpoint)?.port ?? 4318 }

    /// Splits `host:port`, `[v6]:port` or `:port`.
    public static func split(_ endpoint: String) -> (host: String, port: Int)? {
        guard let colon = endpoint.lastIndex(of: ":") else { return nil }
        var host = String(endpoint[..<colon])
        guard let port = Int(endpoint[endpoint.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        return (host, port)
    }

    public var isLoopback: Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }
}

extension OTLPReceiverConfig {
    /// `receivers.otlp`: the HTTP protocol here, the gRPC one through
    /// `GRPCReceiverConfig`. Returns the API keys' nodes for the metadata
    /// checks that follow.
    static func parse(_ node: Node, _ r: YAMLReader, grpc: inout GRPCReceiverConfig?) throws(ConfigError) -> (OTLPReceiverConfig, keyNodes: [Node]) {
        var c = OTLPReceiverConfig()
        var keyNodes = [Node]()
        var inFlightNode: Node?
        for (_, _, protocols) in try r.mapping(node, at: "receivers.otlp", allowed: ["protocols"]) ?? [] {
            for (name, _, http) in try r.mapping(protocols, at: "receivers.otlp.protocols", allowed: ["http", "grpc"]) ?? [] {
                if name == "grpc" {
                    grpc = try GRPCReceiverConfig.parse(http, r)
                    continue
                }
                let path = "receivers.otlp.protocols.http"
                for (key, _, value) in try r.mapping(http, at: path, allowed: ["endpoint", "max_request_body_size", "max_in_flight_bytes", "auth", "idle_timeout", "read_timeout", "rate_limit", "tls"]) ?? [] {
                    switch key {
                    case "endpoint":
                        c.endpoint = try r.endpoint(value, at: "\(path).endpoint")
                    case "max_request_body_size":
                        c.maxRequestBodySize = try r.byteSize(value, at: "\(path).max_request_body_size")
                        guard c.maxRequestBodySize > 0 else { throw r.error(value, "\(path).max_request_body_size must be positive") }
                    case "idle_timeout":
                        c.idleTimeout = try r.duration(value, at: "\(path).idle_timeout")
                    case "max_in_flight_bytes":
                        c.maxInFlightBytes = try r.byteSize(value, at: "\(path).max_in_flight_bytes")
                        inFlightNode = value
                    case "read_timeout":
                        c.readTimeout = try r.duration(value, at: "\(path).read_timeout")
                        guard c.readTimeout > .zero else { throw r.error(value, "\(path).read_timeout must be positive") }
                    case "rate_limit":
                        c.rateLimit = try CollectorConfig.parseRateLimit(value, r, at: "\(path).rate_limit")
                    case "tls":
                        c.tls = try TLSServerConfig.parse(value, r, at: "\(path).tls")
                    default:
                        (c.auth, keyNodes) = try CollectorConfig.parseAuth(value, r, path: "\(path).auth")
                    }
                }
            }
        }
        if inFlightNode == nil { c.maxInFlightBytes = max(c.maxInFlightBytes, 2 * c.maxRequestBodySize) }
        if let inFlightNode, c.maxInFlightBytes < 2 * c.maxRequestBodySize {
            throw r.error(
                inFlightNode,
                "receivers.otlp.protocols.http.max_in_flight_bytes (\(c.maxInFlightBytes)) must be at least twice max_request_body_size (\(c.maxRequestBodySize)), so that one request of the largest size fits"
            )
        }
        return (c, keyNodes)
    }
}
