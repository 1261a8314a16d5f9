import Foundation
import TracefoldModel

/// Where an SQLite store's trace rows are: each trace id's epoch, in
/// memory, so that no b-tree of the file is keyed by trace id first.
///
/// Trace ids are random. Keyed by id, the `traces` table's key took each
/// commit's new traces at as many random places, and a commit writes each
/// 16 KiB page it touches to the WAL once: with 1M spans stored, that one
/// index wrote 0.9 KB a span (bench/results/wal-by-btree-20261206-e956e99.json),
/// and more as the store grew, up to a page a new trace. So SQLite keys a
/// trace row by `(epoch, trace_id)`, as it keys the trace's observation and
/// metadata rows (`TraceEpochs`): a commit's new traces go into the newest
/// epoch's few pages. A lookup by id alone (the fold's, the query API's)
/// asks this index for the id's epoch first.
///
/// The index is the trace rows' `(epoch, trace_id)`, read from the file:
/// all of them the first time it is asked, and then, each time, the rows
/// made since (`id`, an AUTOINCREMENT key, only goes up, so `id > seen`
/// finds them). So a process that did not write them (the CLI) finds them
/// too. It holds a trace's entry until the row's delete commits
/// (`forget`); meanwhile a lookup of a deleted trace finds no row.
/// 32 to 64 bytes a trace (a dictionary of 24-byte entries, kept at
/// most three quarters full): 4 to 8 MB at 1M spans of 8-span traces,
/// where the key by id it replaces took 3.8 MB of the file and the page
/// cache held it. The first lookup reads every row: a store's first commit
/// or query after it opens pays that once.
///
/// PostgreSQL keeps its primary key on `trace_id` and has no such index.
public final class TraceKeyIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var epochs: [TraceID: Int64] = [:]
    /// A trace id with rows in more than one epoch: one deleted and made
    /// again before its delete was forgotten, or stored so before.
    private var others: [TraceID: [Int64]] = [:]
    /// The greatest `traces.id` read.
    private var seen: Int64 = 0

    public init() {}

    /// The `(trace, epoch)` pairs where rows of `traces` may be: every
    /// trace's epochs this index knows, after reading the rows made since
    /// it last read. A trace with no row gets no pair. `advancing` false
    /// reads those rows but does not move past them: for a transaction
    /// that has made trace rows of its own, whose ids a rollback would give
    /// out again.
    func candidates(of traces: [TraceID], in session: any SQLSession, advancing: Bool = true) throws -> [(TraceID, epoch: Int64)] {
        lock.lock()
        defer { lock.unlock() }
        try catchUp(session, advancing: advancing)
        var pairs = [(TraceID, epoch: Int64)]()
        pairs.reserveCapacity(traces.count)
        for id in traces {
            guard let epoch = epochs[id] else { continue }
            pairs.append((id, epoch))
            for other in others[id] ?? [] { pairs.append((id, other)) }
        }
        return pairs
    }

    /// The epochs `trace` may have rows in.
    func epochs(of trace: TraceID, in session: any SQLSession, advancing: Bool = true) throws -> [Int64] {
        try candidates(of: [trace], in: session, advancing: advancing).map(\.epoch)
    }

    /// Drops the entries of rows whose delete has committed.
    func forget(_ rows: [(TraceID, epoch: Int64)]) {
        lock.lock()
        defer { lock.unlock() }
        for (id, epoch) in rows {
            if var more = others[id], let at = more.firstIndex(of: epoch) {
                more.remove(at: at)
                others[id] = more.isEmpty ? nil : more
            } else if epochs[id] == epoch {
                if var more = others.removeValue(forKey: id) {
                    epochs[id] = more.removeLast()
                    if !more.isEmpty { others[id] = more }
                } else {
                    epochs[id] = nil
                }
            }
        }
    }

    /// The number of trace ids held (tests).
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return epochs.count
    }

    private func catchUp(_ session: any SQLSession, advancing: Bool) throws {
        var greatest = seen
        for row in try session.rows("SELECT id, epoch, trace_id FROM traces WHERE id > ? ORDER BY id", [.int(seen)]) {
            guard let rowID = row["id"].int, let epoch = row["epoch"].int, let id = row["trace_id"].data.flatMap({ TraceID(bytes: [UInt8]($0)) }) else {
                continue
            }
            greatest = max(greatest, rowID)
            add(id, epoch)
        }
        if advancing { seen = greatest }
    }

    private func add(_ id: TraceID, _ epoch: Int64) {
        guard let known = epochs[id] else {
            epochs[id] = epoch
            return
        }
        if known != epoch, !(others[id]?.contains(epoch) ?? false) { others[id, default: []].append(epoch) }
    }
}
