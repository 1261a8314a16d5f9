import Foundation
import OTLP
import TracefoldFold
import TracefoldMapping
import TracefoldModel

/// A store of spans and rendered records (SPEC §8): SQLite or PostgreSQL.
///
/// Each backend supplies sessions and its schema; every statement the fold,
/// the query API and the exporters run is written once, in this file and in
/// `RecordStore+Query.swift`, against `SQLSession`.
public protocol RecordStore: FoldStore {
    var dialect: SQLDialect { get }
    /// Runs `body` on a session that reads committed data.
    func read<T>(_ body: (any SQLSession) throws -> T) throws -> T
    /// Runs `body` in one write transaction.
    func write<T>(_ body: (any SQLSession) throws -> T) throws -> T
    /// Runs `body` in one write transaction that is on disk when this
    /// returns. What an API call is answered for (a score, a delete, a REST
    /// metadata write) has no intake log behind it, so it must not wait
    /// for the next checkpoint to survive a power loss.
    func durableWrite<T>(_ body: (any SQLSession) throws -> T) throws -> T
    /// Locks traces for the rest of the transaction against other processes
    /// sharing the store. SQLite has one writer at a time and needs nothing.
    func lock(_ traces: [TraceID], in session: any SQLSession) throws
    /// A description for logs: the backend and where it is.
    var location: String { get }
    /// The epoch that the fold's new trace rows go in.
    var traceEpochs: TraceEpochs { get }
    /// The records lately committed, for the exporter (`ExportCache`); nil
    /// to have the exporter read every row.
    var exportCache: ExportCache? { get }
    func close()
}

extension RecordStore {
    /// A commit is durable once it returns (PostgreSQL's default).
    public func durableWrite<T>(_ body: (any SQLSession) throws -> T) throws -> T { try write(body) }

    public var exportCache: ExportCache? { nil }

    public func transaction<T>(locking traces: [TraceID], durable: Bool, _ body: (any FoldTransaction) throws -> T) throws -> T {
        let cache = exportCache
        let staged = cache.map { _ in ExportCache.Staged() }
        var keys: (index: TraceKeyIndex, rowless: SQLFoldTransaction.Rowless)?
        let locked = { (session: any SQLSession) throws -> T in
            try self.lock(traces, in: session)
            let transaction = SQLFoldTransaction(session: session, epochs: self.traceEpochs, staged: staged)
            keys = session.traceKeys.map { ($0, transaction.rowless) }
            return try body(transaction)
        }
        let result = try durable ? durableWrite(locked) : write(locked)
        // Only what committed reaches the cache, and the trace keys.
        if let cache, let staged { cache.apply(staged) }
        if let keys { keys.index.forget(keys.rowless.deleted) }
        return result
    }

    /// Deletes traces whose first span started before `cutoff`, with their
    /// observations, spans and API updates (SPEC §8.3). Returns how many
    /// traces went.
    @discardableResult
    public func deleteTraces(startedBefore cutoff: UInt64) throws -> Int {
        // A trace made again after its delete starts again at revision 1.
        defer { exportCache?.invalidateAll() }
        var deleted: (index: TraceKeyIndex, rows: [(TraceID, epoch: Int64)])?
        let count = try write { s in
            let args: [SQLValue] = [.int(Int64(bitPattern: cutoff))]
            let doomed = "SELECT trace_id FROM traces WHERE start_time < ?"
            try s.execute("DELETE FROM api_updates WHERE trace_id IN (\(doomed))", args)
            // Keyed by the trace's epoch first (`TraceEpochs`), 100 traces a
            // statement, in epoch order so that a statement's traces share
            // few epochs. (SQLite's plan for `(epoch, trace_id) IN (SELECT
            // …)` seeks by the epoch alone and reads the whole epoch.)
            let keys = try s.rows("SELECT trace_id, epoch FROM traces WHERE start_time < ? ORDER BY epoch", args).compactMap { row in
                row["trace_id"].data.flatMap { TraceID(bytes: [UInt8]($0)) }.map { ($0, epoch: row["epoch"].int ?? 0) }
            }
            try TraceRows.keyLists(keys) { trace in
                try trace.deleteRows(in: s)
            }
            deleted = s.traceKeys.map { ($0, keys) }
            let n = try s.row("SELECT COUNT(*) AS n FROM traces WHERE start_time < ?", args)?["n"].int ?? 0
            try s.execute("DELETE FROM traces WHERE start_time < ?", args)
            return Int(n)
        }
        // Once the delete has committed: an index that forgot a row still
        // there would take its trace for a new one.
        if let deleted { deleted.index.forget(deleted.rows) }
        return count
    }

    public func counts() throws -> (spans: Int, traces: Int, observations: Int) {
        try read { s in
            func count(_ table: String) throws -> Int { Int(try s.row("SELECT COUNT(*) AS n FROM \(table)", [])?["n"].int ?? 0) }
            return (try count("spans"), try count("traces"), try count("observations"))
        }
    }
}

/// A trace's epoch: which block of the store's insertions its row was made
/// in, a number that goes up by one for every `size` observation rows the
/// store inserts. The trace's observation and metadata rows carry it, and
/// it leads their keys: `observations_by_epoch_span(epoch, span_id)`,
/// `observations_by_trace(epoch, trace_id, span_id)` and
/// `trace_metadata(epoch, trace_id, key)`.
///
/// Tracers draw trace and span ids at random. Keyed by id first, those
/// b-trees took each commit's rows at as many random places, and once they
/// outgrew a commit's share every insert dirtied a page of its own: with
/// random ids and 1.1M spans stored, the pipeline did 12,294 spans per
/// CPU-second against 18,824 on an empty store. Keyed by epoch first, a
/// commit's new traces land in the newest epoch's few pages; a late span
/// goes to its trace's. Whoever reads by trace reads the trace's row, and
/// its epoch, first. A lookup of an observation by id alone probes each
/// epoch there is (`RecordStore.observation`): about 70 at 1M spans, each
/// one index seek.
///
/// The count is kept in memory. A process starts a new epoch after the
/// greatest one stored; processes sharing a PostgreSQL store each count
/// their own, which only makes epochs smaller. Rows made before the
/// column are in epoch 0.
public final class TraceEpochs: @unchecked Sendable {
    /// Rows an epoch takes before the next begins: with a commit's rows
    /// added to the last one, at most 20,480, a few dozen index pages.
    public static let size = 16_384

    private let lock = NSLock()
    private var current: Int64?
    private var rows = 0

    public init() {}

    /// The epoch of a commit that inserts `count` observation rows;
    /// `greatestStored` reads the greatest epoch in the store, once.
    public func epoch(ofRows count: Int, greatestStored: () throws -> Int64) rethrows -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        if current == nil {
            current = try greatestStored() + 1
        } else if rows >= Self.size {
            current! += 1
            rows = 0
        }
        rows += count
        return current!
    }
}

/// Conditions that find a trace's observation and metadata rows through
/// their keys, which lead with the trace's epoch (`TraceEpochs`). A
/// condition on `trace_id` alone would scan the table.
enum TraceRows {
    /// One trace's rows, by its id, as a condition on `alias`'s `epoch`
    /// and `trace_id` and the values it binds. SQLite's `TraceKeyIndex`
    /// gives the trace's epochs (none: the condition matches nothing);
    /// elsewhere the trace's row gives its epoch. `advancing`: as
    /// `TraceKeyIndex.candidates` takes it.
    static func one(_ trace: TraceID, in session: any SQLSession, advancing: Bool = true) throws -> TraceKeys {
        try one("", trace, in: session, advancing: advancing)
    }

    static func one(_ alias: String, _ trace: TraceID, in session: any SQLSession, advancing: Bool = true) throws -> TraceKeys {
        guard let index = session.traceKeys else {
            return TraceKeys(
                sql: "\(alias)epoch = (SELECT epoch FROM traces WHERE trace_id = ?) AND \(alias)trace_id = ?", args: [.blob(trace.data), .blob(trace.data)])
        }
        let epochs = try index.epochs(of: trace, in: session, advancing: advancing)
        let list = epochs.isEmpty ? "(NULL)" : "(" + Array(repeating: "?", count: epochs.count).joined(separator: ",") + ")"
        return TraceKeys(sql: "\(alias)epoch IN \(list) AND \(alias)trace_id = ?", args: epochs.map { .int($0) } + [.blob(trace.data)])
    }

    /// The `traces` rows of the given traces, at most 100 traces a call of
    /// `body`, as conditions on `alias`'s `epoch` and `trace_id` (SQLite,
    /// from `TraceKeyIndex`: a trace it knows no row of is left out) or on
    /// `trace_id` alone (PostgreSQL's key).
    static func byID(
        _ traces: [TraceID], alias: String = "", in session: any SQLSession, advancing: Bool = true, _ body: (TraceKeys) throws -> Void
    ) throws {
        guard !traces.isEmpty else { return }
        guard let index = session.traceKeys else {
            return try chunks(traces) { marks, chunk in try body(TraceKeys(sql: "\(alias)trace_id IN \(marks)", args: chunk.map { .blob($0.data) })) }
        }
        try keyLists(index.candidates(of: traces, in: session, advancing: advancing), alias: alias, body)
    }

    /// The rows of the trace row `traces` names in the same statement.
    static func joined(_ alias: String, to traces: String) -> String {
        "\(alias).epoch = \(traces).epoch AND \(alias).trace_id = \(traces).trace_id"
    }

    /// A condition and the values it binds.
    struct TraceKeys {
        var sql: String
        var args: [SQLValue]

        /// Deletes these traces' observation and metadata rows (retention
        /// and deletes; the trace rows are the caller's).
        func deleteRows(in session: any SQLSession) throws {
            for table in ["observations", "trace_metadata"] { try session.execute("DELETE FROM \(table) WHERE \(sql)", args) }
        }
    }

    /// The rows of the given traces as conditions on `epoch` and
    /// `trace_id`, at most 100 traces each. Every row of a trace has its
    /// epoch, so the epochs and the ids, taken apart, match no other
    /// trace's rows, and the index seeks once per distinct epoch and id.
    static func keyLists(_ traces: [(TraceID, epoch: Int64)], alias: String = "", _ body: (TraceKeys) throws -> Void) throws {
        // One placeholder per trace in both lists, so that the statement has
        // one text per chunk size, whatever the epochs.
        try chunks(traces) { marks, chunk in
            try body(
                TraceKeys(sql: "\(alias)epoch IN \(marks) AND \(alias)trace_id IN \(marks)", args: chunk.map { .int($0.epoch) } + chunk.map { .blob($0.0.data) }))
        }
    }

    /// Calls `body` with `(?,?,…)` and the items it stands for, at most 100
    /// at a time: bounded IN lists keep the statement text (and its cache)
    /// small.
    static func chunks<T>(_ items: [T], _ body: (String, ArraySlice<T>) throws -> Void) throws {
        for start in stride(from: 0, to: items.count, by: 100) {
            let chunk = items[start..<min(start + 100, items.count)]
            try body("(" + Array(repeating: "?", count: chunk.count).joined(separator: ",") + ")", chunk)
        }
    }
}

/// The fold's transaction, in SQL both backends run.
struct SQLFoldTransaction: FoldTransaction {
    let session: any SQLSession
    let epochs: TraceEpochs
    /// What this commit tells the exporter's cache, if the store keeps one.
    var staged: ExportCache.Staged? = nil
    /// The traces `stored` found without a row, for `write` in the same
    /// transaction: the commit makes their rows, at revision 1 and the
    /// generation it draws, and they have no metadata rows, so `write`
    /// neither deletes those nor reads the new rows back (on the bench
    /// load, where every trace is new, that read was 1.4% of the CPU). The
    /// transaction holds the traces' locks (SQLite's one writer,
    /// PostgreSQL's advisory locks, which every writer of trace rows
    /// takes), so no one else makes those rows meanwhile.
    let rowless = Rowless()

    final class Rowless: @unchecked Sendable {
        var traces: Set<TraceID> = []
        /// The transaction has made trace rows: SQLite's `TraceKeyIndex`
        /// may read them, uncommitted, but not move past them.
        var wroteTraces = false
        /// Trace rows this transaction deleted, for `TraceKeyIndex.forget`
        /// once it commits.
        var deleted: [(TraceID, epoch: Int64)] = []
    }

    func stored(_ traces: [TraceID]) throws -> [TraceID: StoredTrace] {
        let numbers = try rowNumbers(of: traces)
        for id in traces where numbers[id] == nil { rowless.traces.insert(id) }
        return numbers.mapValues { StoredTrace(lastSeq: $0.lastSeq, generation: $0.generation) }
    }

    /// The counters of one trace row.
    struct TraceRowNumbers {
        var lastSeq: Int64
        var revision: Int64
        var generation: Int64
        var epoch: Int64
    }

    /// The counters of the given traces' rows, by trace.
    func rowNumbers(of traces: [TraceID]) throws -> [TraceID: TraceRowNumbers] {
        var result = [TraceID: TraceRowNumbers](minimumCapacity: traces.count)
        try TraceRows.byID(traces, in: session, advancing: !rowless.wroteTraces) { keys in
            for row in try session.rows("SELECT trace_id, last_seq, revision, generation, epoch FROM traces WHERE \(keys.sql)", keys.args) {
                guard let id = row["trace_id"].data.flatMap({ TraceID(bytes: [UInt8]($0)) }),
                      let lastSeq = row["last_seq"].int, let revision = row["revision"].int, let generation = row["generation"].int,
                      let epoch = row["epoch"].int
                else { continue }
                result[id] = TraceRowNumbers(lastSeq: lastSeq, revision: revision, generation: generation, epoch: epoch)
            }
        }
        return result
    }

    func history(of trace: TraceID, after seq: Int64) throws -> [(seq: Int64, event: TraceEvent)] {
        let id = SQLValue.blob(trace.data)
        let one = try TraceRows.one(trace, in: session, advancing: !rowless.wroteTraces)
        let rows = try session.rows(
            """
            SELECT seq, received_at, body, NULL AS api FROM observations WHERE \(one.sql) AND seq > ? AND body IS NOT NULL
            UNION ALL SELECT seq, 0, NULL, body FROM api_updates WHERE trace_id = ? AND seq > ? ORDER BY seq
            """,
            one.args + [.int(seq), id, .int(seq)]
        )
        return try rows.map { row in
            let seq = row["seq"].int ?? 0
            if let api = row["api"].string {
                guard let update = MetadataUpdateCoding.decode(api) else { throw StoreError("stored metadata update of trace \(trace.hex) does not decode") }
                return (seq, .update(update))
            }
            return (seq, .span(try storedSpan(row, of: trace)))
        }
    }

    func spans(of trace: TraceID, ids: [SpanID]) throws -> [StoredSpan] {
        guard !ids.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        let one = try TraceRows.one(trace, in: session, advancing: !rowless.wroteTraces)
        let rows = try session.rows(
            "SELECT received_at, body FROM observations WHERE \(one.sql) AND span_id IN (\(marks)) AND body IS NOT NULL ORDER BY seq",
            one.args + ids.map { .blob($0.data) }
        )
        return try rows.map { try storedSpan($0, of: trace) }
    }

    /// A `spans` row's one-span OTLP message, decoded.
    private func storedSpan(_ row: SQLRow, of trace: TraceID) throws -> StoredSpan {
        let body = try session.rowCompression.expand(row["body"], in: session).data ?? Data()
        let decoded = try OTLPProtobufDecoder.decode([UInt8](body)).batch
        guard let rs = decoded.resourceSpans.first, let ss = rs.scopeSpans.first, let span = ss.spans.first else {
            throw StoreError("stored span of trace \(trace.hex) does not decode")
        }
        return StoredSpan(span: span, resource: rs.resource, scope: ss.scope, receivedAtUnixNano: UInt64(bitPattern: row["received_at"].int ?? 0))
    }

    func write(_ commit: FoldCommit) throws -> [TraceID: Int64] {
        let now = Int64(WallClock.nowUnixNano())
        // A new row's generation (`StoredTrace`); an update keeps the row's.
        // Drawn afresh on every write, so that a row deleted after the fold
        // read it is made with a new one: one random base a commit, and the
        // rows of the commit count up from it (one draw, not a system call
        // per row; it only has to differ from the deleted row's).
        let generationBase = Int64.random(in: 1...(Int64.max / 2))
        // Each new span as a one-span request: its own bytes when it came
        // as protobuf, under its resource and scope encoded once for the
        // spans that share them (one resource value, compared by identity
        // first, serves a whole request).
        // By index, here and below: iterating the commit's arrays (zip,
        // map, for-in) copied each span and row, a retain of every field.
        var shared: (resource: Resource, scope: InstrumentationScope, resourceBytes: [UInt8], scopeBytes: [UInt8])?
        let bodies = session.rowCompression.compress(
            commit.newSpans.indices.map { i in
                guard let wire = commit.newSpans[i].span.wire else {
                    let s = commit.newSpans[i].span
                    return OTLPProtobufEncoder.encode(SpanBatch(resourceSpans: [
                        ResourceSpans(resource: s.resource, scopeSpans: [ScopeSpans(scope: s.scope, spans: [s.span])])
                    ]))
                }
                if let last = shared, last.resource == commit.newSpans[i].span.resource, last.scope == commit.newSpans[i].span.scope {
                    return OTLPProtobufEncoder.oneSpanRequest(resource: last.resourceBytes, scope: last.scopeBytes, span: wire)
                }
                let (resource, scope) = (commit.newSpans[i].span.resource, commit.newSpans[i].span.scope)
                let encoded = (resource, scope, OTLPProtobufEncoder.encode(resource), OTLPProtobufEncoder.encode(scope))
                shared = encoded
                return OTLPProtobufEncoder.oneSpanRequest(resource: encoded.2, scope: encoded.3, span: wire)
            },
            column: .spanBody
        )
        let records = session.rowCompression.compress(commit.observations.map(\.record), column: .observationRecord)
        let traceRecords = session.rowCompression.compress(commit.traces.map(\.json), column: .traceRecord)
        try RowCompression.store([bodies.dictionary, records.dictionary, traceRecords.dictionary].compactMap { $0 }, in: session)
        // A new span's bytes go into its observation's row (the `spans`
        // view shows them), which this commit writes: every new span's
        // observation is rendered in the commit that adds it.
        var newSpans = [SpanKey: Int](minimumCapacity: commit.newSpans.count)
        for i in commit.newSpans.indices { newSpans[commit.newSpans[i].span.span.key] = i }
        // The epoch of the traces this commit makes (`TraceEpochs`).
        let epoch = try epochs.epoch(ofRows: commit.observations.count) {
            try session.row("SELECT MAX(epoch) AS e FROM observations", [])?["e"].int ?? 0
        }
        try session.insert(
            into: "api_updates", [("trace_id", .blob), ("seq", .int), ("body", .text)],
            rows: commit.newUpdates.map { [.blob($0.trace.data), .int($0.seq), .text(MetadataUpdateCoding.encode($0.update))] },
            onConflict: ""
        )
        // The rows there before this commit, and their epochs: SQLite keys a
        // trace row by (epoch, trace_id) (`TraceKeyIndex`), so an update
        // names the row's own epoch, and a new row the commit's.
        let new = commit.traces.map { rowless.traces.contains($0.traceID) }
        let old = commit.traces.indices.compactMap { new[$0] ? nil : commit.traces[$0].traceID }
        let before = try rowNumbers(of: old)
        let services = try ServiceMetadata.ids(commit.traces, in: session)
        try session.insert(
            into: "traces",
            [("trace_id", .blob), ("revision", .int), ("changed_at", .int), ("start_time", .int), ("record", .blob), ("name", .text),
             ("user_id", .text), ("session_id", .text), ("version", .text), ("release", .text), ("environment", .text), ("tags", .json),
             ("public", .int), ("last_seq", .int), ("latency", .double), ("total_cost", .double), ("generation", .int), ("epoch", .int),
             ("service_metadata", .int)],
            count: commit.traces.count,
            onConflict: """
                ON CONFLICT(\(session.traceKeys == nil ? "trace_id" : "epoch, trace_id")) DO UPDATE SET revision = traces.revision + 1, changed_at = excluded.changed_at,
                  start_time = excluded.start_time, record = excluded.record, name = excluded.name, user_id = excluded.user_id,
                  session_id = excluded.session_id, version = excluded.version, release = excluded.release,
                  environment = excluded.environment, tags = excluded.tags, public = excluded.public,
                  last_seq = excluded.last_seq, latency = excluded.latency, total_cost = excluded.total_cost,
                  service_metadata = excluded.service_metadata
                """
        ) { index, w in
            Self.traceColumns(
                commit.traces[index], record: traceRecords, index, lastSeq: commit.lastSeq, now: now, generation: generationBase + Int64(index),
                epoch: before[commit.traces[index].traceID]?.epoch ?? epoch, into: &w)
            if let id = services[index] { w.int(id) } else { w.null() }
        }
        rowless.wroteTraces = true
        // Each observation carries the revision its trace now has: what the
        // exporter compares with the trace's exported revision; and each
        // row of a trace, its epoch.
        // What the upsert made of each row, from the rows read before it (the
        // transaction holds the traces' locks): an update raised the
        // revision and set last_seq; a row that was not there is as
        // `traceColumns` inserted it.
        var written = [TraceID: TraceRowNumbers](minimumCapacity: commit.traces.count)
        for index in commit.traces.indices {
            let id = commit.traces[index].traceID
            let lastSeq = commit.lastSeq[id] ?? 0
            if let row = before[id] {
                written[id] = TraceRowNumbers(lastSeq: lastSeq, revision: row.revision + 1, generation: row.generation, epoch: row.epoch)
            } else {
                written[id] = TraceRowNumbers(lastSeq: lastSeq, revision: 1, generation: generationBase + Int64(index), epoch: epoch)
            }
            if new[index] { rowless.traces.remove(id) }
        }
        // Top-level metadata as (key, text) rows: what the metadata filters
        // and the summary's grouping use, through an index. The trace's
        // start time rides along so that a filtered list is read in page
        // order from that index (`traces(_:)`).
        // Only rows that were there before this commit have metadata rows.
        try TraceRows.keyLists(old.map { ($0, written[$0]?.epoch ?? 0) }) { keys in
            try session.execute("DELETE FROM trace_metadata WHERE \(keys.sql)", keys.args)
        }
        var metadataRows = [(trace: Int, key: String, value: JSONText)]()
        metadataRows.reserveCapacity(commit.traces.reduce(0) { $0 + $1.metadata.count })
        for t in commit.traces.indices {
            // Not the `_user` that is the trace's userId (`isDerivedUser`):
            // one row a trace fewer, and the value index no longer takes
            // a group for every user.
            // Nor `resourceAttributes` and `scope`, which the trace row
            // refers to (`ServiceMetadata`).
            let userID = commit.traces[t].userID
            for (key, value) in commit.traces[t].metadata
            where !TraceRow.isDerivedUser(key, value, userID: userID) && ServiceMetadata.column(of: key) == nil {
                metadataRows.append((t, key, value))
            }
        }
        try session.insert(
            into: "trace_metadata", [("trace_id", .blob), ("key", .text), ("value", .text), ("start_time", .int), ("epoch", .int)],
            count: metadataRows.count, onConflict: ""
        ) { i, w in
            let t = metadataRows[i].trace
            w.blob(commit.traces[t].traceID)
            w.text(metadataRows[i].key)
            Self.metadataText(metadataRows[i].value, into: &w)
            w.int(Int64(bitPattern: commit.traces[t].startUnixNano))
            w.int(written[commit.traces[t].traceID]?.epoch ?? epoch)
        }
        // Which observation rows this commit inserts (their span is new),
        // for the cache: those rows have revision 1.
        var inserted = [Bool]()
        inserted.reserveCapacity(commit.observations.count)
        // Each row's fields are read in place, through the rows' buffer:
        // `commit.observations[index]`, read or passed as a value (even to
        // an inlined function), copied the whole row, a retain and a
        // release of each of its strings.
        try commit.observations.withUnsafeBufferPointer { rows in
            try session.insert(
                into: "observations",
                [("trace_id", .blob), ("span_id", .blob), ("revision", .int), ("trace_revision", .int), ("start_time", .int), ("record", .blob), ("type", .text),
                 ("name", .text), ("level", .text), ("version", .text), ("parent_id", .text), ("environment", .text), ("model", .text),
                 ("latency", .double), ("input_tokens", .double), ("output_tokens", .double), ("total_tokens", .double), ("cost", .double),
                 ("seq", .int), ("received_at", .int), ("body", .blob), ("epoch", .int)],
                count: commit.observations.count,
                // SQLite's unique key leads with the trace's epoch; PostgreSQL
                // keeps its primary key, whose pages its buffer pool holds.
                onConflict: """
                    ON CONFLICT(\(session.dialect == .sqlite ? "epoch, trace_id, span_id" : "trace_id, span_id")) DO UPDATE SET revision = observations.revision + 1, trace_revision = excluded.trace_revision,
                      start_time = excluded.start_time,
                      record = excluded.record, type = excluded.type, name = excluded.name, level = excluded.level,
                      version = excluded.version, parent_id = excluded.parent_id, environment = excluded.environment,
                      model = excluded.model, latency = excluded.latency, input_tokens = excluded.input_tokens,
                      output_tokens = excluded.output_tokens, total_tokens = excluded.total_tokens, cost = excluded.cost
                    """
            ) { index, w in
                // A row already stored keeps its span (the update leaves those
                // columns alone).
                let key = SpanKey(traceID: rows[index].traceID, spanID: rows[index].spanID)
                let span = newSpans.removeValue(forKey: key)
                inserted.append(span != nil)
                let trace = written[key.traceID]
                Self.observationColumns(
                    rows, record: records, index, traceRevision: trace?.revision ?? 0,
                    span: span.map { (commit.newSpans[$0].seq, Int64(bitPattern: commit.newSpans[$0].span.receivedAtUnixNano), $0) }, bodies: bodies,
                    epoch: trace?.epoch ?? epoch, into: &w)
            }
        }
        // The store is the source of truth: a span with no row to go in
        // must fail the commit, not vanish.
        guard newSpans.isEmpty else {
            throw StoreError("\(newSpans.count) new span(s) had no observation row in their commit, first \(newSpans.keys.first!.spanID.hex)")
        }
        if let staged { stage(commit, written, inserted: inserted, into: staged) }
        return written.mapValues(\.generation)
    }

    /// A trace row's values, in the order `write` names its columns; its
    /// record is row `index` of `records`.
    private static func traceColumns(
        _ t: TraceRow, record records: RowCompression.Rows, _ index: Int, lastSeq: [TraceID: Int64], now: Int64, generation: Int64, epoch: Int64,
        into w: inout SQLRowWriter
    ) {
        w.blob(t.traceID)
        w.int(1)
        w.int(now)
        w.int(Int64(bitPattern: t.startUnixNano))
        records.withRow(index) { w.blob($0) }
        w.text(t.name)
        w.text(t.userID)
        w.text(t.sessionID)
        w.text(t.version)
        w.text(t.release)
        w.text(t.environment)
        w.text(JSONWriter.serialize(.array(t.tags.map(JSONValue.string))))
        w.int(t.isPublic ? 1 : 0)
        w.int(lastSeq[t.traceID] ?? 0)
        w.double(t.latency)
        w.double(t.totalCost)
        w.int(generation)
        w.int(epoch)
    }

    /// Observation row `index`'s values, in the order `write` names its
    /// columns; its record is row `index` of `records`; `span`: its new
    /// span's sequence number, receive time and row of `bodies`, if this
    /// commit inserts the row; `epoch`: its trace's. Read in place, as
    /// `write` reads the rows.
    private static func observationColumns(
        _ o: UnsafeBufferPointer<TracefoldFold.ObservationRow>, record records: RowCompression.Rows, _ index: Int, traceRevision: Int64,
        span: (seq: Int64, receivedAt: Int64, body: Int)?, bodies: RowCompression.Rows, epoch: Int64, into w: inout SQLRowWriter
    ) {
        w.blob(o[index].traceID)
        w.blob(o[index].spanID)
        w.int(1)
        w.int(traceRevision)
        w.int(Int64(bitPattern: o[index].startUnixNano))
        records.withRow(index) { w.blob($0) }
        w.text(o[index].type)
        w.text(o[index].name)
        w.text(o[index].level)
        w.text(o[index].version)
        w.hexText(o[index].parentID)
        w.text(o[index].environment)
        w.text(o[index].model)
        w.double(o[index].latency)
        w.double(o[index].inputTokens)
        w.double(o[index].outputTokens)
        w.double(o[index].totalTokens)
        w.double(o[index].cost)
        if let span {
            w.int(span.seq)
            w.int(span.receivedAt)
            bodies.withRow(span.body) { w.blob($0) }
        } else {
            w.null()
            w.null()
            w.null()
        }
        w.int(epoch)
    }

    /// The records of this commit as the exporter will want them.
    /// `inserted`: per observation, whether its row is new (its span came
    /// in this commit; the fold skips a span its trace already holds).
    /// `written`: each trace row's revision and generation after the commit.
    private func stage(_ commit: FoldCommit, _ written: [TraceID: TraceRowNumbers], inserted: [Bool], into staged: ExportCache.Staged) {
        var writes = [TraceID: ExportCache.Staged.Write](minimumCapacity: commit.traces.count)
        for i in commit.traces.indices {
            let traceID = commit.traces[i].traceID
            guard let row = written[traceID] else {
                staged.invalidate = true
                return
            }
            writes[traceID] = .init(traceID: traceID, revision: row.revision, generation: row.generation, trace: commit.traces[i].json, observations: [])
        }
        for i in commit.observations.indices {
            let traceID = commit.observations[i].traceID
            guard writes[traceID] != nil else {
                staged.invalidate = true
                return
            }
            writes[traceID]!.observations.append(
                (commit.observations[i].spanID, Int64(bitPattern: commit.observations[i].startUnixNano), commit.observations[i].record, inserted[i])
            )
        }
        staged.writes.reserveCapacity(staged.writes.count + commit.traces.count)
        for i in commit.traces.indices {
            if let w = writes.removeValue(forKey: commit.traces[i].traceID) { staged.writes.append(w) }
        }
    }

    func delete(_ traces: [TraceID]) throws -> [TraceID] {
        var deleted = [TraceID]()
        try TraceRows.byID(traces, in: session, advancing: !rowless.wroteTraces) { keys in
            let rows = try session.rows("SELECT trace_id, revision, epoch FROM traces WHERE \(keys.sql)", keys.args)
            let found = rows.compactMap { row in
                row["trace_id"].data.flatMap { TraceID(bytes: [UInt8]($0)) }.map { ($0, row["revision"].int ?? 0, row["epoch"].int ?? 0) }
            }
            guard !found.isEmpty else { return }
            deleted += found.map(\.0)
            try Tombstones.bury("trace", found.map { ($0.0.hex, $0.1) }, in: session)
            // The traces' rows, keyed by their epochs (`TraceEpochs`); at most
            // 100 traces, so one list.
            let rowKeys = found.map { ($0.0, epoch: $0.2) }
            try TraceRows.keyLists(rowKeys) { keys in
                let observations = try session.rows("SELECT span_id, revision FROM observations WHERE \(keys.sql)", keys.args).map {
                    (HexCoding.encode(bytes: $0["span_id"].data ?? Data()), $0["revision"].int ?? 0)
                }
                try Tombstones.bury("observation", observations, in: session)
                try keys.deleteRows(in: session)
            }
            var scores = SQLWhere(session.dialect)
            scores.oneOf("trace_id", found.map(\.0.hex))
            let scoreRows = try session.rows("SELECT id, revision FROM scores \(scores.sql)", scores.args).map { ($0["id"].string ?? "", $0["revision"].int ?? 0) }
            try Tombstones.bury("score", scoreRows, in: session)
            try session.execute("DELETE FROM scores \(scores.sql)", scores.args)
            try TraceRows.chunks(found) { marks, chunk in
                try session.execute("DELETE FROM api_updates WHERE trace_id IN \(marks)", chunk.map { .blob($0.0.data) })
            }
            try TraceRows.keyLists(rowKeys) { keys in try session.execute("DELETE FROM traces WHERE \(keys.sql)", keys.args) }
            rowless.deleted += rowKeys
            // A trace made again after its delete starts again at revision 1.
            staged?.invalidate = true
        }
        return deleted
    }

    /// A metadata value as the index keeps it, which is what a metadata
    /// filter compares: a string as itself (unquoted), null as SQL NULL,
    /// anything else as its JSON text.
    static func metadataText(_ v: JSONText, into w: inout SQLRowWriter) {
        w.text(metadataText(v))
    }

    /// A top-level metadata value as the store's rows hold it: a string
    /// as its text, JSON null as NULL, anything else as its JSON.
    static func metadataText(_ v: JSONText) -> String? {
        v.isNull ? nil : v.stringValue ?? v.text
    }
}

public struct StoreError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A metadata update as stored JSON.
enum MetadataUpdateCoding {
    static func encode(_ u: MetadataUpdate) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("id", string: u.id.text)
        w.field("kind", string: u.kind)
        w.field("position", .int(Int64(u.order.position)))
        w.field("scope", string: u.scope.rawValue)
        w.field("spanId", string: String(u.order.spanID))
        w.field("target", string: u.target?.hex)
        w.field("time", string: String(u.order.time))
        w.key("values")
        w.writeObject(u.values)
        w.endObject()
        return String(decoding: w.bytes, as: UTF8.self)
    }

    static func decode(_ text: String) -> MetadataUpdate? {
        guard let v = try? JSONParser.parse(text), let id = v["id"]?.stringValue,
            let scope = v["scope"]?.stringValue.flatMap(MetadataScope.init(wire:)), let kind = v["kind"]?.stringValue,
            let values = v["values"]?.objectValue, let time = v["time"]?.stringValue.flatMap({ UInt64($0) }),
            let span = v["spanId"]?.stringValue.flatMap({ UInt64($0) }), case .int(let position)? = v["position"]
        else { return nil }
        return MetadataUpdate(
            id: UpdateID(id), scope: scope, target: v["target"]?.stringValue.flatMap(SpanID.init(hex:)), kind: kind, values: values.mapValues(JSONText.init),
            order: OrderKey(time: time, spanID: span, position: Int(position))
        )
    }
}
