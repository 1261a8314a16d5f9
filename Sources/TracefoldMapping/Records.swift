import TracefoldModel

/// Langfuse observation types (SPEC §2.2).
public enum ObservationType: String, Sendable, Hashable, Codable, CaseIterable {
    case span = "SPAN", generation = "GENERATION", event = "EVENT", agent = "AGENT", tool = "TOOL", chain = "CHAIN"
    case retriever = "RETRIEVER", evaluator = "EVALUATOR", guardrail = "GUARDRAIL", embedding = "EMBEDDING"
}

/// Observation levels, in increasing severity.
public enum ObservationLevel: String, Sendable, Hashable, Codable, Comparable, CaseIterable {
    case debug = "DEBUG", `default` = "DEFAULT", warning = "WARNING", error = "ERROR"

    var rank: Int {
        switch self {
        case .debug: 0
        case .default: 1
        case .warning: 2
        case .error: 3
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }

    /// R13: case-insensitive, with aliases.
    public init?(alias: String) {
        switch alias.uppercased() {
        case "DEBUG", "TRACE", "VERBOSE": self = .debug
        case "DEFAULT", "INFO", "LOG", "NOTICE", "OK", "SUCCESS": self = .default
        case "WARNING", "WARN": self = .warning
        case "ERROR", "FATAL", "CRITICAL": self = .error
        default: return nil
        }
    }
}

/// What orders competing updates (SPEC §3.2): a time in ns, then the span id,
/// then the position of the update within the span. The greatest key wins.
public struct OrderKey: Hashable, Comparable, Sendable, Codable {
    public var time: UInt64
    public var spanID: UInt64
    public var position: Int

    public init(time: UInt64, spanID: UInt64, position: Int) {
        self.time = time
        self.spanID = spanID
        self.position = position
    }

    public static func < (a: Self, b: Self) -> Bool { (a.time, a.spanID, a.position) < (b.time, b.spanID, b.position) }
}

/// SPEC §4.1 scopes.
public enum MetadataScope: String, Sendable, Hashable, Codable, Comparable {
    case trace, observation, extendedTrace = "extended_trace"

    public init?(wire: String) {
        switch wire.lowercased() {
        case "trace", "run": self = .trace
        case "observation", "step", "step_attempt": self = .observation
        case "extended_trace": self = .extendedTrace
        default: return nil
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// One metadata change `(target, kind, values)` (SPEC §4).
/// Identifies a metadata update for exactly-once (SPEC §4.7). Most
/// updates are a span's, named `<spanId>/<position>`: those are kept as
/// the two numbers, so no string is made, hashed and parsed back for each
/// one (two a span on the bench load). Any other name (a request's header
/// update, a REST write) is kept as its text. Every spelling of a span's
/// name, and only that, becomes the numbers, so equal names give equal ids
/// whichever way they were made.
public struct UpdateID: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    private enum Storage: Hashable, Sendable {
        case span(UInt64, position: UInt64)
        case text(String)
    }

    private let storage: Storage

    /// The update at `position` in span `span`.
    public init(span: SpanID, position: UInt64) {
        storage = .span(span.value, position: position)
    }

    /// The id spelled `text`.
    public init(_ text: String) {
        storage = Self.parseSpanName(text).map { .span($0.span, position: $0.position) } ?? .text(text)
    }

    public init(stringLiteral text: String) { self.init(text) }

    /// The span and position of a span's update; nil for any other.
    public var spanAndPosition: (span: UInt64, position: UInt64)? {
        if case .span(let span, let position) = storage { return (span, position) }
        return nil
    }

    /// How the id is spelled where it is stored or shown.
    public var text: String {
        switch storage {
        case .span(let span, let position): SpanID(span).hex + "/" + String(position)
        case .text(let text): text
        }
    }

    public var description: String { text }

    /// The span id and position of a name that is exactly what
    /// `SpanID.hex + "/" + String(position)` gives (16 lowercase hex
    /// digits, a slash, a decimal without leading zeros that fits 64 bits),
    /// read from its bytes.
    private static func parseSpanName(_ id: String) -> (span: UInt64, position: UInt64)? {
        var id = id
        return id.withUTF8 { u -> (span: UInt64, position: UInt64)? in
            guard u.count >= 18, u.count <= 37, u[16] == UInt8(ascii: "/") else { return nil }
            var span: UInt64 = 0
            for i in 0..<16 {
                let c = u[i]
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): span = span << 4 | UInt64(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): span = span << 4 | UInt64(c - UInt8(ascii: "a") + 10)
                default: return nil
                }
            }
            if u.count > 18 && u[17] == UInt8(ascii: "0") { return nil }
            var position: UInt64 = 0
            for i in 17..<u.count {
                let c = u[i]
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                let (times10, o1) = position.multipliedReportingOverflow(by: 10)
                let (next, o2) = times10.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
                if o1 || o2 { return nil }
                position = next
            }
            return (span, position)
        }
    }
}

public struct MetadataUpdate: Sendable, Hashable {
    /// Identifies the update for exactly-once (SPEC §4.7).
    public var id: UpdateID
    public var scope: MetadataScope
    /// The observation or span the update is addressed to; nil for trace scope.
    public var target: SpanID?
    public var kind: String
    /// Each top-level value as its canonical JSON text: from the attribute
    /// to the state, the stored record and the size count, nothing looks
    /// inside a value, so none is held as a `JSONValue` tree.
    public let values: [String: JSONText]
    public var order: OrderKey
    /// The size the limits count (SPEC §4.6), measured once: the fold checks
    /// it before the ack and again when it applies the update.
    public let size: Int

    public init(id: UpdateID, scope: MetadataScope, target: SpanID?, kind: String, values: [String: JSONText], order: OrderKey) {
        self.id = id
        self.scope = scope
        self.target = target
        self.kind = kind
        self.values = values
        self.order = order
        size = JSONDecoding.updateSize(text: values)
    }
}

/// The observation record of one span (SPEC §2), before trace-level folding.
public struct Observation: Sendable, Hashable {
    public var id: SpanID
    public var traceID: TraceID
    public var parentID: SpanID?
    public var type: ObservationType
    public var name: String
    public var startTimeUnixNano: UInt64
    public var endTimeUnixNano: UInt64
    public var completionStartTime: UInt64?
    public var model: String?
    public var modelParameters: [String: JSONValue]?
    /// Input and output as their canonical JSON text: the fold and the
    /// store only copy them (see `JSONText`).
    public var inputText: JSONText?
    public var outputText: JSONText?
    public var usageDetails: UsageDetails
    public var costDetails: CostDetails
    /// The Langfuse-compatible metadata view (SPEC §2.4) without user keys:
    /// `resourceAttributes`, `scope` and, for non-SDK scopes, `attributes`.
    /// User keys come from the observation-scope updates at fold time.
    public var systemMetadata: [String: JSONText]
    public var level: ObservationLevel
    public var statusMessage: String?
    public var version: String?
    public var release: String?
    public var environment: String
    public var promptName: String?
    public var promptVersion: Int64?
    /// The model definition that priced its usage (Langfuse's `modelId`).
    public var modelID: String?

    public init(
        id: SpanID, traceID: TraceID, parentID: SpanID?, type: ObservationType, name: String, startTimeUnixNano: UInt64, endTimeUnixNano: UInt64,
        completionStartTime: UInt64?, model: String?, modelParameters: [String: JSONValue]?, input: JSONValue?, output: JSONValue?,
        usageDetails: UsageDetails, costDetails: CostDetails, systemMetadata: [String: JSONText], level: ObservationLevel,
        statusMessage: String?, version: String?, release: String?, environment: String, promptName: String? = nil, promptVersion: Int64? = nil
    ) {
        self.init(
            id: id, traceID: traceID, parentID: parentID, type: type, name: name, startTimeUnixNano: startTimeUnixNano,
            endTimeUnixNano: endTimeUnixNano, completionStartTime: completionStartTime, model: model, modelParameters: modelParameters,
            inputText: input.map(JSONText.init), outputText: output.map(JSONText.init), usageDetails: usageDetails, costDetails: costDetails,
            systemMetadata: systemMetadata, level: level, statusMessage: statusMessage, version: version, release: release,
            environment: environment, promptName: promptName, promptVersion: promptVersion, modelID: nil
        )
    }

    /// Every field as it is stored (`SpanMapper.map`).
    init(
        id: SpanID, traceID: TraceID, parentID: SpanID?, type: ObservationType, name: String, startTimeUnixNano: UInt64, endTimeUnixNano: UInt64,
        completionStartTime: UInt64?, model: String?, modelParameters: [String: JSONValue]?, inputText: JSONText?, outputText: JSONText?,
        usageDetails: UsageDetails, costDetails: CostDetails, systemMetadata: [String: JSONText], level: ObservationLevel,
        statusMessage: String?, version: String?, release: String?, environment: String, promptName: String?, promptVersion: Int64?,
        modelID: String?
    ) {
        self.id = id
        self.traceID = traceID
        self.parentID = parentID
        self.type = type
        self.name = name
        self.startTimeUnixNano = startTimeUnixNano
        self.endTimeUnixNano = endTimeUnixNano
        self.completionStartTime = completionStartTime
        self.model = model
        self.modelParameters = modelParameters
        self.inputText = inputText
        self.outputText = outputText
        self.usageDetails = usageDetails
        self.costDetails = costDetails
        self.systemMetadata = systemMetadata
        self.level = level
        self.statusMessage = statusMessage
        self.version = version
        self.release = release
        self.environment = environment
        self.promptName = promptName
        self.promptVersion = promptVersion
        self.modelID = modelID
    }

    /// `costDetails.total` as a number, for the trace's `totalCost`.
    public var totalCost: Double? { costDetails.totalValue }

    /// The input as a value, parsed from its text.
    public var input: JSONValue? {
        get { inputText?.value }
        set { inputText = newValue.map(JSONText.init) }
    }

    public var output: JSONValue? {
        get { outputText?.value }
        set { outputText = newValue.map(JSONText.init) }
    }
}

/// What one span says about its trace (SPEC §3.1, R31–R39). Absent means
/// "says nothing", which never overwrites.
public struct TraceContribution: Sendable, Hashable {
    public var name: String?
    public var userID: String?
    public var sessionID: String?
    public var version: String?
    public var release: String?
    /// The span's own environment, when it names one (not the "default" fallback).
    public var environment: String?
    public var tags: [String] = []
    public var isPublic = false
    public var input: JSONValue?
    public var output: JSONValue?
    /// `langfuse.internal.as_root`.
    public var asRoot = false
}

/// Everything the fold needs from one span.
public struct MappedSpan: Sendable, Hashable {
    public var observation: Observation
    public var trace: TraceContribution
    /// Updates this span carries, in position order.
    public var updates: [MetadataUpdate]
    /// Problems found while mapping, as `tracefold.warnings` values.
    public var warnings: [String: JSONValue]
    /// Order key of the span's own attributes (its start time).
    public var order: OrderKey
    /// The request the span arrived in: its header warnings and governance
    /// layers (SPEC §5). Its metadata is already one of `updates`.
    public var request: RequestMetadata?
    /// Pricing decided now, for a span not priced before: the fold stamps
    /// it on the stored span (`CostDecision.stamp`).
    public var newCostStamp: String? = nil
}

extension MappedSpan {
    /// Moves the observation out, leaving an empty one in its place. The
    /// fold keeps a span's observation and drops the rest of its mapping;
    /// reading the observation out copied every field of it (a retain each),
    /// and dropping the mapping then released them again.
    public mutating func takeObservation() -> Observation {
        var taken = Observation.empty
        swap(&taken, &observation)
        return taken
    }
}

extension Observation {
    /// A placeholder (`MappedSpan.takeObservation`): its empty strings and
    /// collections allocate nothing.
    static let empty = Observation(
        id: SpanID(0), traceID: TraceID(high: 0, low: 0), parentID: nil, type: .span, name: "", startTimeUnixNano: 0, endTimeUnixNano: 0,
        completionStartTime: nil, model: nil, modelParameters: nil, input: nil, output: nil, usageDetails: [:], costDetails: CostDetails([:]),
        systemMetadata: [:], level: .default, statusMessage: nil, version: nil, release: nil, environment: ""
    )
}
