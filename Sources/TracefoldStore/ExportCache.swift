import Foundation
import TracefoldModel

/// The records the fold committed lately, as it rendered them, kept until
/// the JSONL exporter has written them: the exporter then takes a trace's
/// pending records from here instead of reading its observation rows back
/// and expanding their compressed columns (about 5% of the pipeline's CPU
/// on the bench load, when every record was read back).
///
/// The store stays the truth. The exporter still selects the pending trace
/// rows, in a read snapshot, and uses an entry only when it holds exactly
/// what that snapshot holds: the same trace revision of the same row
/// generation (`StoredTrace`), and every observation written since the
/// trace's exported revision with its row revision known. Anything else (an
/// entry evicted for room, a commit that re-rendered an observation written
/// before the entry began, a delete) makes it read the rows, as it did
/// before.
///
/// On PostgreSQL other processes write the same rows. Every write of an
/// observation also writes its trace's row, so a commit of another process
/// between two of ours shows as a gap in the trace's revisions, and a trace
/// deleted and made again as a new generation, even at the same revision:
/// the entry is then begun again, or not served.
public final class ExportCache: @unchecked Sendable {
    struct Observation {
        var startTime: Int64
        var revision: Int64
        /// The revision its trace got in the commit that wrote it.
        var traceRevision: Int64
        var record: [UInt8]
    }

    struct Entry {
        /// The trace row's revision after the last commit seen.
        var revision: Int64
        /// The trace row's generation.
        var generation: Int64
        /// Every observation written at a trace revision from `since` to
        /// `revision` is in `observations`.
        var since: Int64
        var trace: [UInt8]
        var observations: [SpanID: Observation]
        /// An observation of this trace was rewritten whose row revision
        /// is not known here: read the rows until the entry is dropped.
        var complete = true
        var bytes: Int
        /// Which insertion into `order` is this entry's.
        var ticket: UInt64
        /// When it was made (`DispatchTime` nanoseconds).
        var made: UInt64
    }

    /// One commit's changes, applied only once it has committed: a rolled
    /// back commit must leave nothing behind.
    final class Staged {
        struct Write {
            var traceID: TraceID
            var revision: Int64
            var generation: Int64
            var trace: [UInt8]
            /// (span id, start time, record, is the span new in this commit)
            var observations: [(spanID: SpanID, startTime: Int64, record: [UInt8], inserted: Bool)]
        }

        var writes: [Write] = []
        var invalidate = false
    }

    private let lock = NSLock()
    /// By trace and span id, not their bytes as `Data`: a 16-byte `Data`
    /// is an allocation, and hashing it went through its bytes.
    private var entries: [TraceID: Entry] = [:]
    /// Traces in the order their entries were made, for dropping stale
    /// ones; a spent ticket (the entry was dropped or remade since) is
    /// skipped.
    private var order: [(traceID: TraceID, ticket: UInt64)] = []
    private var orderStart = 0
    private var nextTicket: UInt64 = 0
    private var bytes = 0
    public let budget: Int

    /// `budget`: the most record bytes held.
    /// A trace's records wait at least the exporter's idle time (one
    /// second) and then its pass, so the cache must hold a couple of
    /// seconds of the fold's output. 8 MiB, 1.1 s at 10k spans/s (710
    /// bytes of records a span), evicted most records at full throughput,
    /// and reading them back was 5.7% of the collector's CPU; 32 MiB holds
    /// about 3 s at 15k spans/s, and the read-back path was gone from the
    /// profile (spans per CPU-second 1.02 to 1.23 times those with 8 MiB,
    /// RSS at 10k spans/s 9 MiB more). What does not fit is read back.
    ///
    /// When the records come faster than the exporter takes them, the cache
    /// keeps the oldest, which the exporter takes next (it goes by the time
    /// of each trace's last change), and a trace that does not fit is left
    /// to be read back. Dropping the oldest for the newest, as it did, made
    /// it serve nothing once the backlog outgrew it: the exporter asked for
    /// each entry just after it was dropped. At about 27k spans/s the
    /// exporter falls seconds behind; keeping the oldest served half the
    /// traces (and gave 1.02-1.03 times the spans per CPU-second), where a
    /// budget of 128 MiB would have held them all for 50 MiB more RSS.
    public init(budget: Int = ExportCache.defaultBudget, staleAfter: Duration = .seconds(30)) {
        self.budget = budget
        staleNanoseconds = Self.nanoseconds(staleAfter)
    }

    public static let defaultBudget = 32 << 20

    /// How many traces and record bytes are held, and how many traces the
    /// exporter took from here and from the rows.
    public var counts: (traces: Int, bytes: Int, served: Int, missed: Int) {
        lock.withLock { (entries.count, bytes, served, missed) }
    }

    private var served = 0
    private var missed = 0

    /// An entry this old is dropped: the exporter is far behind, or will
    /// never ask for it (on PostgreSQL another process exported the trace),
    /// and it would hold room for good. The exporter sets it from how long
    /// it lets a trace wait.
    public var staleAfter: Duration {
        get { lock.withLock { .nanoseconds(staleNanoseconds) } }
        set { lock.withLock { staleNanoseconds = Self.nanoseconds(newValue) } }
    }

    private var staleNanoseconds: UInt64

    private static func nanoseconds(_ d: Duration) -> UInt64 { UInt64(max(0, d.inSeconds) * 1e9) }

    /// While paused (memory above the memory limiter's soft limit) the
    /// cache holds nothing, and the exporter reads every row.
    public func pause(_ paused: Bool) {
        lock.withLock {
            self.paused = paused
            if paused { clear() }
        }
    }

    private var paused = false

    func apply(_ staged: Staged) {
        lock.lock()
        defer { lock.unlock() }
        if staged.invalidate || paused {
            clear()
            return
        }
        let now = DispatchTime.now().uptimeNanoseconds
        dropSpentAndStale(now: now)
        for w in staged.writes {
            // Out of the dictionary while it changes, so that its
            // observations are not copied on write.
            var old = entries.removeValue(forKey: w.traceID)
            if let dropped = old { bytes -= dropped.bytes }
            if let held = old, held.revision != w.revision - 1 || held.generation != w.generation { old = nil }
            // What this write adds at most (it may replace some of it).
            let incoming = w.observations.reduce(w.trace.count) { $0 + $1.record.count }
            guard bytes + (old?.bytes ?? 0) + incoming <= budget else {
                // No room: this trace is read back, and the entries held,
                // which the exporter takes first, stay.
                continue
            }
            var entry: Entry
            if var old {
                old.bytes -= old.trace.count
                entry = old
            } else {
                nextTicket += 1
                order.append((w.traceID, nextTicket))
                entry = Entry(
                    revision: w.revision, generation: w.generation, since: w.revision, trace: [], observations: [:], bytes: 0, ticket: nextTicket,
                    made: now)
            }
            entry.revision = w.revision
            // At the size of their bytes (`exact`): a buffer grown by
            // doubling, kept as it was, held about twice what the budget
            // counts.
            entry.trace = Self.exact(w.trace)
            entry.bytes += w.trace.count
            for o in w.observations {
                let previous = entry.observations[o.spanID]
                // A new row is at revision 1; a row written since the entry
                // began is one past what it held; any other is not known.
                guard let revision = o.inserted ? 1 : previous.map({ $0.revision + 1 }) else {
                    entry.complete = false
                    continue
                }
                entry.bytes += o.record.count - (previous?.record.count ?? 0)
                entry.observations[o.spanID] = Observation(startTime: o.startTime, revision: revision, traceRevision: w.revision, record: Self.exact(o.record))
            }
            bytes += entry.bytes
            entries[w.traceID] = entry
        }
    }

    /// Forgets everything: rows were deleted.
    public func invalidateAll() {
        lock.withLock { clear() }
    }

    private func clear() {
        entries.removeAll()
        order.removeAll()
        orderStart = 0
        bytes = 0
    }

    /// `bytes`, in an array of about its size: itself when it is one
    /// already (as the fold's observation records are; the allocator's
    /// own rounding is within a quarter), else a copy.
    private static func exact(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.capacity - bytes.count <= bytes.count / 4 { return bytes }
        return [UInt8](unsafeUninitializedCapacity: bytes.count) { buffer, count in
            count = buffer.initialize(fromContentsOf: bytes)
        }
    }

    /// Pops the front of `order` while its entry is gone (exported,
    /// dropped or remade since) or older than `staleAfter`, which it drops.
    private func dropSpentAndStale(now: UInt64) {
        while orderStart < order.count {
            let (traceID, ticket) = order[orderStart]
            if let e = entries[traceID], e.ticket == ticket {
                guard now &- e.made > staleNanoseconds else { break }
                entries.removeValue(forKey: traceID)
                bytes -= e.bytes
            }
            orderStart += 1
        }
        if orderStart > 1024, orderStart * 2 > order.count {
            order.removeFirst(orderStart)
            orderStart = 0
        }
    }

    /// A trace's pending records as the exporter's snapshot has them: the
    /// trace record at `revision` of `generation` and its observations
    /// written after `exported`, ordered as the rows are read (start time,
    /// then span id); nil when this entry cannot say.
    func pending(
        _ traceID: Data, revision: Int64, generation: Int64, exported: Int64
    ) -> (trace: [UInt8], observations: [(spanID: Data, revision: Int64, record: [UInt8])])? {
        lock.lock()
        defer { lock.unlock() }
        guard let id = TraceID(bytes: traceID), let e = entries[id], e.complete, e.revision == revision, e.generation == generation, e.since <= exported + 1 else {
            missed += 1
            return nil
        }
        served += 1
        let observations = e.observations.filter { $0.value.traceRevision > exported }.sorted {
            // A span id's order is its bytes' order (big-endian).
            $0.value.startTime != $1.value.startTime ? $0.value.startTime < $1.value.startTime : $0.key < $1.key
        }
        return (e.trace, observations.map { ($0.key.data, $0.value.revision, $0.value.record) })
    }

    /// The exporter marked `revision` of a trace exported: what it covers is
    /// not needed again.
    func exported(_ traceID: Data, revision: Int64) {
        lock.lock()
        defer { lock.unlock() }
        guard let traceID = TraceID(bytes: traceID), var e = entries[traceID] else { return }
        if e.revision <= revision {
            entries.removeValue(forKey: traceID)
            bytes -= e.bytes
            return
        }
        for (spanID, o) in e.observations where o.traceRevision <= revision {
            e.observations.removeValue(forKey: spanID)
            e.bytes -= o.record.count
            bytes -= o.record.count
        }
        e.since = max(e.since, revision + 1)
        entries[traceID] = e
    }
}
