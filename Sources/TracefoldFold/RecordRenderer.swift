import TracefoldMapping
import TracefoldModel

/// Renders records in the Langfuse v1 API shape (SPEC §2.1, §3.4, §4.8). The
/// same objects are JSONL lines and query answers.
public enum RecordRenderer {
    /// An observation's own metadata: its userland entry, then the system
    /// keys (resource attributes, scope, remaining attributes).
    static func metadata(of o: Observation, state: TraceState) -> [String: JSONValue] {
        var metadata = state.values(EntryKey(scope: .observation, target: o.id, kind: "userland.default"))
        for (k, v) in o.systemMetadata { metadata[k] = v }
        return metadata
    }

    public static func observation(_ o: Observation, state: TraceState) -> [String: JSONValue] {
        let metadata = metadata(of: o, state: state)
        var r: [String: JSONValue] = [
            "id": .string(o.id.hex),
            "traceId": .string(o.traceID.hex),
            "parentObservationId": o.parentID.map { .string($0.hex) } ?? .null,
            "type": .string(o.type.rawValue),
            "name": .string(o.name),
            "startTime": .string(ISOTime.format(unixNano: o.startTimeUnixNano)),
            "endTime": .string(ISOTime.format(unixNano: o.endTimeUnixNano)),
            "startTimeUnixNano": .string(String(o.startTimeUnixNano)),
            "endTimeUnixNano": .string(String(o.endTimeUnixNano)),
            "completionStartTime": o.completionStartTime.map { .string(ISOTime.format(unixNano: $0)) } ?? .null,
            "model": o.model.map(JSONValue.string) ?? .null,
            "modelParameters": o.modelParameters.map(JSONValue.object) ?? .null,
            "input": o.input ?? .null,
            "output": o.output ?? .null,
            "usageDetails": .object(o.usageDetails),
            "costDetails": .object(o.costDetails),
            "metadata": .object(metadata),
            "level": .string(o.level.rawValue),
            "statusMessage": o.statusMessage.map(JSONValue.string) ?? .null,
            "version": o.version.map(JSONValue.string) ?? .null,
            "release": o.release.map(JSONValue.string) ?? .null,
            "environment": .string(o.environment),
            "promptName": o.promptName.map(JSONValue.string) ?? .null,
            "promptVersion": o.promptVersion.map(JSONValue.int) ?? .null,
            "latency": .double(Double(o.endTimeUnixNano - o.startTimeUnixNano) / 1e9),
        ]
        r["metadataEntries"] = .array(
            state.entries.keys
                .filter { ($0.scope == .observation || $0.scope == .extendedTrace) && $0.target == o.id }
                .sorted()
                .map { entry($0, state) }
        )
        return r
    }

    /// `observation` looks up the stored observation of a span id.
    public static func trace(_ s: TraceState, observation: (SpanID) -> Observation?) -> [String: JSONValue] {
        let root = s.effectiveRoot.flatMap { observation($0.spanID) }
        let stand = root ?? s.earliest.flatMap { observation($0.spanID) }
        // SPEC §3.5: the root observation's own metadata, then trace-scope
        // updates by order key.
        var metadata: [String: JSONValue] = [:]
        if let root {
            // Not the whole rendered root observation: only its metadata.
            metadata = Self.metadata(of: root, state: s)
        } else if let stand {
            metadata["resourceAttributes"] = stand.systemMetadata["resourceAttributes"]
            metadata["scope"] = stand.systemMetadata["scope"]
        }
        for (k, v) in s.values(EntryKey(scope: .trace, target: nil, kind: "userland.default")) { metadata[k] = v }
        let governed = Governed(s, metadata: metadata)
        metadata = governed.metadata

        let environment = s.effectiveRoot?.environment ?? s.environment?.value ?? "default"
        let minStart = s.minStart == .max ? 0 : s.minStart
        var r: [String: JSONValue] = [
            "id": .string(s.traceID.hex),
            "timestamp": .string(ISOTime.format(unixNano: minStart)),
            "name": (s.name?.value ?? root?.name).map(JSONValue.string) ?? .null,
            "userId": governed.userID.map(JSONValue.string) ?? .null,
            "sessionId": s.sessionID.map { .string($0.value) } ?? .null,
            "version": s.version.map { .string($0.value) } ?? .null,
            "release": s.release.map { .string($0.value) } ?? .null,
            "environment": .string(environment),
            "tags": .array(s.tags.sorted().map(JSONValue.string)),
            "public": .bool(s.isPublic),
            "input": s.input?.value ?? root?.input ?? .null,
            "output": s.output?.value ?? root?.output ?? .null,
            "metadata": .object(metadata),
            "latency": .double(Double(s.maxEnd >= minStart ? s.maxEnd - minStart : 0) / 1e9),
            "totalCost": s.totalCost.map(JSONValue.double) ?? .int(0),
            "level": .string((s.worstLevel ?? .default).rawValue),
            "observations": .array(s.observationIDs.sorted().map { .string($0.hex) }),
        ]
        var entries = traceScopeEntries(s, governed)
        let usage = s.entries.keys
            .filter { !$0.kind.hasPrefix("tracefold.warnings") }
            .reduce(0) { $0 + JSONDecoding.updateSize(s.values($1)) }
        entries.append(.object([
            "scope": .string("trace"), "kind": .string("tracefold.usage"), "label": .string(MetadataKind.label("tracefold.usage")),
            "values": .object(["metadataBytes": .int(Int64(usage)), "acceptedUpdateBytes": .int(Int64(s.cumulativeMetadataBytes))]),
            "updatedAt": .null,
        ]))
        r["metadataEntries"] = .array(entries)
        return r
    }

    /// Every entry of the trace, all scopes, in (scope, span, kind) order:
    /// the other scopes from the state, the trace scope as `trace` rendered it.
    public static func allEntries(_ s: TraceState, trace: [String: JSONValue]) -> JSONValue {
        let others = s.entries.keys.filter { $0.scope != .trace }.sorted().map { entry($0, s) }
        let traceScope = (trace["metadataEntries"]?.arrayValue ?? []).filter { $0["kind"]?.stringValue != "tracefold.usage" }
        return .array(others + traceScope)
    }

    /// The trace-scope entries, with the warnings found while resolving the
    /// governance layers, then one entry per layer.
    static func traceScopeEntries(_ s: TraceState, _ governed: Governed) -> [JSONValue] {
        let warningsKey = EntryKey(scope: .trace, target: nil, kind: "tracefold.warnings")
        var keys = s.entries.keys.filter { $0.scope == .trace }
        if !governed.warnings.isEmpty && !keys.contains(warningsKey) { keys.append(warningsKey) }
        var out = keys.sorted().map { entry($0, s, extra: $0 == warningsKey ? governed.warnings : [:]) }
        out.append(contentsOf: governed.layers)
        return out
    }

    static func entry(_ key: EntryKey, _ s: TraceState, extra: [String: JSONValue] = [:]) -> JSONValue {
        let bucket = s.entries[key] ?? [:]
        var values = bucket.mapValues(\.value)
        for (k, v) in extra { values[k] = v }
        var o: [String: JSONValue] = [
            "scope": .string(key.scope.rawValue),
            "kind": .string(key.kind),
            "label": .string(MetadataKind.label(key.kind)),
            // The writer sorts object keys, so `values` comes out alphabetical.
            "values": .object(values),
            "updatedAt": bucket.values.map(\.order.time).max().map { .string(ISOTime.format(unixNano: $0)) } ?? .null,
        ]
        if let target = key.target { o["spanId"] = .string(target.hex) }
        return .object(o)
    }
}

/// A trace's metadata after the governance layers and `_user` (SPEC
/// §5.3–5.4). Resolved whenever the record is built, never stored, so a
/// request value that arrives after a governance value cannot replace it.
struct Governed {
    var metadata: [String: JSONValue]
    var userID: String?
    var warnings: [String: JSONValue] = [:]
    /// `tracefold.api_key` and `tracefold.workspace` entries showing each layer.
    var layers: [JSONValue] = []

    static let maxUserScalars = 128

    init(_ s: TraceState, metadata request: [String: JSONValue]) {
        var metadata = request
        userID = s.userID?.value
        if let g = s.governance {
            // Lowest to highest: schema defaults, request, API key, workspace.
            for (k, v) in g.defaults where metadata[k] == nil { metadata[k] = .string(v) }
            for (k, v) in g.apiKeyMetadata { metadata[k] = .string(v) }
            for (k, v) in g.workspaceMetadata { metadata[k] = .string(v) }
            layers.append(Self.layer("tracefold.api_key", "API Key Metadata (\(g.apiKey))", g.apiKeyMetadata))
            if let w = g.workspace { layers.append(Self.layer("tracefold.workspace", "Workspace Metadata (\(w))", g.workspaceMetadata)) }
        }
        if s.arrivedUnder.count > 1, let g = s.governance {
            warnings["governance"] = .string(
                "spans of this trace arrived under \(s.arrivedUnder.count) API keys (\(s.arrivedUnder.sorted().joined(separator: ", "))); "
                    + "the key of the root span, \(g.label), governs the trace"
            )
        }
        if metadata["_user"] == nil, let user = userID {
            let n = user.unicodeScalars.count
            if n <= Self.maxUserScalars {
                metadata["_user"] = .string(user)
            } else {
                warnings["_user"] = .string("userId is \(n) characters long, over the \(Self.maxUserScalars)-character limit of _user; not copied")
            }
        }
        if userID == nil, case .string(let user)? = metadata["_user"], !user.isEmpty { userID = user }
        self.metadata = metadata
    }

    static func layer(_ kind: String, _ label: String, _ values: [String: String]) -> JSONValue {
        .object([
            "scope": .string("trace"), "kind": .string(kind), "label": .string(label),
            "values": .object(values.mapValues(JSONValue.string)), "updatedAt": .null,
        ])
    }
}
