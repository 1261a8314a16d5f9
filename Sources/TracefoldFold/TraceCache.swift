import TracefoldMapping
import TracefoldModel

/// A trace the fold holds open: its merged state, the observations its
/// record is rendered from, and how far into its stored history it goes.
struct OpenTrace {
    var state: TraceState
    /// Between folds, only the observations the trace record needs (the
    /// root's and the as-root's; see `keepStandInsOnly`). While a batch
    /// folds, also the batch's new ones, and any observation an update
    /// targets, loaded from the store.
    var observations: [SpanID: Observation]
    /// What the record reads of the earliest span while the trace has
    /// neither root nor as-root (its observation is dropped).
    var standIn: TraceStandIn?
    /// The last of the trace's stored sequence numbers folded in.
    var seq: Int64
    var lastUse: UInt64
    /// The generation of the trace row this state was folded from
    /// (`StoredTrace.generation`); 0 before the row is known.
    var generation: Int64 = 0

    static func empty(_ id: TraceID) -> OpenTrace {
        OpenTrace(state: TraceState(traceID: id), observations: [:], seq: 0, lastUse: 0)
    }

    /// Whether its true root (a span with no parent) has arrived and it
    /// has at most `limit` spans (never, for a limit of 0): what
    /// `TraceCache` releases rather than encodes. An `as_root` span does
    /// not settle a trace: its parent is in another service, whose spans
    /// may still come.
    func isSettled(upTo limit: Int) -> Bool {
        limit > 0 && state.root != nil && state.observationIDs.count <= limit
    }

    /// Drops the observations that only their own records needed: those
    /// records are stored, and a later update that targets one of them
    /// loads its span again (`TraceFolder.loadTargets`). Keeping every
    /// observation made a cached trace cost kilobytes per span. The root's
    /// and the as-root's (the record reads their name, input, output and
    /// metadata) are moved into a new dictionary, not copied: two lookups,
    /// where filtering the keys and removing the others cost an array and a
    /// lookup per dropped observation. Of the earliest span, while there is
    /// neither, the record reads only its resource and scope, kept as
    /// `standIn`: the whole observation was half of an encoded rootless
    /// trace on the bench load (234 of 478 bytes).
    mutating func keepStandInsOnly() {
        let (root, asRoot) = (state.root?.spanID, state.asRoot?.spanID)
        if state.effectiveRoot == nil, let earliest = state.earliest?.spanID {
            // A stand-in of another span is kept until its own arrives:
            // the record ignores a stand-in that is not the earliest's.
            if let o = observations[earliest] { standIn = TraceStandIn(o) }
        } else {
            // The root's or as-root's observation stands in.
            standIn = nil
        }
        if observations.count <= 2, observations.keys.allSatisfy({ $0 == root || $0 == asRoot }) { return }
        var kept = [SpanID: Observation](minimumCapacity: 2)
        func keep(_ id: SpanID?) {
            if let id, let o = observations.removeValue(forKey: id) { kept[id] = o }
        }
        keep(root)
        keep(asRoot)
        observations = kept
    }
}

/// The fold's open traces, bounded by `capacity`, in two tiers. The
/// `hotCapacity` most recently used are kept as values, ready to fold
/// into. The rest are kept encoded (`TraceStateCodec`): a few hundred bytes
/// instead of the kilobytes of small allocations a `TraceState` is, and
/// decoded again when a span or update arrives for them. Past `capacity`
/// the least recently used are dropped and rebuilt from the store when
/// needed, so neither tier ever changes a record.
///
/// A settled trace (`OpenTrace.isSettled`) leaving the hot tier is not
/// encoded but released, as if evicted: its root has arrived, and a
/// parent ends after its children, which exporters send as they end, so
/// such a trace is nearly always complete. Encoding every trace that left
/// the hot tier took about 4.5% of the collector's CPU on the bench load,
/// for states that nothing asked for again. A late span or update for a
/// released trace rebuilds it from its stored spans (at most
/// `settledSpans` of them, so the rebuild is bounded), which gives the
/// same record.
struct TraceCache {
    struct Cold {
        var bytes: [UInt8]
        var lastUse: UInt64
    }

    let capacity: Int
    let hotCapacity: Int
    /// The most spans a settled trace may have to be released rather than
    /// encoded when it leaves the hot tier; 0 encodes every trace.
    let settledSpans: Int
    private var hot: [TraceID: OpenTrace] = [:]
    /// The hot tier's puts, oldest first, each with the `lastUse` it put:
    /// an entry whose trace has been put again since, or has left the hot
    /// tier, is stale and skipped. Demotion takes from the front, so it
    /// neither sorts the tier nor copies its values (sorting copies of
    /// every hot trace was a third of demotion's CPU on the bench load).
    private var hotOrder: [(id: TraceID, lastUse: UInt64)] = []
    private var hotOrderStart = 0
    private var cold: [TraceID: Cold] = [:]
    private let interner = JSONInterner()

    /// At most 1,024 traces as values: enough for the traces of the last
    /// several batches, which is when most of a trace's spans arrive.
    init(capacity: Int, hotCapacity: Int = 1024, settledSpans: Int = 0) {
        self.capacity = max(1, capacity)
        self.hotCapacity = max(1, min(self.capacity, hotCapacity))
        self.settledSpans = max(0, settledSpans)
    }

    /// Settled traces released from the hot tier instead of encoded.
    private(set) var releasedCount = 0

    var count: Int { hot.count + cold.count }
    var encodedCount: Int { cold.count }
    func isEncoded(_ id: TraceID) -> Bool { cold[id] != nil }

    /// The cached trace, decoded if it was encoded; nil if not cached.
    func get(_ id: TraceID) -> OpenTrace? {
        if let trace = hot[id] { return trace }
        return cold[id].flatMap { TraceStateCodec.decode($0.bytes, lastUse: $0.lastUse, interner: interner) }
    }

    /// Caches `trace` as the newest value of `id`, in the hot tier.
    mutating func put(_ id: TraceID, _ trace: consuming OpenTrace) {
        if !cold.isEmpty { cold[id] = nil }
        trace.keepStandInsOnly()
        hotOrder.append((id, trace.lastUse))
        // `consume`: copied into a local first and assigned from there, the
        // trace was copied twice (a retain of each reference) and then
        // destroyed.
        hot[id] = consume trace
        if hot.count > hotCapacity { demote() }
        compactHotOrder()
        if count > capacity { evict() }
    }

    mutating func remove(_ id: TraceID) {
        // Its `hotOrder` entry is stale now.
        hot[id] = nil
        cold[id] = nil
    }

    /// Forgets the traces that started before `cutoff` (retention).
    mutating func removeAll(startedBefore cutoff: UInt64) {
        hot = hot.filter { $0.value.state.minStart >= cutoff }
        cold = cold.filter { TraceStateCodec.minStart($0.value.bytes) >= cutoff }
    }

    /// Moves the least recently put eighth of the hot tier to the cold one,
    /// or drops it when the cold tier has no room at all or the trace is
    /// settled.
    private mutating func demote() {
        var n = max(1, hotCapacity / 8)
        while n > 0, hotOrderStart < hotOrder.count {
            let (id, lastUse) = hotOrder[hotOrderStart]
            hotOrderStart += 1
            guard hotLastUse(id) == lastUse, let trace = hot.removeValue(forKey: id) else { continue }
            n -= 1
            guard capacity > hotCapacity else { continue }
            if trace.isSettled(upTo: settledSpans) {
                releasedCount += 1
            } else {
                cold[id] = Cold(bytes: TraceStateCodec.encode(trace, interner: interner), lastUse: trace.lastUse)
            }
        }
    }

    /// Read in place: `hot[id]?.lastUse` copied the whole trace value.
    private func hotLastUse(_ id: TraceID) -> UInt64? {
        hot.withValue(forKey: id) { $0.lastUse }
    }

    /// Drops the spent front and the stale entries of `hotOrder` once they
    /// are most of it, so that traces put again and again while hot do not
    /// grow it.
    private mutating func compactHotOrder() {
        guard hotOrder.count - hotOrderStart > 2 * hot.count + 64 || (hotOrderStart > 1024 && hotOrderStart * 2 > hotOrder.count) else { return }
        hotOrder = hotOrder[hotOrderStart...].filter { hotLastUse($0.id) == $0.lastUse }
        hotOrderStart = 0
    }

    /// Drops the least recently used encoded traces, a tenth of the
    /// capacity beyond the excess so that this runs once per many puts.
    private mutating func evict() {
        let n = min(cold.count, count - capacity + capacity / 10)
        guard n > 0 else { return }
        for (_, id) in cold.map({ ($0.value.lastUse, $0.key) }).sorted(by: { $0.0 < $1.0 }).prefix(n) { cold[id] = nil }
    }
}
