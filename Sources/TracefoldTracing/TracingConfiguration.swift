import Foundation

/// Where and how spans are exported. `fromEnvironment()` reads the same
/// variables as the Langfuse Python SDK and the OTel exporters, so an app
/// moves between tracefold and Langfuse by environment alone.
public struct TracingConfiguration: Sendable {
    /// The full OTLP/HTTP traces URL.
    public var endpoint: String
    public var publicKey: String?
    public var secretKey: String?
    public var headers: [(String, String)]
    public var gzip: Bool
    /// Spans per request (`flush_at`); a full batch is sent at once.
    public var flushAt: Int
    /// The longest a span waits in the queue (`flush_interval`).
    public var flushInterval: Duration
    /// One attempt's timeout.
    public var timeout: Duration
    /// Attempts per batch, on connection errors, 429, 502, 503 and 504.
    public var maxAttempts: Int
    /// Spans held while the collector is slow or down; past it new spans
    /// are dropped and counted.
    public var maxQueueSize: Int
    public var serviceName: String
    public var resourceAttributes: [(String, String)]
    public var environment: String?
    public var release: String?
    public var enabled: Bool

    public init(
        endpoint: String = "http://127.0.0.1:4318/v1/traces", publicKey: String? = nil, secretKey: String? = nil, headers: [(String, String)] = [],
        gzip: Bool = true, flushAt: Int = 512, flushInterval: Duration = .seconds(5), timeout: Duration = .seconds(5), maxAttempts: Int = 4,
        maxQueueSize: Int = 2048, serviceName: String = TracingConfiguration.defaultServiceName, resourceAttributes: [(String, String)] = [],
        environment: String? = nil, release: String? = nil, enabled: Bool = true
    ) {
        self.endpoint = endpoint
        self.publicKey = publicKey
        self.secretKey = secretKey
        self.headers = headers
        self.gzip = gzip
        self.flushAt = max(1, flushAt)
        self.flushInterval = flushInterval
        self.timeout = timeout
        self.maxAttempts = max(1, maxAttempts)
        self.maxQueueSize = max(1, maxQueueSize)
        self.serviceName = serviceName
        self.resourceAttributes = resourceAttributes
        self.environment = environment
        self.release = release
        self.enabled = enabled
    }

    public static var defaultServiceName: String { "unknown_service:" + ProcessInfo.processInfo.processName }

    /// Precedence, first set wins:
    /// - endpoint: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the whole URL);
    ///   `TRACEFOLD_BASE_URL` + `/v1/traces`; `LANGFUSE_BASE_URL` or
    ///   `LANGFUSE_HOST` + `/api/public/otel/v1/traces`;
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; `http://127.0.0.1:4318/v1/traces`.
    /// - keys: `TRACEFOLD_PUBLIC_KEY`/`LANGFUSE_PUBLIC_KEY` and the secret
    ///   alike, sent as Basic auth when both are set.
    /// - headers: `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, URL-encoded).
    /// - compression: `TRACEFOLD_COMPRESSION`, `LANGFUSE_OTEL_COMPRESSION`,
    ///   `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip` or `none`); gzip.
    /// - batching: `TRACEFOLD_FLUSH_AT`/`LANGFUSE_FLUSH_AT` (spans),
    ///   `TRACEFOLD_FLUSH_INTERVAL`/`LANGFUSE_FLUSH_INTERVAL` (seconds), `OTEL_BSP_MAX_QUEUE_SIZE`.
    /// - timeout: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`/`OTEL_EXPORTER_OTLP_TIMEOUT` (ms), `LANGFUSE_TIMEOUT` (s).
    /// - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`; `LANGFUSE_TRACING_ENVIRONMENT`, `LANGFUSE_RELEASE`;
    ///   `TRACEFOLD_TRACING_ENABLED`/`LANGFUSE_TRACING_ENABLED=false` turns export off.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> TracingConfiguration {
        func first(_ names: String...) -> String? {
            for name in names { if let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty { return v } }
            return nil
        }
        func base(_ url: String) -> String { url.hasSuffix("/") ? String(url.dropLast()) : url }
        var config = TracingConfiguration()
        if let url = first("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            config.endpoint = url
        } else if let url = first("TRACEFOLD_BASE_URL") {
            config.endpoint = base(url) + "/v1/traces"
        } else if let url = first("LANGFUSE_BASE_URL", "LANGFUSE_HOST") {
            config.endpoint = base(url) + "/api/public/otel/v1/traces"
        } else if let url = first("OTEL_EXPORTER_OTLP_ENDPOINT") {
            config.endpoint = base(url) + "/v1/traces"
        }
        config.publicKey = first("TRACEFOLD_PUBLIC_KEY", "LANGFUSE_PUBLIC_KEY")
        config.secretKey = first("TRACEFOLD_SECRET_KEY", "LANGFUSE_SECRET_KEY")
        if let raw = first("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") { config.headers = parsePairs(raw) }
        if let c = first("TRACEFOLD_COMPRESSION", "LANGFUSE_OTEL_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION") {
            config.gzip = c.lowercased() != "none"
        }
        if let n = first("TRACEFOLD_FLUSH_AT", "LANGFUSE_FLUSH_AT").flatMap(Int.init), n > 0 { config.flushAt = n }
        if let s = first("TRACEFOLD_FLUSH_INTERVAL", "LANGFUSE_FLUSH_INTERVAL").flatMap(Double.init), s > 0 {
            config.flushInterval = .milliseconds(Int64(s * 1000))
        }
        if let n = first("OTEL_BSP_MAX_QUEUE_SIZE").flatMap(Int.init), n > 0 { config.maxQueueSize = n }
        if let ms = first("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT").flatMap(Double.init), ms > 0 {
            config.timeout = .milliseconds(Int64(ms))
        } else if let s = first("LANGFUSE_TIMEOUT").flatMap(Double.init), s > 0 {
            config.timeout = .milliseconds(Int64(s * 1000))
        }
        if let raw = first("OTEL_RESOURCE_ATTRIBUTES") { config.resourceAttributes = parsePairs(raw) }
        // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES.
        if let name = first("OTEL_SERVICE_NAME") ?? config.resourceAttributes.last(where: { $0.0 == "service.name" })?.1 { config.serviceName = name }
        config.environment = first("TRACEFOLD_TRACING_ENVIRONMENT", "LANGFUSE_TRACING_ENVIRONMENT")
        config.release = first("TRACEFOLD_RELEASE", "LANGFUSE_RELEASE")
        if let enabled = first("TRACEFOLD_TRACING_ENABLED", "LANGFUSE_TRACING_ENABLED") { config.enabled = enabled.lowercased() != "false" }
        return config
    }

    /// The W3C-baggage-like `k=v,k2=v2` list the OTel variables use.
    static func parsePairs(_ raw: String) -> [(String, String)] {
        raw.split(separator: ",").compactMap { item in
            guard let eq = item.firstIndex(of: "=") else { return nil }
            let key = item[..<eq].trimmingCharacters(in: .whitespaces)
            let value = item[item.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { return nil }
            return (key.removingPercentEncoding ?? key, value.removingPercentEncoding ?? value)
        }
    }
}
