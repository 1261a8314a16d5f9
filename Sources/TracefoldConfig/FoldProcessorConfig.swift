import Foundation
import Yams

/// The fold processor (SPEC §2–§4): its config, defaults and validation.
public struct FoldProcessorConfig: Sendable, Equatable {
    /// Trace states kept in memory (the newest 1,024 as values, the rest
    /// encoded, about 0.7 KB each, except settled ones, which are released:
    /// `TraceCache`); older ones are rebuilt from the store.
    public var maxOpenTraces = 20_000
    public var maxUpdateBytes = 65_536
    public var maxTraceMetadataBytes = 1_048_576
    /// Model prices that add to (and win over) the built-in ones (issue 22).
    public var models: [ModelPriceConfig] = []

    public init() {}

    static func parse(_ node: Node, _ r: YAMLReader) throws(ConfigError) -> FoldProcessorConfig {
        var c = FoldProcessorConfig()
        for (key, _, value) in try r.mapping(node, at: "processors.fold", allowed: ["max_open_traces", "metadata", "models"]) ?? [] {
            switch key {
            case "max_open_traces":
                c.maxOpenTraces = try r.int(value, at: "processors.fold.max_open_traces")
                guard c.maxOpenTraces > 0 else { throw r.error(value, "processors.fold.max_open_traces must be positive") }
            case "models":
                for (i, item) in try r.sequence(value, at: "processors.fold.models").enumerated() {
                    c.models.append(try ModelPriceConfig.parse(item, r, at: "processors.fold.models[\(i)]"))
                }
                var seen = Set<String>()
                for m in c.models where !seen.insert(m.id).inserted {
                    throw r.error(value, "processors.fold.models: \"\(m.modelName)\" is defined twice with the same start_date")
                }
            default:
                for (k, _, v) in try r.mapping(value, at: "processors.fold.metadata", allowed: ["max_update_bytes", "max_trace_bytes"]) ?? [] {
                    let n = try r.byteSize(v, at: "processors.fold.metadata.\(k)")
                    guard n > 0 else { throw r.error(v, "processors.fold.metadata.\(k) must be positive") }
                    if k == "max_update_bytes" { c.maxUpdateBytes = n } else { c.maxTraceMetadataBytes = n }
                }
            }
        }
        return c
    }
}

/// One model definition in `processors.fold.models`, in Langfuse's terms:
/// a case-insensitive regular expression on the generation's model, the
/// date from which its prices apply, and USD per unit by usage type.
public struct ModelPriceConfig: Sendable, Equatable {
    public var modelName: String
    public var matchPattern: String
    public var startUnixNano: UInt64?
    public var unit = "TOKENS"
    public var prices: [String: Double] = [:]

    public init(modelName: String, matchPattern: String, startUnixNano: UInt64? = nil, unit: String = "TOKENS", prices: [String: Double]) {
        self.modelName = modelName
        self.matchPattern = matchPattern
        self.startUnixNano = startUnixNano
        self.unit = unit
        self.prices = prices
    }

    /// Stable across restarts: the same entry keeps its id, so the
    /// `modelId` of what it priced keeps naming it.
    public var id: String { "config/\(modelName)" + (startUnixNano.map { "@\($0 / 1_000_000_000)" } ?? "") }

    public static let units = ["TOKENS", "CHARACTERS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS"]

    static func parse(_ node: Node, _ r: YAMLReader, at path: String) throws(ConfigError) -> ModelPriceConfig {
        var name: String?, pattern: String?, start: UInt64?, unit = "TOKENS"
        var prices = [String: Double]()
        for (key, _, value) in try r.mapping(node, at: path, allowed: ["model_name", "match_pattern", "start_date", "unit", "prices"]) ?? [] {
            switch key {
            case "model_name":
                name = try r.string(value, at: "\(path).model_name")
                guard name?.isEmpty == false else { throw r.error(value, "\(path).model_name must not be empty") }
            case "match_pattern":
                let p = try r.string(value, at: "\(path).match_pattern")
                guard !p.isEmpty, (try? NSRegularExpression(pattern: p, options: [.caseInsensitive])) != nil else {
                    throw r.error(value, "\(path).match_pattern is not a regular expression: \"\(p)\"")
                }
                pattern = p
            case "start_date":
                let s = try r.string(value, at: "\(path).start_date")
                guard let t = Self.date(s) else { throw r.error(value, "\(path).start_date must be an ISO 8601 date or date-time, got \"\(s)\"") }
                start = t
            case "unit":
                unit = try r.string(value, at: "\(path).unit").uppercased()
                guard Self.units.contains(unit) else { throw r.error(value, "\(path).unit must be one of \(Self.units.joined(separator: ", ")), got \"\(unit)\"") }
            default:
                for (type, _, v) in try r.mapping(value, at: "\(path).prices", allowed: []) ?? [] {
                    let s = try r.string(v, at: "\(path).prices.\(type)")
                    guard let price = Double(s), price.isFinite, price >= 0 else {
                        throw r.error(v, "\(path).prices.\(type) must be a number of USD per unit, at least 0, got \"\(s)\"")
                    }
                    prices[type] = price
                }
            }
        }
        guard let name else { throw r.error(node, "\(path) needs model_name") }
        guard let pattern else { throw r.error(node, "\(path) needs match_pattern") }
        guard !prices.isEmpty else { throw r.error(node, "\(path) needs prices: USD per unit by usage type, e.g. {input: 0.0000025, output: 0.00001}") }
        return ModelPriceConfig(modelName: name, matchPattern: pattern, startUnixNano: start, unit: unit, prices: prices)
    }

    /// `2026-01-01` or an ISO 8601 date-time with its zone.
    static func date(_ s: String) -> UInt64? {
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let d = full.date(from: s) ?? plain.date(from: s) ?? day.date(from: s), d.timeIntervalSince1970 >= 0 else { return nil }
        return UInt64(d.timeIntervalSince1970 * 1e9)
    }
}
