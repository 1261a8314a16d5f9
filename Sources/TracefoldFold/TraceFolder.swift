import Foundation
import Logging
import TracefoldMapping
import TracefoldModel
import TracefoldTelemetry

/// A span as it is stored: the source of truth from which every record can
/// be rebuilt.
public struct StoredSpan: Sendable {
    public var span: Span
    public var resource: Resource
    public var scope: InstrumentationScope
    public var receivedAtUnixNano: UInt64
    /// The span's protobuf message as it arrived, when it did: the store
    /// keeps these bytes instead of encoding `span` again (they decode to
    /// it).
    public var wire: ArraySlice<UInt8>?

    public init(span: Span, resource: Resource, scope: InstrumentationScope, receivedAtUnixNano: UInt64, wire: ArraySlice<UInt8>? = nil) {
        self.span = span
        self.resource = resource
        self.scope = scope
        self.receivedAtUnixNano = receivedAtUnixNano
        self.wire = wire
    }
}

/// What happened to a trace, in the order it was stored: its spans and the
/// metadata updates written through the REST API.
public enum TraceEvent: Sendable {
    case span(StoredSpan)
    case update(MetadataUpdate)
}

/// What the fold writes in one transaction. Every span and update carries its
/// trace's next sequence number: the order in which the trace is rebuilt,
/// and what another process sharing the store catches up from.
public struct FoldCommit: Sendable {
    public var newSpans: [(seq: Int64, span: StoredSpan)] = []
    /// REST API updates (SPEC §7.5).
    public var newUpdates: [(trace: TraceID, seq: Int64, update: MetadataUpdate)] = []
    public var traces: [TraceRow] = []
    public var observations: [ObservationRow] = []
    /// The last sequence number of each trace after this commit.
    public var lastSeq: [TraceID: Int64] = [:]
    public init() {}
}

/// One span of a group the fold is taking: what it was stored as, its
/// mapping context, and the batch it came in (whose drops it adds to).
/// What the mapping queue made of it stays in its batch's array
/// (`FoldItems.premapped`): in the item, it made each item 1,184 bytes,
/// and a group's items (4,096 spans) fresh pages to fault in and move
/// every mapping through.
struct FoldItem {
    /// Taken by the fold (nil after).
    var span: StoredSpan?
    var context: SpanMapper.Context
    var batch: Int

    /// The span's key, read in place: reading it as
    /// `items[index].span?.span.key` copied the whole item (with a retain
    /// and a release of each of its references), for each span. Nil once
    /// the span is taken.
    var key: SpanKey? { span?.span.key }
}

/// A group's spans in order (`TraceFolder.items`), and what the mapping
/// queue made of each batch's, in reverse order: the fold pops one for
/// each item it starts, so each is moved, not copied.
struct FoldItems {
    var items: [FoldItem] = []
    var premapped: [[MappedSpan]] = []

    /// The mapping of the next item of `batch`, moved out; nil when the
    /// queue made none (the fold maps the span itself).
    mutating func nextMapping(of batch: Int) -> MappedSpan? {
        premapped[batch].popLast()
    }
}

/// The store the fold keeps its state in (SPEC §8). Spans are the source of
/// truth; records are derived and rewritten whenever they change.
public protocol FoldStore: AnyObject, Sendable {
    /// Runs `body` in one write transaction in which no other writer, in this
    /// process or another sharing the store, changes the given traces.
    /// `durable`: on disk when this returns (API writes); otherwise at the
    /// next `sync`, since the intake log holds the spans until then.
    func transaction<T>(locking traces: [TraceID], durable: Bool, _ body: (any FoldTransaction) throws -> T) throws -> T
    /// Makes every commit so far durable.
    func sync() throws
    /// Deletes traces that started before `cutoff` with everything they hold.
    @discardableResult
    func deleteTraces(startedBefore cutoff: UInt64) throws -> Int
}

/// A trace as stored: the last sequence number of its spans and updates,
/// and the generation of its row, a random number drawn when the row is
/// made and kept by every later write. A trace deleted and made again (by
/// another process sharing the store) has a new generation, so a cached
/// state of the trace before the delete is not taken for it, even once the
/// new trace's sequence numbers have caught up with the old one's.
public struct StoredTrace: Sendable, Equatable {
    public var lastSeq: Int64
    public var generation: Int64

    public init(lastSeq: Int64, generation: Int64) {
        self.lastSeq = lastSeq
        self.generation = generation
    }
}

/// The fold's view of one write transaction.
public protocol FoldTransaction {
    /// Each of these traces that is stored.
    func stored(_ traces: [TraceID]) throws -> [TraceID: StoredTrace]
    /// The spans and API updates of a trace stored after `seq`, in order.
    func history(of trace: TraceID, after seq: Int64) throws -> [(seq: Int64, event: TraceEvent)]
    /// The stored spans of a trace with these ids, in stored order.
    func spans(of trace: TraceID, ids: [SpanID]) throws -> [StoredSpan]
    /// Stores new spans and changed records, bumping revisions. Returns
    /// the generation of each trace row written.
    func write(_ commit: FoldCommit) throws -> [TraceID: Int64]
    /// Deletes these traces with their spans, updates, observations and
    /// scores, leaving tombstones for the export. Returns those that existed.
    func delete(_ traces: [TraceID]) throws -> [TraceID]
}

/// The fold stage (SPEC §2–§4): maps each new span, folds it into its trace's
/// state and writes the changed trace and observation records to the store.
///
/// Trace states are cached for open traces (`TraceCache`: the most recent as
/// values, the rest encoded), bounded by `maxOpenTraces`; an evicted trace is
/// rebuilt from its stored spans when a late span arrives, so eviction never
/// changes a record.
public final class TraceFolder: GroupingSpanSink, @unchecked Sendable {
    public let name = "fold"
    let store: any FoldStore
    let mapper: SpanMapper
    let limits: MetadataLimits
    let maxOpenTraces: Int
    let retention: Duration?
    let logger: Logger
    let metrics: CollectorMetrics?
    private var lastRetention: ContinuousClock.Instant?

    // The pipeline thread folds spans and the REST API applies updates; the
    // lock keeps them one at a time.
    private let lock = NSLock()
    /// Maps prepared batches after their ack, in arrival order, on a
    /// background thread of its own: the request's answer does not wait for
    /// it, and it runs beside the fold on the other core.
    private let mappingQueue = SerialWorker(name: "tracefold-mapping")
    private var open: TraceCache
    private var useCounter: UInt64 = 0

    /// What the collector releases from its cache (`settledTraceSpans`):
    /// settled traces of up to 64 spans, whose rebuild from the store,
    /// should a late span come, maps at most 64 spans again.
    public static let releasedSettledTraceSpans = 64

    /// `hotTraces`: how many of the cached traces are kept as values rather
    /// than encoded (`TraceCache`). `settledTraceSpans`: a settled trace of
    /// at most this many spans leaving the hot tier is released rather than
    /// encoded (0, the default, encodes every trace; the collector passes
    /// `releasedSettledTraceSpans`).
    public init(
        store: any FoldStore, limits: MetadataLimits, maxOpenTraces: Int, hotTraces: Int = 1024, settledTraceSpans: Int = 0,
        retention: Duration? = nil, logger: Logger, metrics: CollectorMetrics? = nil, pricer: ModelPricer? = nil
    ) {
        mapper = SpanMapper(pricer: pricer)
        open = TraceCache(capacity: maxOpenTraces, hotCapacity: hotTraces, settledSpans: settledTraceSpans)
        self.metrics = metrics
        self.store = store
        self.limits = limits
        self.maxOpenTraces = maxOpenTraces
        self.retention = retention
        self.logger = logger
    }

    /// Works out, on the request and before the ack, the drops that do not
    /// depend on the trace's state: mapping warnings (a metadata blob that
    /// is not an object, an invalid metadata event) and updates over the
    /// per-update limit (SPEC §4.6). Those need only the span's metadata
    /// updates (`SpanMapper.mapUpdates`); the rest of the mapping is done
    /// after the ack on the mapping queue, which leaves it in the batch's
    /// `prepared` slot for `consume`. A drop under the cumulative limit
    /// depends on what else the trace holds; it is decided by the fold
    /// and is reported only in `tracefold.warnings` and `/metrics`.
    public func prepare(_ batch: inout SpanBatch) -> [String] {
        var updates = [SpanMapper.MappedUpdates]()
        updates.reserveCapacity(batch.spanCount)
        var dropped = [String]()
        // In `forEachSpan` order, with one mapping context per scope, as
        // `consume` builds them. By index into a buffer: a for-in loop
        // copied each span it yielded (a retain and a release of every
        // field).
        var contexts = [SpanMapper.Context]()
        for rs in batch.resourceSpans {
            for ss in rs.scopeSpans where !ss.spans.isEmpty {
                let context = SpanMapper.Context(resource: rs.resource, scope: ss.scope)
                contexts.append(context)
                ss.spans.withUnsafeBufferPointer { spans in
                    for i in spans.indices {
                        let u = self.mapper.mapUpdates(spans[i], context: context)
                        dropped += TraceState.stateIndependentDrops(u, limits: limits)
                        updates.append(u)
                    }
                }
            }
        }
        // A pending slot (the intake log is writing the batch meanwhile)
        // is filled in place: the pipeline may already hold a copy of it.
        let slot = batch.prepared.flatMap { $0.isPending ? $0 : nil } ?? .pending()
        batch.prepared = slot
        let work = batch
        let mapper = mapper
        mappingQueue.submit { [updates, contexts] in
            // In reverse order: the fold pops them off the end (`items`).
            // Mapped in that order rather than reversed after, which
            // copied each.
            var mapped = [MappedSpan]()
            mapped.reserveCapacity(updates.count)
            var position = updates.count
            var scope = contexts.count
            for rs in work.resourceSpans.reversed() {
                for ss in rs.scopeSpans.reversed() where !ss.spans.isEmpty {
                    scope -= 1
                    // By index into the buffer, as above: iterating copied each span.
                    ss.spans.withUnsafeBufferPointer { spans in
                        for i in spans.indices.reversed() {
                            position -= 1
                            mapped.append(mapper.map(spans[i], context: contexts[scope], updates: updates[position]))
                        }
                    }
                }
            }
            slot.fill(mapped)
        }
        return dropped
    }

    /// Folds a batch and returns the metadata updates it had to drop.
    public func consume(_ batch: SpanBatch) throws -> [String] {
        try consume(group: [batch])[0]
    }

    /// Folds batches that were queued together in one store transaction,
    /// all or nothing, and returns what each had to drop. A trace that
    /// several of them touch is rendered and written once, and the commit's
    /// fixed cost (its WAL frames: the rightmost page of every index it
    /// appends to, rewritten whole; the checks of `catchUp`) is paid once
    /// for the group instead of once for each batch.
    public func consume(group batches: [SpanBatch]) throws -> [[String]] {
        lock.lock()
        defer { lock.unlock() }
        var traceIDs = [TraceID]()
        var known = Set<TraceID>()
        // Only the ids are read: `forEachSpan` lent its closure a copy of
        // every span.
        for batch in batches {
            for rs in batch.resourceSpans {
                for ss in rs.scopeSpans {
                    for i in ss.spans.indices where known.insert(ss.spans[i].traceID).inserted { traceIDs.append(ss.spans[i].traceID) }
                }
            }
        }
        guard !traceIDs.isEmpty else { return Array(repeating: [], count: batches.count) }
        // Work on copies: the cache only takes them once the transaction commits.
        let started = ContinuousClock.now
        var drops = [String: Int]()
        let dropped: [[String]]
        var work: [TraceID: OpenTrace]
        (dropped, work) = try store.transaction(locking: traceIDs, durable: false) { tx in
            // Made here, so that each span and its mapping can be moved out
            // of `items` rather than copied (a copy to make and destroy per
            // span): should the store run this body again, it starts from
            // the batches again.
            var group = Self.items(batches)
            var work = try catchUp(traceIDs, tx)
            var commit = FoldCommit()
            commit.newSpans.reserveCapacity(group.items.count)
            var touched = [TraceID: Set<SpanID>]()
            var dropped = Array(repeating: [String](), count: batches.count)
            // The last stamped resource: spans of one resource priced by one
            // definition share it instead of copying it each.
            var lastStamped: (base: Resource, stamp: String, stamped: Resource)?
            // The trace being folded into stays out of `work` while the
            // spans that follow are its own (a batch's spans usually come
            // trace by trace): taken out and put back once per run of spans,
            // not hashed four times per span. Taken out of `work` while it
            // changes, so it is uniquely referenced: a copy left in the
            // dictionary made every span copy its trace's whole state
            // (copy-on-write). A plain local, not an optional one kept
            // across runs: reaching through `current!` moved the 776-byte
            // value to and from temporaries (a memcpy and a destroy per
            // access).
            var index = group.items.startIndex
            let end = group.items.endIndex
            // The spans a run touched, kept for the next run's.
            var spanIDs = Set<SpanID>()
            while index < end {
                guard let traceID = group.items[index].key?.traceID, var trace = work.removeValue(forKey: traceID) else {
                    _ = group.nextMapping(of: group.items[index].batch)
                    index += 1
                    continue
                }
                repeat {
                    defer { index += 1 }
                    // The span stays in `items` until it is appended to the
                    // commit, from where it is moved: taken into a local, it
                    // was copied into the commit and the local destroyed. Its
                    // mapping is taken first, whatever happens to the span,
                    // so that the next item takes the next one.
                    let premapped = group.nextMapping(of: group.items[index].batch)
                    // A span already stored (a redelivery) changes nothing.
                    guard let key = group.items[index].key, !trace.state.observationIDs.contains(key.spanID) else { continue }
                    // A mapping the queue did not make (or a second run of
                    // this body) is made here, to the same result.
                    var mapped = premapped ?? mapper.map(group.items[index].span!.span, context: group.items[index].context)
                    var limitDrops = [MetadataDrop]()
                    let warnings = trace.state.add(mapped, limits: limits, drops: &limitDrops)
                    for (_, v) in warnings.sorted(by: { $0.key < $1.key }) {
                        if case .string(let s) = v { dropped[group.items[index].batch].append(s) }
                    }
                    drops["invalid_event", default: 0] += mapped.warnings.count
                    for drop in limitDrops { drops[drop.reason, default: 0] += 1 }
                    // A new trace makes room for its spans, as its state does
                    // (`TraceState.expectedSpans`): grown one by one, the
                    // dictionary moved every observation at each doubling.
                    if trace.observations.isEmpty { trace.observations.reserveCapacity(TraceState.expectedSpans) }
                    trace.observations[key.spanID] = mapped.takeObservation()
                    trace.seq += 1
                    if let stamp = mapped.newCostStamp {
                        // The stored span keeps its pricing (`CostDecision`).
                        Self.stamp(&group.items[index].span!.resource, with: stamp, last: &lastStamped)
                    }
                    commit.newSpans.append((trace.seq, group.items[index].span.take()!))
                    spanIDs.insert(key.spanID)
                    for update in mapped.updates where update.scope != .trace {
                        if let target = update.target { spanIDs.insert(target) }
                    }
                } while index < end && group.items[index].key?.traceID == traceID
                if !spanIDs.isEmpty {
                    touched[traceID, default: []].formUnion(spanIDs)
                    spanIDs.removeAll(keepingCapacity: true)
                }
                // `consume`: assigned as it was, the trace was copied into
                // the dictionary and the local destroyed after.
                work[traceID] = consume trace
            }
            if !commit.newSpans.isEmpty {
                try loadTargets(touched, &work, tx)
                render(traceIDs.filter { touched[$0] != nil }, touched, &work, into: &commit)
                for (id, generation) in try tx.write(commit) { work[id]?.generation = generation }
            }
            return (dropped, work)
        }
        // Moved into the cache, not copied: iterating copied each, and so
        // did binding `popFirst()`'s pair to a tuple pattern. A value taken
        // out by `removeValue` and passed straight on is moved.
        for id in Array(work.keys) { open.put(id, work.removeValue(forKey: id)!) }
        metrics?.storeCommit.record(ContinuousClock.now - started)
        for (reason, n) in drops { metrics?.droppedMetadata(reason: reason, count: n) }
        return dropped
    }

    /// Adds a span's pricing stamp to its resource. `last` is the last
    /// resource stamped: spans of one resource priced by one definition
    /// share it instead of copying it each.
    private static func stamp(_ resource: inout Resource, with stamp: String, last: inout (base: Resource, stamp: String, stamped: Resource)?) {
        if let last, last.stamp == stamp, last.base == resource {
            resource = last.stamped
            return
        }
        let base = resource
        resource.attributes.append(Attribute(CostDecision.attributeKey, .string(stamp)))
        last = (base, stamp, resource)
    }

    /// The spans of a group, in order, each with its mapping context and
    /// what `prepare` mapped on the request. Filled by the mapping queue,
    /// which is at most a batch or so ahead or behind; the bound only
    /// guards against a slot no one fills (then the fold maps the spans
    /// itself, to the same result). The slot is emptied: its mappings are
    /// moved out of it, not copied.
    static func items(_ batches: [SpanBatch]) -> FoldItems {
        var group = FoldItems()
        group.items.reserveCapacity(batches.reduce(0) { $0 + $1.spanCount })
        group.premapped.reserveCapacity(batches.count)
        for batch in batches {
            // In reverse order (`prepare`), so that each is popped off the end.
            group.premapped.append((batch.prepared?.take(waiting: .seconds(30)) as? [MappedSpan]).flatMap { $0.count == batch.spanCount ? $0 : nil } ?? [])
            let index = group.premapped.count - 1
            // The spans' own bytes, while they still match the spans one for one.
            let wire = batch.wire.ranges.count == batch.spanCount ? batch.wire : nil
            var position = 0
            for rs in batch.resourceSpans {
                for ss in rs.scopeSpans where !ss.spans.isEmpty {
                    let context = SpanMapper.Context(resource: rs.resource, scope: ss.scope)
                    for span in ss.spans {
                        let stored = StoredSpan(
                            span: span, resource: rs.resource, scope: ss.scope, receivedAtUnixNano: batch.receivedAtUnixNano, wire: wire?.span(position)
                        )
                        group.items.append(FoldItem(span: stored, context: context, batch: index))
                        position += 1
                    }
                }
            }
        }
        return group
    }

    /// The given traces as stored now: cached states plus whatever other
    /// writers stored since, or rebuilt from the store when not cached.
    private func catchUp(_ ids: [TraceID], _ tx: any FoldTransaction) throws -> [TraceID: OpenTrace] {
        let stored = try tx.stored(ids)
        var work = [TraceID: OpenTrace](minimumCapacity: ids.count)
        for id in ids {
            useCounter += 1
            let row = stored[id]
            let last = row?.lastSeq ?? 0
            var trace = open.get(id) ?? .empty(id)
            let madeAgain = trace.seq > 0 && row != nil && row?.generation != trace.generation
            if last < trace.seq || madeAgain {
                // Deleted meanwhile (by retention, or by another process,
                // which may have made it again): start over.
                trace = .empty(id)
            }
            if let row { trace.generation = row.generation }
            trace.lastUse = useCounter
            if last > trace.seq {
                // Replaying in stored order gives the same first-come limit decisions.
                for (seq, event) in try tx.history(of: id, after: trace.seq) {
                    switch event {
                    case .span(let s):
                        let mapped = mapper.map(s.span, resource: s.resource, scope: s.scope)
                        trace.state.add(mapped, limits: limits)
                        trace.observations[s.span.spanID] = mapped.observation
                    case .update(let update):
                        _ = trace.state.apply(update, limits: limits)
                    }
                    trace.seq = seq
                }
            }
            work[id] = trace
        }
        return work
    }

    /// Loads the observations that updates target but the cache no longer
    /// holds (`OpenTrace.keepStandInsOnly`), by mapping their stored spans
    /// again: the mapping is a pure function of the span, so the
    /// observation is the one first folded.
    private func loadTargets(_ touched: [TraceID: Set<SpanID>], _ work: inout [TraceID: OpenTrace], _ tx: any FoldTransaction) throws {
        for (traceID, spanIDs) in touched {
            // A target that has not arrived yet has nothing to render. Read
            // in place, and by index: `observations[id] == nil` copied the
            // observation to compare it with nil.
            let missing = work.withValueInPlace(forKey: traceID) { trace in
                spanIDs.filter { trace.observations.index(forKey: $0) == nil && trace.state.observationIDs.contains($0) }
            }
            guard let missing, !missing.isEmpty else { continue }
            for s in try tx.spans(of: traceID, ids: missing.sorted()) {
                var mapped = mapper.map(s.span, resource: s.resource, scope: s.scope)
                work[traceID]?.observations[s.span.spanID] = mapped.takeObservation()
            }
        }
    }

    /// Renders the touched traces and their changed observations, reading
    /// each trace and observation where `work` holds it.
    /// `work` is inout only to lend each trace and observation in place
    /// (`withValueInPlace`); nothing in it changes.
    private func render(_ order: [TraceID], _ touched: [TraceID: Set<SpanID>], _ work: inout [TraceID: OpenTrace], into commit: inout FoldCommit) {
        // One buffer to write every observation record in, each then
        // copied out at its size.
        var scratch = [UInt8]()
        scratch.reserveCapacity(4096)
        for traceID in order {
            work.withValueInPlace(forKey: traceID) { trace in
                commit.lastSeq[traceID] = trace.seq
                // The trace's parts are lent to functions one by one: a
                // closure that captured `trace` while `trace.state` was
                // passed beside it made the state be copied first.
                commit.traces.append(Self.renderTrace(trace.state, trace.standIn, trace.observations))
                Self.renderObservations(touched[traceID] ?? [], of: trace.state, &trace.observations, into: &commit, scratch: &scratch)
            }
        }
    }

    private static func renderTrace(_ state: TraceState, _ standIn: TraceStandIn?, _ observations: [SpanID: Observation]) -> TraceRow {
        RecordRenderer.trace(state, standIn: standIn) { observations[$0] }
    }

    /// `observations` is inout only to lend each in place.
    private static func renderObservations(
        _ spanIDs: Set<SpanID>, of state: TraceState, _ observations: inout [SpanID: Observation], into commit: inout FoldCommit, scratch: inout [UInt8]
    ) {
        // Each observation's entries, found in one pass over the trace's
        // entries rather than one pass per observation.
        let entries = ObservationEntries(state)
        for spanID in spanIDs {
            // An extended-trace target may not have arrived yet.
            observations.withValueInPlace(forKey: spanID) { o in
                commit.observations.append(RecordRenderer.observation(o, state: state, entries: entries[spanID], scratch: &scratch))
            }
        }
    }

    /// Every metadata entry of a trace as stored now (SPEC §7.3), rendered
    /// from its state: the cached one, caught up with what other processes
    /// stored, or one rebuilt from its stored spans and updates. Nil when
    /// the store holds nothing of the trace. Entries are not stored: they
    /// repeat what the spans and updates hold, and only this read needs
    /// them all at once.
    public func allEntries(of traceID: TraceID) throws -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        let trace = try store.transaction(locking: [traceID], durable: false) { tx in try catchUp([traceID], tx)[traceID] }
        guard let trace, trace.seq > 0 else { return nil }
        open.put(traceID, trace)
        return RecordRenderer.allEntries(trace.state, standIn: trace.standIn) { trace.observations[$0] }
    }

    /// Why a REST metadata write was refused (SPEC §4.6, §7.5).
    public enum APIRefusal: Error, Equatable, Sendable {
        case updateTooLarge
        case cumulativeTooLarge
    }

    /// Applies REST API updates to one trace all-or-nothing: every update is
    /// checked against the per-update and cumulative limits first, then all
    /// are applied in one transaction. A replayed memo id is a no-op. The
    /// trace need not have any span yet.
    public func applyAPI(_ updates: [MetadataUpdate], to traceID: TraceID) throws -> APIRefusal? {
        lock.lock()
        defer { lock.unlock() }
        let outcome: (APIRefusal?, OpenTrace?) = try store.transaction(locking: [traceID], durable: true) { tx in
            guard var trace = try catchUp([traceID], tx)[traceID] else { return (nil, nil) }
            let fresh = updates.filter { trace.state.acceptedUpdates[$0.id] == nil }
            var seenIDs = Set<UpdateID>()
            var added = 0
            for u in fresh where seenIDs.insert(u.id).inserted {
                let size = u.size
                if size > limits.maxUpdateBytes { return (.updateTooLarge, nil) }
                added += size
            }
            if trace.state.cumulativeMetadataBytes + added > limits.maxTraceBytes { return (.cumulativeTooLarge, nil) }
            guard !fresh.isEmpty else { return (nil, nil) }
            var commit = FoldCommit()
            var changed = Set<SpanID>()
            for u in fresh where trace.state.acceptedUpdates[u.id] == nil {
                _ = trace.state.apply(u, limits: limits)
                trace.seq += 1
                commit.newUpdates.append((traceID, trace.seq, u))
                if let target = u.target, u.scope != .trace { changed.insert(target) }
            }
            var work = [traceID: trace]
            try loadTargets([traceID: changed], &work, tx)
            render([traceID], [traceID: changed], &work, into: &commit)
            if let generation = try tx.write(commit)[traceID] { trace.generation = generation }
            return (nil, trace)
        }
        if let trace = outcome.1 { open.put(traceID, trace) }
        return outcome.0
    }

    /// Deletes traces with everything they hold (`DELETE /api/public/traces`),
    /// under the fold's lock and the traces' store locks, and forgets their
    /// cached state: a span that arrives afterwards starts the trace anew.
    /// Returns the traces that existed.
    public func delete(_ traces: [TraceID]) throws -> [TraceID] {
        lock.lock()
        defer { lock.unlock() }
        let deleted = try store.transaction(locking: traces, durable: true) { tx in try tx.delete(traces) }
        for id in traces { open.remove(id) }
        return deleted
    }

    /// Syncs the store; at most once a minute it also applies retention,
    /// here on the pipeline thread so that no cached state outlives its rows.
    public func sync() throws {
        if retention != nil, lastRetention.map({ ContinuousClock.now - $0 >= .seconds(60) }) ?? true {
            lastRetention = ContinuousClock.now
            try enforceRetention(nowUnixNano: WallClock.nowUnixNano())
        }
        try store.sync()
    }

    /// SPEC §8.3: deletes traces older than the retention and forgets their
    /// cached state. Returns how many traces were deleted.
    @discardableResult
    public func enforceRetention(nowUnixNano: UInt64) throws -> Int {
        guard let retention else { return 0 }
        lock.lock()
        defer { lock.unlock() }
        let keep = UInt64(retention.components.seconds) * 1_000_000_000 + UInt64(retention.components.attoseconds / 1_000_000_000)
        let cutoff = nowUnixNano > keep ? nowUnixNano - keep : 0
        let deleted = try store.deleteTraces(startedBefore: cutoff)
        open.removeAll(startedBefore: cutoff)
        if deleted > 0 { logger.info("retention deleted old traces", metadata: ["traces": "\(deleted)"]) }
        return deleted
    }

    public func close() throws { try store.sync() }

    /// How many traces the cache holds, how many of them encoded, and how
    /// many settled traces it has released so far.
    public var cachedTraces: (all: Int, encoded: Int, released: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (open.count, open.encodedCount, open.releasedCount)
    }
}
