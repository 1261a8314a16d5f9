import TracefoldMapping
import TracefoldModel

/// Renders records in the Langfuse v1 API shape (SPEC §2.1, §3.4, §4.8). The
/// same objects are JSONL lines and query answers.
public enum RecordRenderer {
    /// An observation's own metadata: its userland entry, then the system
    /// keys (resource attributes, scope, remaining attributes).
    static func metadata(of o: Observation, state: TraceState) -> [String: JSONText] {
        var metadata = state.texts(EntryKey(scope: .observation, target: o.id, kind: "userland.default"))
        for (k, v) in o.systemMetadata { metadata[k] = v }
        return metadata
    }

    /// `metadata(of:state:)` as a JSON object, keys sorted, written
    /// without the dictionary: the userland entry's values and the system
    /// keys, sorted together, a system key winning over a userland key of
    /// the same name. The dictionary, made for every observation each time
    /// it was rendered, took 1.1% of the CPU.
    static func writeMetadata(of o: Observation, state: TraceState, into w: inout JSONWriter) {
        typealias Member = (key: String, system: Bool, value: JSONText)
        let bucket = state.entries[EntryKey(scope: .observation, target: o.id, kind: "userland.default")]
        // String's `<`, as `writeObject` sorts; of equal keys the system
        // one comes last and is the one written.
        withSortedTemporaryBuffer(of: Member.self, count: (bucket?.count ?? 0) + o.systemMetadata.count, fill: { append in
            for (k, v) in bucket ?? [:] { append((k, false, v.value)) }
            for (k, v) in o.systemMetadata { append((k, true, v)) }
        }, by: { $0.key != $1.key ? $0.key < $1.key : !$0.system && $1.system }) { members in
            w.beginObject()
            var first = true
            for i in members.indices where i + 1 == members.count || members[i + 1].key != members[i].key {
                if !first { w.writeRaw(",") }
                first = false
                w.writeString(members[i].key)
                w.writeRaw(":")
                w.write(members[i].value)
            }
            w.endObject()
        }
    }

    /// The observation's record in its stored form (`ObservationRecord`,
    /// rendered as JSON when read), and its indexed columns.
    public static func observation(_ o: Observation, state: TraceState) -> ObservationRow {
        var scratch = [UInt8]()
        return observation(o, state: state, entries: ObservationEntries(state)[o.id], scratch: &scratch)
    }

    /// `entries`: the observation's entry keys, from `ObservationEntries`;
    /// `scratch`: room to write the record in (`ObservationRecord.encode`).
    static func observation(_ o: Observation, state: TraceState, entries: ArraySlice<EntryKey>, scratch: inout [UInt8]) -> ObservationRow {
        let latency = Double(o.endTimeUnixNano - o.startTimeUnixNano) / 1e9
        let record = ObservationRecord.encode(o, entries: entries, state: state, scratch: &scratch)
        return ObservationRow(
            traceID: o.traceID, spanID: o.id, startUnixNano: o.startTimeUnixNano, record: record, type: o.type.rawValue, name: o.name,
            level: o.level.rawValue, version: o.version, parentID: o.parentID, environment: o.environment, model: o.model,
            latency: latency, inputTokens: o.usageDetails["input"]?.numberValue, outputTokens: o.usageDetails["output"]?.numberValue,
            totalTokens: o.usageDetails["total"]?.numberValue, cost: o.totalCost
        )
    }

    /// The trace's metadata after the governance layers (SPEC §3.5, §5.3),
    /// and its root observation if it has arrived.
    /// `standIn`: what a cached trace keeps of its earliest span instead
    /// of the observation (`OpenTrace.keepStandInsOnly`), read when
    /// `observation` does not have that span.
    static func governed(_ s: TraceState, standIn: TraceStandIn? = nil, observation: (SpanID) -> Observation?) -> (Governed, root: Observation?) {
        let root = s.effectiveRoot.flatMap { observation($0.spanID) }
        // SPEC §3.5: the root observation's own metadata, then trace-scope
        // updates by order key.
        var metadata: [String: JSONText] = [:]
        if let root {
            // Not the whole rendered root observation: only its metadata.
            metadata = Self.metadata(of: root, state: s)
        } else if let earliest = s.earliest?.spanID,
            let stand = observation(earliest).map(TraceStandIn.init) ?? standIn.flatMap({ $0.spanID == earliest ? $0 : nil })
        {
            metadata["resourceAttributes"] = stand.resourceAttributes
            metadata["scope"] = stand.scope
        }
        for (k, v) in s.entries[EntryKey(scope: .trace, target: nil, kind: "userland.default")] ?? [:] { metadata[k] = v.value }
        return (Governed(s, metadata: metadata), root)
    }

    /// A trace's input or output: its own, else its root observation's
    /// text, else null.
    static func writeInputOutput(_ own: Versioned<JSONValue>?, _ root: JSONText?, into w: inout JSONWriter) {
        if let own {
            w.write(own.value)
        } else if let root {
            w.write(root)
        } else {
            w.writeRaw("null")
        }
    }

    /// The trace's record and indexed columns; `observation` looks up the
    /// stored observation of a span id.
    public static func trace(_ s: TraceState, standIn: TraceStandIn? = nil, observation: (SpanID) -> Observation?) -> TraceRow {
        let (governed, root) = governed(s, standIn: standIn, observation: observation)
        let metadata = governed.metadata

        let environment = s.effectiveRoot?.environment ?? s.environment?.value ?? "default"
        let minStart = s.minStart == .max ? firstWrite(s) : s.minStart
        let latency = Double(s.maxEnd >= minStart ? s.maxEnd - minStart : 0) / 1e9
        let totalCost = s.totalCost
        let tags = s.tags.sorted()
        var traceScope = JSONWriter()
        writeTraceScopeEntries(s, governed, into: &traceScope)
        // Summed over the buckets in place: copying each out as a dictionary
        // cost an allocation per entry on every render of the trace.
        var usage = 0
        for (key, bucket) in s.entries where !key.kind.hasPrefix("tracefold.warnings") {
            for (k, v) in bucket { usage += k.utf8.count + v.value.count }
        }
        var w = JSONWriter(reservingCapacity: 4096)
        w.beginObject()
        w.field("environment", string: environment)
        w.key("id")
        w.writeHex(s.traceID)
        w.key("input")
        writeInputOutput(s.input, root?.inputText, into: &w)
        w.field("latency", .double(latency))
        w.field("level", string: (s.worstLevel ?? .default).rawValue)
        w.key("metadata")
        w.writeObject(metadata)
        w.key("metadataEntries")
        w.beginArray()
        w.writeJSON(traceScope.bytes)
        // The usage entry, its keys in ascending order as `write(.object)`
        // put them, without the two dictionaries it took to build and sort.
        w.nextElement()
        w.beginObject()
        w.field("kind", string: "tracefold.usage")
        w.field("label", string: MetadataKind.label("tracefold.usage"))
        w.field("scope", string: "trace")
        w.key("updatedAt")
        w.writeRaw("null")
        w.key("values")
        w.beginObject()
        w.key("acceptedUpdateBytes")
        w.writeInt(Int64(s.cumulativeMetadataBytes))
        w.key("metadataBytes")
        w.writeInt(Int64(usage))
        w.endObject()
        w.endObject()
        w.endArray()
        w.field("name", string: s.name?.value ?? root?.name)
        // Written as they are sorted: a `JSONValue` array of hex strings
        // was an allocation per span at every render of the trace.
        w.key("observations")
        w.beginArray()
        for id in s.observationIDs.sorted() {
            w.nextElement()
            w.writeHex(id)
        }
        w.endArray()
        w.key("output")
        writeInputOutput(s.output, root?.outputText, into: &w)
        w.field("public", .bool(s.isPublic))
        w.field("release", string: s.release?.value)
        w.field("sessionId", string: s.sessionID?.value)
        w.key("tags")
        w.beginArray()
        for tag in tags {
            w.nextElement()
            w.writeString(tag)
        }
        w.endArray()
        w.field("timestamp", string: ISOTime.format(unixNano: minStart))
        w.field("totalCost", totalCost.map(JSONValue.double) ?? .int(0))
        w.field("userId", string: governed.userID)
        w.field("version", string: s.version?.value)
        w.endObject()
        return TraceRow(
            traceID: s.traceID, startUnixNano: minStart, json: w.bytes, name: s.name?.value ?? root?.name, userID: governed.userID,
            sessionID: s.sessionID?.value, version: s.version?.value, release: s.release?.value, environment: environment, tags: tags,
            isPublic: s.isPublic, latency: latency, totalCost: totalCost ?? 0, metadata: metadata
        )
    }

    /// A trace that only REST metadata writes have made so far starts when
    /// the first of them was received (each write's values carry that time
    /// in their order key), not at the epoch; its first span replaces it.
    static func firstWrite(_ s: TraceState) -> UInt64 {
        var first = UInt64.max
        for bucket in s.entries.values {
            for v in bucket.values where v.order.time < first { first = v.order.time }
        }
        return first == .max ? 0 : first
    }

    /// Every entry of the trace, all scopes, in (scope, span, kind) order
    /// (SPEC §7.3), extended-trace entries whose span never arrived
    /// included: the other scopes from the state, the trace scope as the
    /// record has it. Rendered when read, not stored.
    public static func allEntries(_ s: TraceState, standIn: TraceStandIn? = nil, observation: (SpanID) -> Observation?) -> [UInt8] {
        var all = JSONWriter()
        all.beginArray()
        for key in s.entries.keys.filter({ $0.scope != .trace }).sorted() {
            all.nextElement()
            writeEntry(key, s, into: &all)
        }
        var traceScope = JSONWriter()
        writeTraceScopeEntries(s, governed(s, standIn: standIn, observation: observation).0, into: &traceScope)
        if !traceScope.bytes.isEmpty {
            all.nextElement()
            all.writeJSON(traceScope.bytes)
        }
        all.endArray()
        return all.bytes
    }

    /// The trace-scope entries, with the warnings found while resolving the
    /// governance layers, then one entry per layer: array elements, without
    /// the brackets.
    static func writeTraceScopeEntries(_ s: TraceState, _ governed: Governed, into w: inout JSONWriter) {
        let warningsKey = EntryKey(scope: .trace, target: nil, kind: "tracefold.warnings")
        var keys = s.entries.keys.filter { $0.scope == .trace }
        if !governed.warnings.isEmpty && !keys.contains(warningsKey) { keys.append(warningsKey) }
        var first = true
        for key in keys.sorted() {
            if !first { w.writeRaw(",") }
            first = false
            writeEntry(key, s, extra: key == warningsKey ? governed.warnings : [:], into: &w)
        }
        for layer in governed.layers {
            if !first { w.writeRaw(",") }
            first = false
            w.write(layer)
        }
    }

    /// One metadata entry, its keys in order; `extra` values join the
    /// stored ones.
    static func writeEntry(_ key: EntryKey, _ s: TraceState, extra: [String: JSONValue] = [:], into w: inout JSONWriter) {
        let bucket = s.entries[key] ?? [:]
        w.beginObject()
        w.field("kind", string: key.kind)
        w.field("label", string: MetadataKind.label(key.kind))
        w.field("scope", string: key.scope.rawValue)
        if let target = key.target { w.field("spanId", string: target.hex) }
        w.field("updatedAt", string: updatedAt(bucket).map { ISOTime.format(unixNano: $0) })
        w.key("values")
        if extra.isEmpty {
            writeValues(bucket, into: &w)
        } else {
            var values = bucket.mapValues(\.value)
            for (k, v) in extra { values[k] = JSONText(v) }
            w.writeObject(values)
        }
        w.endObject()
    }

    /// When an entry last changed: the latest order time of its values.
    static func updatedAt(_ bucket: [String: Versioned<JSONText>]) -> UInt64? {
        // A loop: `values.map(\.order.time).max()` made an array for every
        // entry of every observation rendered, and a lazy map through the
        // key path cost ten times the loop.
        var latest: UInt64?
        for v in bucket.values { latest = max(latest ?? v.order.time, v.order.time) }
        return latest
    }

    /// An entry's values as a JSON object, keys sorted, without copying
    /// them out of their bucket into a dictionary.
    static func writeValues(_ bucket: [String: Versioned<JSONText>], into w: inout JSONWriter) {
        w.beginObject()
        bucket.withPairsSortedByKey { pairs in
            for (k, v) in pairs {
                w.key(k)
                w.write(v.value)
            }
        }
        w.endObject()
    }
}

/// A trace's metadata after the governance layers and `_user` (SPEC
/// §5.3–5.4). Resolved whenever the record is built, never stored, so a
/// request value that arrives after a governance value cannot replace it.
struct Governed {
    var metadata: [String: JSONText]
    var userID: String?
    var warnings: [String: JSONValue] = [:]
    /// `tracefold.api_key` and `tracefold.workspace` entries showing each layer.
    var layers: [JSONValue] = []

    static let maxUserScalars = TraceRow.maxUserScalars

    init(_ s: TraceState, metadata request: [String: JSONText]) {
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
        if metadata[TraceRow.userKey] == nil, let user = userID {
            let n = user.unicodeScalars.count
            if n <= Self.maxUserScalars {
                metadata[TraceRow.userKey] = .string(user)
            } else {
                warnings[TraceRow.userKey] = .string("userId is \(n) characters long, over the \(Self.maxUserScalars)-character limit of _user; not copied")
            }
        }
        if userID == nil, let user = metadata[TraceRow.userKey]?.stringValue, !user.isEmpty { userID = user }
        self.metadata = metadata
    }

    static func layer(_ kind: String, _ label: String, _ values: [String: String]) -> JSONValue {
        .object([
            "scope": .string("trace"), "kind": .string(kind), "label": .string(label),
            "values": .object(values.mapValues(JSONValue.string)), "updatedAt": .null,
        ])
    }
}

/// The observation- and extended-trace-scope entry keys of a trace, found
/// in one pass over its entries, by the span each targets, each span's in
/// `EntryKey` order. One array for the trace, each span's keys a slice of
/// it: a dictionary of arrays was an array, grown key by key, for every
/// observation rendered (three allocations a span on the bench load).
struct ObservationEntries {
    /// Sorted by target, then as `EntryKey`s sort.
    private var keys: [EntryKey] = []

    init(_ state: TraceState) {
        for key in state.entries.keys where key.target != nil && (key.scope == .observation || key.scope == .extendedTrace) {
            if keys.isEmpty { keys.reserveCapacity(state.entries.count) }
            keys.append(key)
        }
        keys.sort { a, b in a.target!.value != b.target!.value ? a.target!.value < b.target!.value : a < b }
    }

    /// The keys that target `id`, sorted; empty when none do.
    subscript(id: SpanID) -> ArraySlice<EntryKey> {
        var low = 0
        var high = keys.count
        while low < high {
            let mid = (low + high) / 2
            if keys[mid].target!.value < id.value { low = mid + 1 } else { high = mid }
        }
        var end = low
        while end < keys.count, keys[end].target == id { end += 1 }
        return keys[low..<end]
    }
}

/// What a trace's record reads of its earliest span while it has no root:
/// the span's resource and scope, which stand in for the root's metadata
/// (`RecordRenderer.governed`). A cached trace keeps this instead of the
/// whole observation (`OpenTrace.keepStandInsOnly`): a trace whose root
/// has not arrived then costs its state and these two references, not
/// the earliest span's input, name, usage and metadata besides.
public struct TraceStandIn: Hashable, Sendable {
    public var spanID: SpanID
    public var resourceAttributes: JSONText?
    public var scope: JSONText?

    public init(spanID: SpanID, resourceAttributes: JSONText?, scope: JSONText?) {
        self.spanID = spanID
        self.resourceAttributes = resourceAttributes
        self.scope = scope
    }

    public init(_ o: Observation) {
        self.init(spanID: o.id, resourceAttributes: o.systemMetadata["resourceAttributes"], scope: o.systemMetadata["scope"])
    }
}
