import TracefoldMapping
import TracefoldModel

/// A value with the order key of the update that set it; merging keeps the
/// greatest key, so the result does not depend on arrival order.
public struct Versioned<Value: Hashable & Sendable>: Hashable, Sendable {
    public var value: Value
    public var order: OrderKey

    public init(_ value: Value, _ order: OrderKey) {
        self.value = value
        self.order = order
    }

    static func latest(_ a: Versioned?, _ b: Versioned?) -> Versioned? {
        guard let a else { return b }
        guard let b else { return a }
        return b.order > a.order ? b : a
    }
}

/// Where a metadata entry attaches: its scope, the observation or span for
/// the non-trace scopes, and its kind (SPEC §4.1, §4.4: one bucket per
/// `(target, kind)`).
public struct EntryKey: Hashable, Sendable, Comparable {
    public var scope: MetadataScope
    public var target: SpanID?
    public var kind: String

    public init(scope: MetadataScope, target: SpanID?, kind: String) {
        self.scope = scope
        self.target = target
        self.kind = kind
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.scope, a.target?.value ?? 0, a.kind) < (b.scope, b.target?.value ?? 0, b.kind)
    }

    /// The kind by its length only: equal keys still hash equally, and a
    /// trace's entries differ by target and scope far more than by kinds of
    /// one length (an observation's `userland.default` and `tracefold.ai`
    /// already differ in length). Hashing the kind's text was most of the
    /// cost of every lookup in `entries`, several a span.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(scope)
        hasher.combine(target?.value ?? 0)
        hasher.combine(target != nil)
        hasher.combine(kind.utf8.count)
    }
}

/// The merged state of one trace. Every field is folded with an operation that
/// is commutative and idempotent per distinct input (max by order key, min,
/// max, set union, OR, map keyed by span), so the record rendered from it is a
/// function of the set of spans and updates received (SPEC §3.3). The one
/// exception is the cumulative metadata limit, which is first-come (§4.6).
public struct TraceState: Hashable, Sendable {
    public struct Root: Hashable, Sendable {
        public var spanID: SpanID
        public var start: UInt64
        /// The root span's own environment, when it names one.
        public var environment: String?
        /// The API key and workspace the span arrived under (SPEC §5.3).
        public var governance: Governance?

        func precedes(_ other: Root) -> Bool { (start, spanID.value) < (other.start, other.spanID.value) }
    }

    public var traceID: TraceID
    public var observationIDs: Set<SpanID> = []
    public var minStart: UInt64 = .max
    public var maxEnd: UInt64 = 0
    public var name: Versioned<String>?
    public var userID: Versioned<String>?
    public var sessionID: Versioned<String>?
    public var version: Versioned<String>?
    public var release: Versioned<String>?
    public var environment: Versioned<String>?
    public var tags: Set<String> = []
    public var isPublic = false
    public var input: Versioned<JSONValue>?
    public var output: Versioned<JSONValue>?
    /// The true root (no parent) with the earliest start; ties by span id.
    public var root: Root?
    /// The earliest `langfuse.internal.as_root` span, used only when no true root exists.
    public var asRoot: Root?
    /// The earliest span of all, whose resource and scope stand in when there is no root.
    public var earliest: Root?
    /// The sum of the observations' total costs, in 1e-12 USD. Integer
    /// addition is exact, so the sum is the same whatever order the spans
    /// come in, without keeping (and encoding) a cost per span to add up in
    /// span-id order. Nil while no observation has a cost.
    public var costPicos: Int64?
    public var worstLevel: ObservationLevel?
    /// Per entry, per top-level key: the winning value (SPEC §4.4 shallow
    /// merge), as the canonical text its update carried: the records, the
    /// codec and the usage count copy or count it, none parses it.
    public var entries: [EntryKey: [String: Versioned<JSONText>]] = [:]
    /// Accepted updates by id with their size: exactly-once and the
    /// cumulative limit (SPEC §4.6, §4.7).
    public private(set) var acceptedUpdates: [UpdateID: Int] = [:]
    /// Every API key (with its workspace) that spans of this trace arrived
    /// under; more than one is reported as a warning.
    public var arrivedUnder: Set<String> = []

    public init(traceID: TraceID) { self.traceID = traceID }

    /// The spans a new trace makes room for (`add`).
    static let expectedSpans = 8
    /// The updates and entries a span is expected to add: its trace
    /// metadata and its own (one entry shared by the trace, one its own),
    /// and an extractor's (`tracefold.ai` or `tracefold.http`, one its
    /// own). Room for one update a span, then two, made `add` rehash both
    /// tables again once a trace passed its sixth span (about 2% of the
    /// collector's CPU on the bench load, where every span has the three).
    static let expectedUpdatesPerSpan = 3
    static let expectedEntriesPerSpan = 2

    /// The sum of `acceptedUpdates`, kept as they are accepted: summing
    /// them on every update made a trace's fold quadratic in its updates.
    public private(set) var cumulativeMetadataBytes = 0

    /// The span that stands for the trace: the true root, else an as_root span.
    public var effectiveRoot: Root? { root ?? asRoot }

    /// The governance layers of the trace: those of the key its root span
    /// arrived under, or, until the root arrives, of the earliest span's key.
    /// Chosen by span, not by arrival, so the order spans come in cannot
    /// change it (SPEC §5.3).
    public var governance: Governance? { (effectiveRoot ?? earliest)?.governance }

    /// Folds one span in. Returns the warnings it produced (dropped updates).
    @discardableResult
    public mutating func add(_ mapped: MappedSpan, limits: MetadataLimits) -> [String: JSONValue] {
        var drops = [MetadataDrop]()
        return add(mapped, limits: limits, drops: &drops)
    }

    /// Folds one span in; `drops` gets the updates a limit dropped.
    public mutating func add(_ mapped: MappedSpan, limits: MetadataLimits, drops: inout [MetadataDrop]) -> [String: JSONValue] {
        let o = mapped.observation
        let order = mapped.order
        if observationIDs.isEmpty {
            // A trace's first span makes room for the next few: most traces
            // have several spans, each with an update or two and an entry,
            // and grown one by one these were rehashed at every doubling.
            observationIDs = Set(minimumCapacity: Self.expectedSpans)
            Self.makeRoom(&acceptedUpdates, for: Self.expectedUpdatesPerSpan * Self.expectedSpans)
            Self.makeRoom(&entries, for: Self.expectedEntriesPerSpan * Self.expectedSpans + 1)
        }
        let isNew = observationIDs.insert(o.id).inserted
        minStart = min(minStart, o.startTimeUnixNano)
        maxEnd = max(maxEnd, o.endTimeUnixNano)
        let t = mapped.trace
        func set(_ field: inout Versioned<String>?, _ value: String?) {
            if let value, !value.isEmpty { field = .latest(field, Versioned(value, order)) }
        }
        set(&name, t.name)
        set(&userID, t.userID)
        set(&sessionID, t.sessionID)
        set(&version, t.version)
        set(&release, t.release)
        set(&environment, t.environment)
        tags.formUnion(t.tags)
        isPublic = isPublic || t.isPublic
        if let v = t.input { input = .latest(input, Versioned(v, order)) }
        if let v = t.output { output = .latest(output, Versioned(v, order)) }
        let me = Root(spanID: o.id, start: o.startTimeUnixNano, environment: t.environment, governance: mapped.request?.governance)
        if let g = mapped.request?.governance { arrivedUnder.insert(g.label) }
        if o.parentID == nil {
            if root.map({ me.precedes($0) }) ?? true { root = me }
        } else if t.asRoot {
            if asRoot.map({ me.precedes($0) }) ?? true { asRoot = me }
        }
        if earliest.map({ me.precedes($0) }) ?? true { earliest = me }
        if isNew, let cost = o.totalCost { costPicos = (costPicos ?? 0) &+ Self.picos(cost) }
        worstLevel = max(worstLevel ?? o.level, o.level)

        var warnings = mapped.warnings
        for update in mapped.updates {
            if let drop = apply(update, limits: limits) {
                warnings[update.id.text] = .string(drop.message)
                drops.append(drop)
            }
        }
        let warningsKey = EntryKey(scope: .trace, target: nil, kind: "tracefold.warnings")
        if !warnings.isEmpty {
            withBucket(warningsKey) { bucket in
                for (k, v) in warnings { Self.merge(&bucket, k, Versioned(JSONText(v), order)) }
            }
        }
        // The receiver already reported these in the request's partial_success.
        if let request = mapped.request, !request.warnings.isEmpty {
            let at = OrderKey(time: request.receivedAtUnixNano, spanID: 0, position: 0)
            withBucket(warningsKey) { bucket in
                for (k, v) in request.warnings { Self.merge(&bucket, k, Versioned(JSONText.string(v), at)) }
            }
        }
        return warnings
    }

    /// The warnings `add` gives for this span whatever the trace already
    /// holds, in the same order: mapping warnings and updates over the
    /// per-update limit, by key.
    public static func stateIndependentDrops(_ mapped: MappedSpan, limits: MetadataLimits) -> [String] {
        stateIndependentDrops(updates: mapped.updates, warnings: mapped.warnings, limits: limits)
    }

    /// The same, from `SpanMapper.mapUpdates`, before the span is mapped.
    public static func stateIndependentDrops(_ mapped: SpanMapper.MappedUpdates, limits: MetadataLimits) -> [String] {
        stateIndependentDrops(updates: mapped.updates, warnings: mapped.warnings, limits: limits)
    }

    private static func stateIndependentDrops(updates: [MetadataUpdate], warnings: [String: JSONValue], limits: MetadataLimits) -> [String] {
        var warnings = warnings
        for update in updates {
            let size = update.size
            if size > limits.maxUpdateBytes { warnings[update.id.text] = .string(MetadataDrop.updateTooLarge(size: size, limit: limits.maxUpdateBytes).message) }
        }
        return warnings.sorted { $0.key < $1.key }.compactMap { $0.value.stringValue }
    }

    /// Applies one update unless it was applied before or breaks a limit.
    /// Returns why it was dropped, or nil.
    public mutating func apply(_ update: MetadataUpdate, limits: MetadataLimits) -> MetadataDrop? {
        // Decided in the id's slot, found once: a lookup and then an insert
        // hashed the id twice for every update accepted.
        var drop: MetadataDrop?
        var accepted: Int?
        let total = cumulativeMetadataBytes
        Self.inSlot(&acceptedUpdates[update.id]) { slot in
            guard slot == nil else { return }
            let size = update.size
            if size > limits.maxUpdateBytes {
                drop = .updateTooLarge(size: size, limit: limits.maxUpdateBytes)
            } else if total + size > limits.maxTraceBytes {
                drop = .traceLimit(total: total + size, limit: limits.maxTraceBytes)
            } else {
                slot = size
                accepted = size
            }
        }
        guard let size = accepted else { return drop }
        cumulativeMetadataBytes += size
        let key = EntryKey(scope: update.scope, target: update.scope == .trace ? nil : update.target, kind: update.kind)
        // An entry exists once an update was accepted for it, even with no
        // values. A new one is the update's values as they are: mapped in
        // place, its keys are not hashed again (most entries are new: an
        // observation's own and its extractors'). Found in its slot once,
        // where a lookup and then an insert hashed the key twice.
        Self.inSlot(&entries[key]) { bucket in
            if bucket == nil {
                let order = update.order
                bucket = update.values.mapValues { Versioned($0, order) }
            } else {
                Self.merge(update, into: &bucket!)
            }
        }
        return nil
    }

    /// Room for `n` more entries. An empty table (REST updates may have
    /// filled one before the first span) is made at its size:
    /// `reserveCapacity` is the standard library's generic code, which
    /// looks the table's type up at run time.
    private static func makeRoom<K, V>(_ table: inout [K: V], for n: Int) {
        if table.isEmpty { table = Dictionary(minimumCapacity: n) } else { table.reserveCapacity(table.count + n) }
    }

    /// `body` on a dictionary's slot for one key, in place: one hash of the
    /// key, and nil in, nil out leaves the dictionary as it was.
    @inline(__always)
    private static func inSlot<V>(_ slot: inout V?, _ body: (inout V?) -> Void) { body(&slot) }

    /// `body` on the entry's bucket, in place: one hash of the key for all
    /// the fields merged, and no copy of the bucket (copy-on-write).
    private mutating func withBucket(_ key: EntryKey, _ body: (inout [String: Versioned<JSONText>]) -> Void) {
        body(&entries[key, default: [:]])
    }

    /// Each of the update's values merged into an entry's bucket in place.
    private static func merge(_ update: MetadataUpdate, into bucket: inout [String: Versioned<JSONText>]) {
        for (k, v) in update.values { merge(&bucket, k, Versioned(v, update.order)) }
    }

    /// `Versioned.latest` of the field's value and `value`, in one hash of
    /// the field: a new field takes `value`, which then does not beat itself.
    private static func merge(_ bucket: inout [String: Versioned<JSONText>], _ field: String, _ value: Versioned<JSONText>) {
        func keepLatest(_ current: inout Versioned<JSONText>) {
            if value.order > current.order { current = value }
        }
        keepLatest(&bucket[field, default: value])
    }

    /// Merged values of one entry, parsed.
    public func values(_ key: EntryKey) -> [String: JSONValue] {
        (entries[key] ?? [:]).mapValues(\.value.value)
    }

    /// Merged values of one entry, as their text.
    public func texts(_ key: EntryKey) -> [String: JSONText] {
        (entries[key] ?? [:]).mapValues(\.value)
    }

    /// Sets the accepted updates and their sum, as `TraceStateCodec` read them.
    mutating func restoreAcceptedUpdates(_ accepted: [UpdateID: Int]) {
        acceptedUpdates = accepted
        cumulativeMetadataBytes = accepted.values.reduce(0, +)
    }

    public var totalCost: Double? { costPicos.map { Double($0) / 1e12 } }

    /// USD in 1e-12 units, clamped to what an Int64 holds (±9.2 million USD
    /// an observation).
    static func picos(_ usd: Double) -> Int64 {
        let scaled = (usd * 1e12).rounded()
        guard scaled.isFinite else { return 0 }
        return scaled >= 9.2e18 ? 9_200_000_000_000_000_000 : scaled <= -9.2e18 ? -9_200_000_000_000_000_000 : Int64(scaled)
    }
}

public struct MetadataLimits: Sendable, Hashable {
    public var maxUpdateBytes = 65_536
    public var maxTraceBytes = 1_048_576
    public init(maxUpdateBytes: Int = 65_536, maxTraceBytes: Int = 1_048_576) {
        self.maxUpdateBytes = maxUpdateBytes
        self.maxTraceBytes = maxTraceBytes
    }
}

/// Why the fold dropped a metadata update (SPEC §4.6).
public enum MetadataDrop: Sendable, Hashable {
    case updateTooLarge(size: Int, limit: Int)
    case traceLimit(total: Int, limit: Int)

    public var message: String {
        switch self {
        case .updateTooLarge(let size, let limit): "metadata update of \(size) bytes exceeds the \(limit)-byte limit; dropped"
        case .traceLimit(let total, let limit): "cumulative metadata size would reach \(total) bytes, over the \(limit)-byte limit; dropped"
        }
    }

    /// The `reason` label of `tracefold_metadata_updates_dropped_total`.
    public var reason: String {
        switch self {
        case .updateTooLarge: "update_too_large"
        case .traceLimit: "trace_limit"
        }
    }
}
