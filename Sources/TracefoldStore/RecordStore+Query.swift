import Foundation
import TracefoldFold
import TracefoldMapping
import TracefoldModel

/// Filters of `GET /api/public/traces` (SPEC §7.1), already validated.
public struct TraceFilter: Sendable {
    public enum MetadataOperator: Sendable { case equals, contains }

    public var userID: String?
    public var name: String?
    public var sessionID: String?
    public var version: String?
    public var release: String?
    /// All of these (SPEC §7.1).
    public var tags: [String] = []
    /// Any of these.
    public var environments: [String] = []
    /// Inclusive, ns.
    public var fromUnixNano: UInt64?
    /// Exclusive, ns.
    public var toUnixNano: UInt64?
    /// Top-level metadata keys compared as text.
    public var metadata: [(key: String, op: MetadataOperator, value: String)] = []
    /// The trace's level, its observations' worst (SPEC §3.4).
    public var level: ObservationLevel?
    /// A column of `orderColumns`, and the direction.
    public var orderBy: (column: String, ascending: Bool) = ("timestamp", false)
    public var page = 1
    public var limit = 50

    public init() {}

    /// API names → SQL columns of `traces` that may be sorted on. Nothing is
    /// bookmarked here, so `bookmarked` is the same for every trace and only
    /// the id orders (its column is empty).
    public static let orderColumns = [
        "id": "trace_id", "timestamp": "start_time", "name": "name", "userId": "user_id", "release": "release",
        "version": "version", "public": "public", "bookmarked": "", "sessionId": "session_id",
    ]
}

/// Filters of `GET /api/public/observations`.
public struct ObservationFilter: Sendable {
    public var type: String?
    public var name: String?
    public var userID: String?
    public var level: String?
    public var traceID: TraceID?
    public var version: String?
    public var parentObservationID: String?
    public var environments: [String] = []
    public var fromUnixNano: UInt64?
    public var toUnixNano: UInt64?
    public var page = 1
    public var limit = 50

    public init() {}
}

/// A record waiting for the JSONL exporter, or read by `tracefold export`.
public struct PendingRecord: Sendable {
    public var recordType: String
    /// The record's id as its lines and tombstones spell it. A trace's or
    /// an observation's is kept as bytes and hex-encoded only when read:
    /// the export reads it only while some record was ever deleted
    /// (`Tombstones.raiseRevisions`), and encoding every id of every pass
    /// was 0.7% of the collector's CPU on the bench load.
    public var id: String {
        switch key {
        case .text(let text): text
        case .bytes(let bytes): HexCoding.encode(bytes: bytes)
        }
    }
    private let key: Key
    private enum Key: Sendable {
        case text(String)
        case bytes(Data)
    }
    /// The revision its line carries: the row's, counted on from the
    /// tombstone of an earlier record with the same id (`Tombstones`).
    public var revision: Int64
    /// As stored: the exporter renders it straight into its line.
    public var stored: StoredRecord
    /// A tombstone: the line says `"deleted":true` and holds no record.
    public var deleted = false
    /// The row's revision, which the export marks.
    var rowRevision: Int64

    init(recordType: String, id: String, revision: Int64, stored: StoredRecord, deleted: Bool = false) {
        self.init(recordType: recordType, key: .text(id), revision: revision, stored: stored, deleted: deleted)
    }

    /// A trace's or an observation's, by its id's bytes.
    init(recordType: String, idBytes: Data, revision: Int64, stored: StoredRecord) {
        self.init(recordType: recordType, key: .bytes(idBytes), revision: revision, stored: stored, deleted: false)
    }

    private init(recordType: String, key: Key, revision: Int64, stored: StoredRecord, deleted: Bool) {
        self.recordType = recordType
        self.key = key
        self.revision = revision
        self.stored = stored
        self.deleted = deleted
        self.rowRevision = revision
    }

    /// The record as JSON text.
    public var record: String { get throws { try stored.json } }
}

/// A record column as read: JSON text (a trace's record, or an
/// observation's stored before `ObservationRecord`), or an observation's
/// record in `ObservationRecord`'s form.
public enum StoredRecord: Sendable {
    case json(String)
    /// JSON text as bytes, as the export cache holds a trace's record.
    case jsonBytes([UInt8])
    case observation([UInt8])

    init(_ column: SQLValue) {
        switch column {
        case .blob(let bytes): self.init(bytes: [UInt8](bytes))
        case .text(let text): self = .json(text)
        default: self = .json("{}")
        }
    }

    /// A record column's bytes: JSON text, or an observation's record in
    /// `ObservationRecord`'s form (which never starts with a brace). Taken
    /// as they are: the export cache's records are not copied again.
    init(bytes: [UInt8]) {
        self = bytes.first == UInt8(ascii: "{") ? .jsonBytes(bytes) : .observation(bytes)
    }

    /// The record as JSON text.
    var json: String {
        get throws {
            switch self {
            case .json(let text): return text
            case .jsonBytes(let bytes): return String(decoding: bytes, as: UTF8.self)
            case .observation:
                var w = JSONWriter(reservingCapacity: 2048)
                try write(into: &w)
                return String(decoding: w.bytes, as: UTF8.self)
            }
        }
    }

    /// Appends the record's JSON object to `w`; with `continuing`, without
    /// its opening brace, its first field after a comma (the caller has
    /// opened the object and written fields of its own).
    public func write(into w: inout JSONWriter, continuing: Bool = false) throws {
        func writeObject(_ utf8: UnsafeRawBufferPointer) {
            guard continuing else { return w.writeRaw(utf8) }
            let body = UnsafeRawBufferPointer(rebasing: utf8.dropFirst())
            if body.first != UInt8(ascii: "}") { w.writeRaw(",") }
            w.writeRaw(body)
        }
        switch self {
        case .json(var text):
            text.withUTF8 { writeObject(UnsafeRawBufferPointer($0)) }
        case .jsonBytes(let bytes):
            bytes.withUnsafeBytes { writeObject($0) }
        case .observation(let bytes):
            let ok = bytes.withUnsafeBytes { ObservationRecord.render($0, into: &w, continuing: continuing) }
            guard ok else { throw StoreError("a stored observation record does not decode") }
        }
    }
}

/// What one export pass writes: traces with their changed observations,
/// then scores and tombstones.
public struct PendingExport: Sendable {
    public var traces: [PendingTrace]
    public var records: [PendingRecord]
    /// The most records of one kind taken.
    var most: Int
    var isEmpty: Bool { traces.isEmpty && records.isEmpty }
}

public struct PendingTrace: Sendable {
    public var traceID: Data
    /// The trace row's epoch: with the id, its key on SQLite.
    public var epoch: Int64
    public var trace: PendingRecord
    public var observations: [(spanID: Data, record: PendingRecord)]

    /// A trace's record and its observations' (span id, row revision,
    /// record), however they were read.
    init(_ traceID: Data, epoch: Int64, revision: Int64, _ trace: StoredRecord, _ observations: [(spanID: Data, revision: Int64, record: StoredRecord)]) {
        self.traceID = traceID
        self.epoch = epoch
        self.trace = PendingRecord(recordType: "trace", idBytes: traceID, revision: revision, stored: trace)
        self.observations = observations.map {
            ($0.spanID, PendingRecord(recordType: "observation", idBytes: $0.spanID, revision: $0.revision, stored: $0.record))
        }
    }
}

extension RecordStore {
    /// A record column as JSON text: a trace's record, or an observation's
    /// record stored before `ObservationRecord`, is JSON text; an
    /// observation's record is rendered from its stored form.
    static func recordJSON(_ column: SQLValue, in s: any SQLSession) throws -> String? {
        let column = try s.rowCompression.expand(column, in: s)
        switch column {
        case .text(let text): return text
        case .blob: return try StoredRecord(column).json
        default: return nil
        }
    }

    /// One page of trace records (JSON text) and the total count.
    public func traces(_ f: TraceFilter) throws -> (records: [String], total: Int) {
        // Columns are qualified: a metadata filter may join trace_metadata,
        // which also has trace_id and start_time.
        var w = SQLWhere(dialect)
        w.equals("user_id", f.userID)
        w.equals("name", f.name)
        w.equals("session_id", f.sessionID)
        w.equals("version", f.version)
        w.equals("release", f.release)
        for tag in f.tags { w.add(dialect.arrayHolds("traces.tags"), .text(tag)) }
        w.oneOf("environment", f.environments)
        w.range("traces.start_time", from: f.fromUnixNano, to: f.toUnixNano)
        if let level = f.level {
            // The worst observation level is `level`: none worse, and one at
            // it, or none at all for DEFAULT (a trace without observations).
            let worse = ObservationLevel.allCases.filter { $0 > level }
            let observation = "SELECT 1 FROM observations o WHERE \(TraceRows.joined("o", to: "traces"))"
            if !worse.isEmpty {
                w.clauses.append("NOT EXISTS (\(observation) AND o.level IN (\(worse.map { _ in "?" }.joined(separator: ","))))")
                w.args += worse.map { .text($0.rawValue) }
            }
            let at = "EXISTS (\(observation) AND o.level = ?)"
            w.add(level == .default ? "(\(at) OR NOT EXISTS (\(observation)))" : at, .text(level.rawValue))
        }
        let column = TraceFilter.orderColumns[f.orderBy.column] ?? "start_time"
        let direction = f.orderBy.ascending ? "ASC" : "DESC"
        var metadata = f.metadata
        var from = "traces"
        var orderBy = (column.isEmpty ? "" : "traces.\(column) \(direction), ") + "traces.trace_id \(direction)"
        // `_user` where it is the userId has no row of its own (`TraceRow.isDerivedUser`), and
        // `resourceAttributes` and `scope` none at all (`ServiceMetadata`): not through the index.
        if column == "start_time",
            let i = metadata.firstIndex(where: { $0.op == .equals && $0.key != TraceRow.userKey && ServiceMetadata.column(of: $0.key) == nil })
        {
            // Newest first by one metadata value: trace_metadata's (key,
            // value, start_time, trace_id) index holds the matches in page
            // order, so the page reads only its own trace rows (not all
            // matches, then a sort) and, with no other filter, the count
            // reads no trace rows. 100k traces, a value on 14k of them:
            // about 100 ms to a few ms (bench/query.py).
            let m = metadata.remove(at: i)
            from = "trace_metadata m JOIN traces ON traces.epoch = m.epoch AND traces.trace_id = m.trace_id"
            orderBy = "m.start_time \(direction), m.trace_id \(direction)"
            if w.clauses.isEmpty && metadata.isEmpty {
                // The one filter: the page is picked from the index alone,
                // and only its own trace rows are joined. Joined before the
                // LIMIT, PostgreSQL's planner, which takes key and value for
                // independent and so expected an eighth of the matches,
                // read every trace row and sorted them once the offset
                // passed about 800: 68 ms a page, against 0.6 ms this way.
                w.add("m.key = ? AND m.value = ?", .text(m.key), .text(m.value))
                return try page(
                    record: "traces.record", from: "trace_metadata m", where: w, orderBy: orderBy, page: f.page, limit: f.limit,
                    joinAfterPaging: (keys: "m.epoch, m.trace_id, m.start_time", alias: "m", join: "JOIN traces ON traces.epoch = m.epoch AND traces.trace_id = m.trace_id"))
            }
            w.add("m.key = ? AND m.value = ?", .text(m.key), .text(m.value))
        }
        if from == "traces", let m = metadata.first(where: { $0.key == TraceRow.userKey && $0.op == .equals }) {
            // The traces `_user` can name: those of that userId (through
            // `traces_by_user`) and those of such a row; the filter below
            // keeps those whose `_user` it is. Left to the planner, the
            // list scanned every trace in time order.
            from = "(SELECT epoch, trace_id FROM traces WHERE user_id = ? UNION SELECT epoch, trace_id FROM trace_metadata WHERE key = ? AND value = ?) c"
                + " JOIN traces ON traces.epoch = c.epoch AND traces.trace_id = c.trace_id"
            w.args = [.text(m.value), .text(TraceRow.userKey), .text(m.value)] + w.args
        }
        for m in metadata {
            // Top-level keys only, through trace_metadata's (key, value, …) index.
            let test = { (column: String) in m.op == .equals ? "\(column) = ?" : self.dialect.contains(column) }
            if m.key == TraceRow.userKey {
                let user = Self.userExpression("traces")
                w.clauses.append(test(user.sql))
                w.args += user.args + [.text(m.value)]
                continue
            }
            if let service = ServiceMetadata.column(of: m.key) {
                // The pairs that match (most often one), then their traces
                // through `traces_by_service`. Named as values, not as a
                // subquery: on one pair the index gives the traces in
                // start order, and a page of 100k matches reads 50 rows,
                // not all of them to sort (122 ms to a few).
                let ids = try read { s in try s.rows("SELECT id FROM service_metadata WHERE \(test(service))", [.text(m.value)]) }
                    .compactMap { $0["id"].int }
                if ids.count > ServiceMetadata.mostNamedPairs {
                    w.add("traces.service_metadata IN (SELECT id FROM service_metadata WHERE \(test(service)))", .text(m.value))
                } else {
                    w.clauses.append(ids.isEmpty ? "1 = 0" : "traces.service_metadata IN (\(ids.map { _ in "?" }.joined(separator: ", ")))")
                    w.args += ids.map(SQLValue.int)
                }
                continue
            }
            w.add("(traces.epoch, traces.trace_id) IN (SELECT epoch, trace_id FROM trace_metadata WHERE key = ? AND \(test("value")))", .text(m.key), .text(m.value))
        }
        return try page(record: "traces.record", from: from, where: w, orderBy: orderBy, page: f.page, limit: f.limit)
    }

    /// The trace's `_user` (SPEC §5.4) as SQL on the row `traces`, and
    /// the values it binds: its own row, where the store kept one (an
    /// explicit `_user` other than the userId), else `user_id` when `_user`
    /// is the userId (`TraceRow.isDerivedUser`: at most 128 scalars long),
    /// else NULL. The filters and the summary's grouping both read it.
    static func userExpression(_ traces: String) -> (sql: String, args: [SQLValue]) {
        let row = "FROM trace_metadata u WHERE \(TraceRows.joined("u", to: traces)) AND u.key = ?"
        let sql = "(CASE WHEN EXISTS (SELECT 1 \(row)) THEN (SELECT u.value \(row)) WHEN length(\(traces).user_id) <= \(TraceRow.maxUserScalars) THEN \(traces).user_id END)"
        return (sql, [.text(TraceRow.userKey), .text(TraceRow.userKey)])
    }

    /// One page of records and the total count, for the offset-paged lists.
    /// `joinAfterPaging`: the page is picked, and the total counted, from
    /// `from` alone, as `keys` under `from`'s `alias`; then `join` brings the
    /// page's records. That join must keep every row.
    func page(
        record: String, from: String, where w: SQLWhere, orderBy: String, page: Int, limit: Int,
        joinAfterPaging: (keys: String, alias: String, join: String)? = nil
    ) throws -> (records: [String], total: Int) {
        try read { s in
            let total = try s.row("SELECT COUNT(*) AS n FROM \(from) \(w.sql)", w.args)?["n"].int ?? 0
            // A page far past the end (even Int.max) is an empty page, not an overflow trap.
            let (offset, overflow) = (page - 1).multipliedReportingOverflow(by: limit)
            var sql = "SELECT \(record) AS record FROM \(from) \(w.sql) ORDER BY \(orderBy) LIMIT ? OFFSET ?"
            if let (keys, alias, join) = joinAfterPaging {
                sql = "SELECT \(record) AS record FROM (SELECT \(keys) FROM \(from) \(w.sql) ORDER BY \(orderBy) LIMIT ? OFFSET ?) \(alias) \(join) ORDER BY \(orderBy)"
            }
            let records = try s.rows(sql, w.args + [SQLValue(limit), SQLValue(overflow ? Int.max : offset)])
                .compactMap { try Self.recordJSON($0["record"], in: s) }
            return (records, Int(total))
        }
    }

    /// WHERE clauses shared by the v1 and v2 observation lists, over
    /// `observations o LEFT JOIN traces t`.
    func clauses(_ f: ObservationFilter) throws -> SQLWhere {
        var w = SQLWhere(dialect)
        w.equals("o.type", f.type)
        w.equals("o.name", f.name)
        w.equals("o.level", f.level)
        w.equals("o.version", f.version)
        w.equals("t.user_id", f.userID)
        if let parent = f.parentObservationID {
            // An empty value matches observations without a parent.
            if parent.isEmpty { w.add("o.parent_id IS NULL") } else { w.add("o.parent_id = ?", .text(parent)) }
        }
        if let trace = f.traceID {
            // The trace's epochs (`TraceKeyIndex`) as of now: the page's own
            // read comes after.
            let one = try read { s in try TraceRows.one("o.", trace, in: s) }
            w.clauses.append(one.sql)
            w.args += one.args
        }
        w.oneOf("o.environment", f.environments)
        w.range("o.start_time", from: f.fromUnixNano, to: f.toUnixNano)
        return w
    }

    public func observations(_ f: ObservationFilter) throws -> (records: [String], total: Int) {
        try page(
            record: "o.record", from: "observations o LEFT JOIN traces t ON t.epoch = o.epoch AND t.trace_id = o.trace_id", where: try clauses(f),
            orderBy: "o.start_time DESC, o.span_id DESC", page: f.page, limit: f.limit
        )
    }

    /// An observation by its id (the span id), whatever its trace: one
    /// probe of `observations_by_epoch_span` per epoch there is
    /// (`TraceEpochs`), each epoch found from the one before through the
    /// same index.
    public func observation(_ id: SpanID) throws -> String? {
        try read { s in try s.row(Self.observationByID, [.blob(id.data)]).flatMap { try Self.recordJSON($0["record"], in: s) } }
    }

    /// `observation(_:)`'s query, with the span id as its one argument.
    static var observationByID: String {
        """
        WITH RECURSIVE epochs(e) AS (
          SELECT MIN(epoch) FROM observations
          UNION ALL SELECT (SELECT MIN(epoch) FROM observations WHERE epoch > epochs.e) FROM epochs WHERE epochs.e IS NOT NULL)
        SELECT o.record FROM epochs JOIN observations o ON o.epoch = epochs.e AND o.span_id = ? LIMIT 1
        """
    }

    /// The stored record of a trace, as JSON text.
    public func traceRecord(_ id: TraceID) throws -> String? {
        try read { s in
            let one = try TraceRows.one(id, in: s)
            return try s.row("SELECT record FROM traces WHERE \(one.sql)", one.args).flatMap { try Self.recordJSON($0["record"], in: s) }
        }
    }

    public func observationRecords(of trace: TraceID) throws -> [String] {
        try read { s in
            let one = try TraceRows.one(trace, in: s)
            return try s.rows("SELECT record FROM observations WHERE \(one.sql) ORDER BY start_time, span_id", one.args).compactMap {
                try Self.recordJSON($0["record"], in: s)
            }
        }
    }
}

/// Filters and position of `GET /api/public/v2/observations` (SPEC §7.2).
public struct ObservationPageRequest: Sendable {
    public var filter = ObservationFilter()
    public var sessionID: String?
    public var isRoot: Bool?
    /// The last row of the previous page: start time, trace id, span id.
    public var after: (startUnixNano: Int64, traceID: Data, spanID: Data)?
    public var limit = 50

    public init() {}
}

/// One observation row with the trace columns the v2 field groups need.
public struct ObservationRow: Sendable {
    public var record: String
    public var startUnixNano: Int64
    public var traceID: Data
    public var spanID: Data
    public var userID: String?
    public var sessionID: String?
    public var isPublic: Bool
    public var tags: String
    public var release: String?
    public var traceName: String?
}

extension RecordStore {
    /// A page in `start_time DESC, trace_id DESC, span_id DESC` order, with one
    /// row more than asked when more follow.
    public func observationPage(_ r: ObservationPageRequest) throws -> [ObservationRow] {
        var w = try clauses(r.filter)
        w.equals("t.session_id", r.sessionID)
        if let root = r.isRoot { w.add(root ? "o.parent_id IS NULL" : "o.parent_id IS NOT NULL") }
        if let after = r.after { w.add("(o.start_time, o.trace_id, o.span_id) < (?, ?, ?)", .int(after.startUnixNano), .blob(after.traceID), .blob(after.spanID)) }
        return try read { s in
            try s.rows(
                """
                    SELECT o.record, o.start_time, o.trace_id, o.span_id, t.user_id, t.session_id, t.public, \(dialect == .postgres ? "CAST(t.tags AS text)" : "t.tags") AS tags, t.release, t.name AS trace_name
                    FROM observations o LEFT JOIN traces t ON t.epoch = o.epoch AND t.trace_id = o.trace_id \(w.sql)
                    ORDER BY o.start_time DESC, o.trace_id DESC, o.span_id DESC LIMIT ?
                    """,
                w.args + [SQLValue(r.limit + 1)]
            ).map { row in
                ObservationRow(
                    record: try Self.recordJSON(row["record"], in: s) ?? "{}", startUnixNano: row["start_time"].int ?? 0, traceID: row["trace_id"].data ?? Data(),
                    spanID: row["span_id"].data ?? Data(), userID: row["user_id"].string, sessionID: row["session_id"].string,
                    isPublic: row["public"].int == 1, tags: row["tags"].string ?? "[]", release: row["release"].string,
                    traceName: row["trace_name"].string
                )
            }
        }
    }
}

/// `GET /api/metrics/summary` (SPEC §7.4).
public enum SummaryGrouping: Sendable, Equatable {
    case metadata(String), userID, environment, model, name
}

public struct SummaryRow: Sendable {
    public var group: JSONValue
    public var traces: Int
    public var observations: Int
    public var errors: Int
    public var latencyP50: Double?
    public var latencyP95: Double?
    public var inputTokens: Double
    public var outputTokens: Double
    public var totalTokens: Double
    public var totalCost: Double
    /// Per score name, numeric and boolean scores only (a boolean counts
    /// as 0 or 1): how many, and their average.
    public var scores: [String: (count: Int, average: Double)] = [:]
}

extension RecordStore {
    /// Aggregates per group inside the database: counts and sums with GROUP
    /// BY, and nearest-rank p50/p95 with window functions, so no record is
    /// loaded.
    public func summary(groupBy: SummaryGrouping, fromUnixNano: UInt64?, toUnixNano: UInt64?) throws -> [SummaryRow] {
        var w = SQLWhere(dialect)
        w.range("start_time", from: fromUnixNano, to: toUnixNano)
        var args = w.args
        let same = dialect.isSame
        let errors = "CASE WHEN level = 'ERROR' THEN 1 ELSE 0 END"
        let sql: String
        // The group's expression over a `traces` row (not for models).
        var traceGroup = "NULL"
        if groupBy == .model {
            // Only observations that name a model form a group; latency and
            // cost are the observations'.
            w.add("model IS NOT NULL")
            args = w.args
            sql = """
                WITH b AS (SELECT model AS g, trace_id, level, latency, input_tokens AS i, output_tokens AS o, total_tokens AS tt, cost FROM observations \(w.sql)),
                p AS (SELECT g, latency, ROW_NUMBER() OVER (PARTITION BY g ORDER BY latency) AS rn, COUNT(*) OVER (PARTITION BY g) AS cnt FROM b)
                SELECT b.g AS g, COUNT(DISTINCT b.trace_id) AS traces, COUNT(*) AS observations,
                  SUM(\(errors)) AS errors, SUM(COALESCE(i, 0)) AS input, SUM(COALESCE(o, 0)) AS output,
                  SUM(COALESCE(tt, 0)) AS total, SUM(COALESCE(cost, 0)) AS cost,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 50 + 99) / 100 THEN latency END) FROM p WHERE p.g \(same) b.g) AS p50,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 95 + 99) / 100 THEN latency END) FROM p WHERE p.g \(same) b.g) AS p95
                FROM b GROUP BY b.g ORDER BY traces DESC, g
                """
        } else {
            let key: String
            switch groupBy {
            case .metadata(let k) where k == TraceRow.userKey:
                let user = Self.userExpression("traces")
                key = user.sql
                args.insert(contentsOf: user.args, at: 0)
            case .metadata(let k):
                if let service = ServiceMetadata.value(of: k, on: "traces") {
                    key = service
                } else {
                    key = "(SELECT value FROM trace_metadata m WHERE \(TraceRows.joined("m", to: "traces")) AND m.key = ?)"
                    args.insert(.text(k), at: 0)
                }
            case .userID: key = "user_id"
            case .environment: key = "environment"
            case .name: key = "name"
            case .model: key = "NULL"
            }
            traceGroup = key
            sql = """
                WITH t AS (SELECT epoch, trace_id, \(key) AS g, latency, total_cost AS cost FROM traces \(w.sql)),
                o AS (
                  SELECT ob.trace_id, COUNT(*) AS n, SUM(\(errors)) AS errors, SUM(COALESCE(input_tokens, 0)) AS i,
                    SUM(COALESCE(output_tokens, 0)) AS o, SUM(COALESCE(total_tokens, 0)) AS tt
                  FROM t JOIN observations ob ON \(TraceRows.joined("ob", to: "t")) GROUP BY ob.trace_id),
                p AS (SELECT g, latency, ROW_NUMBER() OVER (PARTITION BY g ORDER BY latency) AS rn, COUNT(*) OVER (PARTITION BY g) AS cnt FROM t)
                SELECT t.g AS g, COUNT(*) AS traces, SUM(COALESCE(o.n, 0)) AS observations, SUM(COALESCE(o.errors, 0)) AS errors,
                  SUM(COALESCE(o.i, 0)) AS input, SUM(COALESCE(o.o, 0)) AS output, SUM(COALESCE(o.tt, 0)) AS total,
                  SUM(COALESCE(t.cost, 0)) AS cost,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 50 + 99) / 100 THEN latency END) FROM p WHERE p.g \(same) t.g) AS p50,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 95 + 99) / 100 THEN latency END) FROM p WHERE p.g \(same) t.g) AS p95
                FROM t LEFT JOIN o ON o.trace_id = t.trace_id GROUP BY t.g ORDER BY traces DESC, g
                """
        }
        // Scores per group and name: a trace's scores, or for models the
        // scores of the observations that name the model.
        let scoreSQL: String
        var scoreArgs = args
        if groupBy == .model {
            var sw = SQLWhere(dialect)
            sw.range("o.start_time", from: fromUnixNano, to: toUnixNano)
            sw.add("o.model IS NOT NULL")
            sw.add("s.data_type IN ('NUMERIC', 'BOOLEAN')")
            scoreArgs = sw.args
            scoreSQL = """
                SELECT o.model AS g, s.name AS name, COUNT(*) AS n, AVG(s.value) AS average
                FROM observations o JOIN scores s ON s.trace_id = \(dialect.hexText("o.trace_id")) AND s.observation_id = \(dialect.hexText("o.span_id"))
                \(sw.sql) GROUP BY o.model, s.name
                """
        } else {
            scoreSQL = """
                WITH t AS (SELECT \(dialect.hexText("trace_id")) AS hex_id, \(traceGroup) AS g FROM traces \(w.sql))
                SELECT t.g AS g, s.name AS name, COUNT(*) AS n, AVG(s.value) AS average
                FROM t JOIN scores s ON s.trace_id = t.hex_id WHERE s.data_type IN ('NUMERIC', 'BOOLEAN') GROUP BY t.g, s.name
                """
        }
        func group(_ value: SQLValue) -> JSONValue {
            switch value {
            case .null: return .null
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .text(let t): return .string(t)
            case .blob(let b): return .string(HexCoding.encode(bytes: b))
            }
        }
        return try read { s in
            var scores = [JSONValue: [String: (count: Int, average: Double)]]()
            for row in try s.rows(scoreSQL, scoreArgs) {
                scores[group(row["g"]), default: [:]][row["name"].string ?? ""] = (Int(row["n"].int ?? 0), row["average"].double ?? 0)
            }
            return try s.rows(sql, args).map { row in
                let g = group(row["g"])
                return SummaryRow(
                    group: g, traces: Int(row["traces"].int ?? 0), observations: Int(row["observations"].int ?? 0),
                    errors: Int(row["errors"].int ?? 0), latencyP50: row["p50"].double, latencyP95: row["p95"].double,
                    inputTokens: row["input"].double ?? 0, outputTokens: row["output"].double ?? 0,
                    totalTokens: row["total"].double ?? 0, totalCost: row["cost"].double ?? 0, scores: scores[g] ?? [:]
                )
            }
        }
    }
}

extension RecordStore {
    /// Traces that started in `[from, to)` after `after` (start time, trace
    /// id), oldest first, with all their observations: what `tracefold export`
    /// streams a page at a time (SPEC §6.4).
    public func exportPage(fromUnixNano: UInt64, toUnixNano: UInt64, after: (Int64, Data)?, limit: Int) throws -> [(start: Int64, trace: PendingTrace)] {
        try read { s in
            var sql = "SELECT trace_id, epoch, start_time, revision, record FROM traces WHERE start_time >= ? AND start_time < ?"
            var args: [SQLValue] = [.int(Int64(bitPattern: fromUnixNano)), .int(Int64(bitPattern: toUnixNano))]
            if let after {
                sql += " AND (start_time, trace_id) > (?, ?)"
                args += [.int(after.0), .blob(after.1)]
            }
            sql += " ORDER BY start_time, trace_id LIMIT ?"
            args.append(SQLValue(limit))
            let rows = try s.rows(sql, args)
            var pending = try Self.pending(rows.map { ($0, -1) }, in: s)
            try Tombstones.raiseRevisions(&pending, in: s)
            return zip(rows, pending).map { ($0["start_time"].int ?? 0, $1) }
        }
    }

    public func traceCount(fromUnixNano: UInt64, toUnixNano: UInt64) throws -> Int {
        try read { s in
            Int(try s.row("SELECT COUNT(*) AS n FROM traces WHERE start_time >= ? AND start_time < ?",
                          [.int(Int64(bitPattern: fromUnixNano)), .int(Int64(bitPattern: toUnixNano))])?["n"].int ?? 0)
        }
    }

    /// Trace rows (trace_id, epoch, revision, record), each with its observations
    /// whose `trace_revision` is above the given revision (all of them
    /// with -1), in start order.
    ///
    /// On PostgreSQL one query for every `pendingChunk` traces: a query per
    /// trace was a round trip per trace, half of the exporter's CPU there.
    /// SQLite keeps a query per trace, which costs no round trip: its
    /// planner turned a join of 400 traces into a scan of every
    /// observation (by start time, or through an automatic index built for
    /// the query), and the collector's CPU per span rose by 15% on the
    /// bench load.
    static func pending(_ rows: [(row: SQLRow, after: Int64)], in s: any SQLSession) throws -> [PendingTrace] {
        var observations = [Data: [(spanID: Data, revision: Int64, record: StoredRecord)]]()
        func add(_ found: [SQLRow]) throws {
            for o in found {
                observations[o["trace_id"].data ?? Data(), default: []].append(
                    (o["span_id"].data ?? Data(), o["revision"].int ?? 0, StoredRecord(try s.rowCompression.expand(o["record"], in: s)))
                )
            }
        }
        switch s.dialect {
        case .sqlite:
            for (row, after) in rows {
                try add(
                    s.rows(
                        "SELECT trace_id, span_id, revision, record FROM observations WHERE epoch = ? AND trace_id = ? AND trace_revision > ? ORDER BY start_time, span_id",
                        [.int(row["epoch"].int ?? 0), .blob(row["trace_id"].data ?? Data()), .int(after)]
                    )
                )
            }
        case .postgres:
            for start in stride(from: 0, to: rows.count, by: pendingChunk) {
                let part = rows[start..<min(start + pendingChunk, rows.count)]
                var args = [SQLValue]()
                args.reserveCapacity(2 * part.count)
                for (row, after) in part { args += [.blob(row["trace_id"].data ?? Data()), .int(after)] }
                try add(
                    s.rows(
                        // A trace at a time through the index, whatever the
                        // table's size: as a plain join of 400 traces the
                        // planner chose a hash join over a scan of the whole
                        // table (96 ms against 11 on 300k observations). The
                        // LATERAL subquery is a nested loop; OFFSET 0 keeps
                        // the planner from flattening it back into the join.
                        """
                        SELECT o.trace_id, o.span_id, o.revision, o.record
                        FROM (VALUES \(valueRows(part.count, width: 2))) p
                        CROSS JOIN LATERAL (
                          SELECT trace_id, span_id, revision, record, start_time FROM observations
                          WHERE trace_id = p.column1 AND trace_revision > p.column2 OFFSET 0) o
                        ORDER BY o.start_time, o.span_id
                        """,
                        args
                    )
                )
            }
        }
        return try rows.map { row, _ in
            let traceID = row["trace_id"].data ?? Data()
            return PendingTrace(traceID, epoch: row["epoch"].int ?? 0, revision: row["revision"].int ?? 0, StoredRecord(try s.rowCompression.expand(row["record"], in: s)), observations[traceID] ?? [])
        }
    }

    /// `n` rows of `width` placeholders for a VALUES list: `(?, ?), (?, ?)`.
    static func valueRows(_ n: Int, width: Int) -> String {
        let row = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        return Array(repeating: row, count: n).joined(separator: ", ")
    }

    /// Traces whose observations one PostgreSQL query of `pending` reads:
    /// two parameters each, far below its limit on parameters.
    static var pendingChunk: Int { 400 }
}

// MARK: export bookkeeping (SPEC §6.2)

extension RecordStore {
    /// One exporter pass: takes up to `limit` traces with unexported
    /// revisions that have not changed since `idleSince` (all when nil),
    /// oldest change first; hands them to `emit`, which writes and syncs
    /// their lines and answers where its file now ends; then, in one
    /// transaction, marks them exported and records that position. Lines past
    /// the position after a crash are not covered by marks and are cut off at
    /// the next start.
    ///
    /// On PostgreSQL, exporters of several processes may share the store: the
    /// rows are selected, locked (others' locked rows skipped) and marked in
    /// one transaction, so no two write the same revision. An SQLite file has
    /// one process and so one exporter: it selects from a read snapshot and
    /// takes the write lock only to mark, so the fold does not wait while
    /// the lines are written and fsynced. A trace that changes meanwhile is
    /// marked with the revision that was written and stays pending.
    /// `exporter` names this exporter's position (its directory).
    ///
    /// Scores and tombstones go the same way, up to `limit` of each per
    /// pass, after the traces: `emit` gets them as `records`. Returns the
    /// most of any kind taken, so a pass that returns less than `limit`
    /// left nothing behind.
    @discardableResult
    public func exportPass(exporter: String, idleSince: UInt64?, limit: Int, emit: (PendingExport) throws -> (file: String, length: Int)) throws -> Int {
        let cutoff = SQLValue.int(idleSince.map { Int64(bitPattern: $0) } ?? Int64.max)
        switch dialect {
        case .postgres:
            let cache = exportCache
            var marked: PendingExport?
            let most = try write { s in
                let pending = try Self.unexported(cutoff, limit: limit, lock: "FOR UPDATE SKIP LOCKED", cache: cache, in: s)
                guard !pending.isEmpty else { return 0 }
                try Self.markExported(pending, exporter: exporter, position: emit(pending), in: s)
                marked = pending
                return pending.most
            }
            for p in marked?.traces ?? [] { cache?.exported(p.traceID, revision: p.trace.rowRevision) }
            return most
        case .sqlite:
            let cache = exportCache
            let pending = try read { s in try Self.unexported(cutoff, limit: limit, lock: "", cache: cache, in: s) }
            guard !pending.isEmpty else { return 0 }
            let position = try emit(pending)
            try write { s in try Self.markExported(pending, exporter: exporter, position: position, in: s) }
            for p in pending.traces { cache?.exported(p.traceID, revision: p.trace.rowRevision) }
            return pending.most
        }
    }

    /// Traces with unexported revisions, each with the observations written
    /// since its last export; then scores and tombstones.
    static func unexported(_ cutoff: SQLValue, limit: Int, lock: String, cache: ExportCache? = nil, in s: any SQLSession) throws -> PendingExport {
        let rows = try s.rows(
            """
            SELECT trace_id, epoch, revision, generation, exported_revision, record FROM traces
            WHERE revision > exported_revision AND changed_at <= ? ORDER BY changed_at LIMIT ? \(lock)
            """,
            [cutoff, SQLValue(limit)]
        )
        // From the export cache where it holds the trace; the others are
        // read from the rows, together, and filled in in order.
        var missed = [(row: SQLRow, after: Int64)]()
        let cached: [PendingTrace?] = rows.map { row in
            let exported = row["exported_revision"].int ?? 0
            if let cache, let traceID = row["trace_id"].data, let revision = row["revision"].int, let generation = row["generation"].int,
                let entry = cache.pending(traceID, revision: revision, generation: generation, exported: exported)
            {
                return PendingTrace(
                    traceID, epoch: row["epoch"].int ?? 0, revision: revision, StoredRecord(bytes: entry.trace),
                    entry.observations.map { ($0.spanID, $0.revision, StoredRecord(bytes: $0.record)) }
                )
            }
            missed.append((row, exported))
            return nil
        }
        var fromRows = try pending(missed, in: s).makeIterator()
        var pendingTraces = cached.map { $0 ?? fromRows.next()! }
        try Tombstones.raiseRevisions(&pendingTraces, in: s)
        var scores = try s.rows(
            """
            SELECT id, revision, \(scoreColumns) FROM scores
            WHERE revision > exported_revision AND changed_at <= ? ORDER BY changed_at LIMIT ? \(lock)
            """,
            [cutoff, SQLValue(limit)]
        ).map(pendingScore)
        try Tombstones.raiseRevisions(&scores, recordType: "score", in: s)
        let tombstones = try s.rows(
            """
            SELECT record_type, id, revision FROM tombstones
            WHERE revision > exported_revision AND changed_at <= ? ORDER BY changed_at LIMIT ? \(lock)
            """,
            [cutoff, SQLValue(limit)]
        ).map {
            PendingRecord(recordType: $0["record_type"].string ?? "", id: $0["id"].string ?? "", revision: $0["revision"].int ?? 0, stored: .json("{}"), deleted: true)
        }
        return PendingExport(traces: pendingTraces, records: scores + tombstones, most: max(pendingTraces.count, scores.count, tombstones.count))
    }

    /// Marks on the trace rows only (an observation's export state is its
    /// trace_revision against them), on score and tombstone rows, never
    /// lowered, and the file position they cover.
    static func markExported(_ pending: PendingExport, exporter: String, position: (file: String, length: Int), in s: any SQLSession) throws {
        try record(position, exporter: exporter, in: s)
        let raise = "exported_revision = \(neverLowered("exported_revision", to: "?"))"
        // One statement per `pendingChunk` traces: a statement per trace
        // was most of the cost of marking them.
        for start in stride(from: 0, to: pending.traces.count, by: pendingChunk) {
            let part = pending.traces[start..<min(start + pendingChunk, pending.traces.count)]
            var args = [SQLValue]()
            args.reserveCapacity(3 * part.count)
            for p in part { args += [.int(p.epoch), .blob(p.traceID), .int(p.trace.rowRevision)] }
            try s.execute(
                """
                WITH marks(epoch, trace_id, revision) AS (VALUES \(valueRows(part.count, width: 3)))
                UPDATE traces SET exported_revision = \(neverLowered("traces.exported_revision", to: "marks.revision"))
                FROM marks WHERE traces.epoch = marks.epoch AND traces.trace_id = marks.trace_id
                """,
                args
            )
        }
        for r in pending.records {
            let revision = SQLValue.int(r.rowRevision)
            if r.deleted {
                try s.execute("UPDATE tombstones SET \(raise) WHERE record_type = ? AND id = ?", [revision, revision, .text(r.recordType), .text(r.id)])
            } else {
                try s.execute("UPDATE scores SET \(raise) WHERE id = ?", [revision, revision, .text(r.id)])
            }
        }
    }

    /// `current` raised to `new`, never lowered (a mark an older pass sets
    /// late leaves a newer one alone); both backends run this `CASE`.
    static func neverLowered(_ current: String, to new: String) -> String {
        "CASE WHEN \(current) > \(new) THEN \(current) ELSE \(new) END"
    }

    static func record(_ position: (file: String, length: Int), exporter: String, in s: any SQLSession) throws {
        try s.execute(
            "INSERT INTO export_position(exporter, file, length) VALUES (?, ?, ?) ON CONFLICT(exporter) DO UPDATE SET file = excluded.file, length = excluded.length",
            [.text(exporter), .text(position.file), SQLValue(position.length)]
        )
    }

    /// Names a new active file, empty, before anything is written to it: a
    /// crash after its first lines but before their marks then leaves a
    /// file that the next start cuts back, not one nobody knows of.
    public func startExportFile(exporter: String, file: String) throws {
        try write { s in try Self.record((file, 0), exporter: exporter, in: s) }
    }

    /// This exporter's active file and its committed length, if any.
    public func exportPosition(exporter: String) throws -> (file: String, length: Int)? {
        try read { s in
            try s.row("SELECT file, length FROM export_position WHERE exporter = ?", [.text(exporter)]).flatMap { row in
                guard let file = row["file"].string, let length = row["length"].int else { return nil }
                return (file, Int(length))
            }
        }
    }
}

// MARK: sessions (Langfuse's `GET /api/public/sessions`)

/// A session: the traces that share a `sessionId`. It was created when its
/// first trace started.
public struct SessionRow: Sendable {
    public var id: String
    public var createdAtUnixNano: Int64
    public var environment: String?

    public init(id: String, createdAtUnixNano: Int64, environment: String?) {
        self.id = id
        self.createdAtUnixNano = createdAtUnixNano
        self.environment = environment
    }
}

extension RecordStore {
    /// Newest first; `from` (inclusive) and `to` (exclusive) bound the
    /// session's creation, `environments` its traces.
    public func sessions(fromUnixNano: UInt64?, toUnixNano: UInt64?, environments: [String], page: Int, limit: Int) throws -> (sessions: [SessionRow], total: Int) {
        var w = SQLWhere(dialect)
        w.add("session_id IS NOT NULL")
        w.oneOf("environment", environments)
        var having = SQLWhere(dialect)
        having.range("MIN(start_time)", from: fromUnixNano, to: toUnixNano)
        let grouped = """
            SELECT session_id AS id, MIN(start_time) AS created, MIN(environment) AS environment FROM traces \(w.sql)
            GROUP BY session_id \(having.clauses.isEmpty ? "" : "HAVING " + having.clauses.joined(separator: " AND "))
            """
        return try read { s in
            let total = try s.row("SELECT COUNT(*) AS n FROM (\(grouped)) g", w.args + having.args)?["n"].int ?? 0
            let (offset, overflow) = (page - 1).multipliedReportingOverflow(by: limit)
            let rows = try s.rows(
                "\(grouped) ORDER BY created DESC, id DESC LIMIT ? OFFSET ?", w.args + having.args + [SQLValue(limit), SQLValue(overflow ? Int.max : offset)]
            )
            return (rows.map { SessionRow(id: $0["id"].string ?? "", createdAtUnixNano: $0["created"].int ?? 0, environment: $0["environment"].string) }, Int(total))
        }
    }

    /// Every trace record of a session, oldest first.
    public func traceRecords(inSession id: String) throws -> [String] {
        try read { s in
            try s.rows("SELECT record FROM traces WHERE session_id = ? ORDER BY start_time, trace_id", [.text(id)]).compactMap { try Self.recordJSON($0["record"], in: s) }
        }
    }
}
