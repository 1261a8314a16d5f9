import Foundation
import Yams

/// tracefold's configuration, in the OpenTelemetry Collector's shape:
/// `receivers`, `processors`, `exporters`, `extensions`, `service`, plus
/// tracefold's own `store`. Each component has its own struct with defaults
/// and a validate step.
public struct CollectorConfig: Sendable, Equatable {
    public var receiver: OTLPReceiverConfig
    /// The OTLP/gRPC listener; nil when `protocols.grpc` is not configured.
    public var grpc: GRPCReceiverConfig?
    public var store: StoreConfig
    public var spansJSONL: SpansJSONLExporterConfig?
    public var jsonl: JSONLExporterConfig?
    public var fold: FoldProcessorConfig?
    public var memoryLimiter: MemoryLimiterConfig?
    /// Request metadata and governance (SPEC §5).
    public var metadata: MetadataConfig = .init()
    public var query: QueryAPIConfig = .init()
    public var service: ServiceConfig

    public init(
        receiver: OTLPReceiverConfig = .init(), store: StoreConfig = .init(),
        spansJSONL: SpansJSONLExporterConfig? = nil, service: ServiceConfig = .init()
    ) {
        self.receiver = receiver
        self.store = store
        self.spansJSONL = spansJSONL
        self.service = service
    }

    /// Exporter component ids that tracefold knows.
    public static let exporterTypes = ["jsonl", "spans_jsonl"]
    public static let processorTypes = ["fold", "memory_limiter"]
}

/// Langfuse-style key pairs (`Authorization: Basic base64(public:secret)`)
/// and bearer tokens. Empty means auth is off.
public struct AuthConfig: Sendable, Equatable {
    public struct APIKey: Sendable, Equatable {
        public var publicKey: String
        public var secretKey: String
        /// The workspace under `metadata.workspaces` the key belongs to.
        public var workspace: String?
        /// The key's governance layer (SPEC §5.3).
        public var metadata: [String: String]
        /// Replaces the receiver's `rate_limit` for this key.
        public var rateLimit: RateLimit?
        public init(publicKey: String, secretKey: String, workspace: String? = nil, metadata: [String: String] = [:], rateLimit: RateLimit? = nil) {
            self.publicKey = publicKey
            self.secretKey = secretKey
            self.workspace = workspace
            self.metadata = metadata
            self.rateLimit = rateLimit
        }
    }

    public var apiKeys: [APIKey] = []
    public var bearerTokens: [String] = []

    public init(apiKeys: [APIKey] = [], bearerTokens: [String] = []) {
        self.apiKeys = apiKeys
        self.bearerTokens = bearerTokens
    }

    public var isEnabled: Bool { !apiKeys.isEmpty || !bearerTokens.isEmpty }
}

/// A token bucket in spans: `spansPerSecond` refill, `burst` capacity.
public struct RateLimit: Sendable, Equatable {
    public var spansPerSecond: Double
    public var burst: Int
    public init(spansPerSecond: Double, burst: Int) {
        self.spansPerSecond = spansPerSecond
        self.burst = burst
    }
}

/// otelcol's `memory_limiter`: RSS is sampled every `checkInterval`; above
/// the soft limit (`limitMiB - spikeLimitMiB`) intake answers 503 with
/// Retry-After before it reads a body, and above the hard limit the
/// allocator is also asked to hand freed memory back to the system.
public struct MemoryLimiterConfig: Sendable, Equatable {
    public var checkInterval: Duration = .seconds(1)
    public var limitMiB: Int
    public var spikeLimitMiB: Int

    /// otelcol's default spike limit is 20 % of the hard limit.
    public init(limitMiB: Int, spikeLimitMiB: Int? = nil, checkInterval: Duration = .seconds(1)) {
        self.limitMiB = limitMiB
        self.spikeLimitMiB = spikeLimitMiB ?? limitMiB / 5
        self.checkInterval = checkInterval
    }

    public var hardLimitBytes: Int { limitMiB << 20 }
    public var softLimitBytes: Int { (limitMiB - spikeLimitMiB) << 20 }
}

/// The debug exporter: one span per line, OTLP/JSON field names.
public struct SpansJSONLExporterConfig: Sendable, Equatable {
    public var directory: String
    /// Buffered lines are written out at least this often.
    public var flushInterval: Duration = .seconds(1)

    public init(directory: String) { self.directory = directory }
}

public struct ServiceConfig: Sendable, Equatable {
    public var receivers: [String] = ["otlp"]
    public var processors: [String] = []
    public var exporters: [String] = []
    public var logLevel: String = "info"
    /// SIGTERM: how long the server may finish requests in flight and the
    /// pipeline may write out what is pending before the process exits
    /// anyway. Whatever is left is in the fsynced intake log and is
    /// replayed at the next start.
    public var shutdownTimeout: Duration = .seconds(30)

    public init() {}

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
}

extension CollectorConfig {
    /// Parses and validates a config. `source` names the file in messages.
    public static func parse(yaml: String, source: String = "collector.yaml", environment: [String: String]) throws(ConfigError) -> CollectorConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(source: source, Self.describe(error))
        } catch {
            throw ConfigError(source: source, "\(error)")
        }
        let r = YAMLReader(source: source, expansion: EnvironmentExpansion(environment: environment))
        var config = CollectorConfig()
        guard let top = try r.mapping(root, at: "", allowed: ["receivers", "processors", "exporters", "extensions", "connectors", "service", "store", "metadata", "query"]) else {
            throw ConfigError(source: source, "the file is empty")
        }
        var declaredExporters: [String: Node] = [:]
        var declaredReceivers: [String: Node] = [:]
        var declaredProcessors: [String: Node] = [:]
        var keyNodes = [Node]()
        var workspaceNodes = [String: Node]()
        for (key, keyNode, value) in top {
            switch key {
            case "receivers":
                for (name, nameNode, body) in try r.mapping(value, at: "receivers", allowed: ["otlp"]) ?? [] {
                    declaredReceivers[name] = nameNode
                    (config.receiver, keyNodes) = try OTLPReceiverConfig.parse(body, r, grpc: &config.grpc)
                }
            case "processors":
                for (name, nameNode, body) in try r.mapping(value, at: "processors", allowed: processorTypes) ?? [] {
                    declaredProcessors[name] = nameNode
                    if name == "fold" { config.fold = try FoldProcessorConfig.parse(body, r) } else { config.memoryLimiter = try parseMemoryLimiter(body, nameNode, r) }
                }
            case "exporters":
                for (name, nameNode, body) in try r.mapping(value, at: "exporters", allowed: exporterTypes) ?? [] {
                    declaredExporters[name] = nameNode
                    if name == "spans_jsonl" { config.spansJSONL = try parseSpansJSONL(body, r) }
                    if name == "jsonl" { config.jsonl = try JSONLExporterConfig.parse(body, r) }
                }
            case "extensions", "connectors":
                if let entries = try r.mapping(value, at: key, allowed: []), let first = entries.first {
                    throw r.error(first.keyNode, "unknown \(key.dropLast()) \"\(first.key)\"")
                }
            case "store":
                config.store = try StoreConfig.parse(value, r)
            case "metadata":
                (config.metadata, workspaceNodes) = try MetadataConfig.parse(value, r, environment: environment)
            case "query":
                config.query = try QueryAPIConfig.parse(value, r)
            case "service":
                config.service = try parseService(value, r)
            default:
                throw r.error(keyNode, "unknown key \"\(key)\"")
            }
        }
        if top.first(where: { $0.key == "metadata" }) == nil {
            // HEADERS_TO_METADATA applies without a metadata section too.
            (config.metadata, _) = try MetadataConfig.parse(nil, r, environment: environment)
        }
        try config.metadata.validate(apiKeys: config.receiver.auth.apiKeys, keyNodes: keyNodes, workspaceNodes: workspaceNodes, r: r)
        try config.validate(
            declaredReceivers: declaredReceivers, declaredProcessors: declaredProcessors, declaredExporters: declaredExporters, r: r,
            serviceNode: top.first { $0.key == "service" }?.keyNode
        )
        return config
    }

    public static func load(path: String, environment: [String: String]) throws(ConfigError) -> CollectorConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(source: path, "cannot read the config file: \(error.localizedDescription)")
        }
        return try parse(yaml: text, source: path, environment: environment)
    }

    static func parseAuth(_ node: Node, _ r: YAMLReader, path: String) throws(ConfigError) -> (AuthConfig, keyNodes: [Node]) {
        var auth = AuthConfig()
        var keyNodes = [Node]()
        for (key, _, value) in try r.mapping(node, at: path, allowed: ["api_keys", "bearer_tokens"]) ?? [] {
            if key == "bearer_tokens" {
                for (i, item) in try r.sequence(value, at: "\(path).bearer_tokens").enumerated() {
                    let token = try r.string(item, at: "\(path).bearer_tokens[\(i)]")
                    guard !token.isEmpty else { throw r.error(item, "\(path).bearer_tokens[\(i)] is empty") }
                    auth.bearerTokens.append(token)
                }
                continue
            }
            for (i, item) in try r.sequence(value, at: "\(path).api_keys").enumerated() {
                let itemPath = "\(path).api_keys[\(i)]"
                var key = AuthConfig.APIKey(publicKey: "", secretKey: "")
                for (k, _, v) in try r.mapping(item, at: itemPath, allowed: ["public_key", "secret_key", "workspace", "metadata", "rate_limit"]) ?? [] {
                    switch k {
                    case "public_key": key.publicKey = try r.string(v, at: "\(itemPath).public_key")
                    case "secret_key": key.secretKey = try r.string(v, at: "\(itemPath).secret_key")
                    case "workspace": key.workspace = try r.string(v, at: "\(itemPath).workspace")
                    case "rate_limit": key.rateLimit = try parseRateLimit(v, r, at: "\(itemPath).rate_limit")
                    default: key.metadata = try MetadataConfig.parseMetadata(v, r, at: "\(itemPath).metadata")
                    }
                }
                guard !key.publicKey.isEmpty, !key.secretKey.isEmpty else { throw r.error(item, "\(itemPath) needs a non-empty public_key and secret_key") }
                guard !key.publicKey.contains(":") else { throw r.error(item, "\(itemPath).public_key must not contain ':'") }
                guard !auth.apiKeys.contains(where: { $0.publicKey == key.publicKey }) else {
                    throw r.error(item, "\(itemPath).public_key \"\(key.publicKey)\" is listed twice")
                }
                auth.apiKeys.append(key)
                keyNodes.append(item)
            }
        }
        return (auth, keyNodes)
    }

    private static func parseSpansJSONL(_ node: Node, _ r: YAMLReader) throws(ConfigError) -> SpansJSONLExporterConfig {
        var c = SpansJSONLExporterConfig(directory: "./data/spans")
        for (key, _, value) in try r.mapping(node, at: "exporters.spans_jsonl", allowed: ["directory", "flush_interval"]) ?? [] {
            if key == "directory" {
                c.directory = try r.string(value, at: "exporters.spans_jsonl.directory")
                guard !c.directory.isEmpty else { throw r.error(value, "exporters.spans_jsonl.directory is empty") }
            } else {
                c.flushInterval = try r.duration(value, at: "exporters.spans_jsonl.flush_interval")
            }
        }
        return c
    }

    static func parseRateLimit(_ node: Node, _ r: YAMLReader, at path: String) throws(ConfigError) -> RateLimit {
        var rate: Int?
        var burst: Int?
        for (key, _, value) in try r.mapping(node, at: path, allowed: ["spans_per_second", "burst"]) ?? [] {
            let n = try r.int(value, at: "\(path).\(key)")
            guard n > 0 else { throw r.error(value, "\(path).\(key) must be positive") }
            if key == "spans_per_second" { rate = n } else { burst = n }
        }
        guard let rate else { throw r.error(node, "\(path) needs spans_per_second") }
        // One second's worth by default, like most token-bucket limiters.
        return RateLimit(spansPerSecond: Double(rate), burst: burst ?? rate)
    }

    private static func parseMemoryLimiter(_ node: Node, _ nameNode: Node, _ r: YAMLReader) throws(ConfigError) -> MemoryLimiterConfig {
        let path = "processors.memory_limiter"
        var limit: Int?
        var spike: Int?
        var interval = Duration.seconds(1)
        var spikeNode: Node?
        for (key, _, value) in try r.mapping(node, at: path, allowed: ["check_interval", "limit_mib", "spike_limit_mib"]) ?? [] {
            switch key {
            case "check_interval":
                interval = try r.duration(value, at: "\(path).check_interval")
                guard interval > .zero else { throw r.error(value, "\(path).check_interval must be positive") }
            case "limit_mib":
                limit = try r.int(value, at: "\(path).limit_mib")
                guard limit! > 0 else { throw r.error(value, "\(path).limit_mib must be positive") }
            default:
                spike = try r.int(value, at: "\(path).spike_limit_mib")
                spikeNode = value
                guard spike! >= 0 else { throw r.error(value, "\(path).spike_limit_mib must not be negative") }
            }
        }
        guard let limit else { throw r.error(nameNode, "\(path) needs limit_mib") }
        let c = MemoryLimiterConfig(limitMiB: limit, spikeLimitMiB: spike, checkInterval: interval)
        guard c.spikeLimitMiB < c.limitMiB else {
            throw r.error(spikeNode ?? nameNode, "\(path).spike_limit_mib (\(c.spikeLimitMiB)) must be below limit_mib (\(limit))")
        }
        return c
    }

    private static func parseService(_ node: Node, _ r: YAMLReader) throws(ConfigError) -> ServiceConfig {
        var c = ServiceConfig()
        for (key, _, value) in try r.mapping(node, at: "service", allowed: ["pipelines", "telemetry", "extensions", "shutdown_timeout"]) ?? [] {
            switch key {
            case "shutdown_timeout":
                c.shutdownTimeout = try r.duration(value, at: "service.shutdown_timeout")
                guard c.shutdownTimeout > .zero else { throw r.error(value, "service.shutdown_timeout must be positive") }
            case "pipelines":
                for (_, _, traces) in try r.mapping(value, at: "service.pipelines", allowed: ["traces"]) ?? [] {
                    for (k, _, v) in try r.mapping(traces, at: "service.pipelines.traces", allowed: ["receivers", "processors", "exporters"]) ?? [] {
                        let list = try r.strings(v, at: "service.pipelines.traces.\(k)")
                        switch k {
                        case "receivers": c.receivers = list
                        case "processors": c.processors = list
                        default: c.exporters = list
                        }
                    }
                }
            case "telemetry":
                for (_, _, logs) in try r.mapping(value, at: "service.telemetry", allowed: ["logs"]) ?? [] {
                    for (_, _, level) in try r.mapping(logs, at: "service.telemetry.logs", allowed: ["level"]) ?? [] {
                        let s = try r.string(level, at: "service.telemetry.logs.level").lowercased()
                        guard ServiceConfig.logLevels.contains(s) else {
                            throw r.error(level, "service.telemetry.logs.level must be one of \(ServiceConfig.logLevels.joined(separator: ", ")), got \"\(s)\"")
                        }
                        c.logLevel = s
                    }
                }
            default:
                if let first = try r.strings(value, at: "service.extensions").first {
                    throw r.error(value, "service.extensions names \"\(first)\", which is not declared under extensions")
                }
            }
        }
        return c
    }

    private func validate(
        declaredReceivers: [String: Node], declaredProcessors: [String: Node], declaredExporters: [String: Node], r: YAMLReader, serviceNode: Node?
    ) throws(ConfigError) {
        for name in service.receivers where declaredReceivers[name] == nil {
            throw r.error(serviceNode, "service.pipelines.traces.receivers names \"\(name)\", which is not declared under receivers")
        }
        guard !service.receivers.isEmpty else { throw r.error(serviceNode, "service.pipelines.traces needs at least one receiver") }
        for name in service.processors where declaredProcessors[name] == nil {
            throw r.error(serviceNode, "service.pipelines.traces.processors names \"\(name)\", which is not declared under processors")
        }
        for (name, node) in declaredProcessors where !service.processors.contains(name) {
            throw r.error(node, "processor \"\(name)\" is declared but not used in service.pipelines.traces.processors")
        }
        if service.exporters.contains("jsonl") && !service.processors.contains("fold") {
            throw r.error(declaredExporters["jsonl"], "exporter \"jsonl\" writes folded records; add the fold processor to service.pipelines.traces.processors")
        }
        for name in service.exporters where declaredExporters[name] == nil {
            throw r.error(serviceNode, "service.pipelines.traces.exporters names \"\(name)\", which is not declared under exporters")
        }
        for (name, node) in declaredExporters where !service.exporters.contains(name) {
            throw r.error(node, "exporter \"\(name)\" is declared but not used in service.pipelines.traces.exporters")
        }
    }

    private static func describe(_ error: YamlError) -> String {
        "invalid YAML: \(error)"
    }

    /// Only components named in the pipeline run.
    public var activeSpansJSONL: SpansJSONLExporterConfig? {
        service.exporters.contains("spans_jsonl") ? spansJSONL : nil
    }

    public var activeJSONL: JSONLExporterConfig? {
        service.exporters.contains("jsonl") ? jsonl : nil
    }

    public var activeFold: FoldProcessorConfig? {
        service.processors.contains("fold") ? fold : nil
    }

    public var activeMemoryLimiter: MemoryLimiterConfig? {
        service.processors.contains("memory_limiter") ? memoryLimiter : nil
    }
}
