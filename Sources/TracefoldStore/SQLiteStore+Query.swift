import Foundation
import GRDB
import TracefoldModel

/// A WHERE clause built from optional filters, with its bound arguments.
/// Every list query of the API goes through it, so each filter kind is
/// written once.
struct SQLWhere {
    var clauses: [String] = []
    var args: [(any DatabaseValueConvertible)?] = []

    mutating func add(_ clause: String, _ values: (any DatabaseValueConvertible)?...) {
        clauses.append(clause)
        args += values
    }

    mutating func equals(_ column: String, _ value: String?) {
        if let value { add("\(column) = ?", value) }
    }

    mutating func oneOf(_ column: String, _ values: [String]) {
        guard !values.isEmpty else { return }
        clauses.append("\(column) IN (\(Array(repeating: "?", count: values.count).joined(separator: ",")))")
        args += values.map { $0 }
    }

    /// `from` inclusive, `to` exclusive, in ns.
    mutating func range(_ column: String, from: UInt64?, to: UInt64?) {
        if let from { add("\(column) >= ?", Int64(bitPattern: from)) }
        if let to { add("\(column) < ?", Int64(bitPattern: to)) }
    }

    var sql: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
    var arguments: StatementArguments { StatementArguments(args) }
}

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
    /// A column of `orderColumns`, and the direction.
    public var orderBy: (column: String, ascending: Bool) = ("timestamp", false)
    public var page = 1
    public var limit = 50

    public init() {}

    /// API names → SQL columns that may be sorted on.
    public static let orderColumns = [
        "id": "trace_id", "timestamp": "start_time", "name": "name", "userId": "user_id", "release": "release",
        "version": "version", "public": "public", "bookmarked": "0", "sessionId": "session_id",
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

extension SQLiteStore {
    /// One page of trace records (JSON text) and the total count.
    public func traces(_ f: TraceFilter) throws -> (records: [String], total: Int) {
        var w = SQLWhere()
        w.equals("user_id", f.userID)
        w.equals("name", f.name)
        w.equals("session_id", f.sessionID)
        w.equals("version", f.version)
        w.equals("release", f.release)
        for tag in f.tags { w.add("EXISTS (SELECT 1 FROM json_each(traces.tags) WHERE value = ?)", tag) }
        w.oneOf("environment", f.environments)
        w.range("start_time", from: f.fromUnixNano, to: f.toUnixNano)
        for m in f.metadata {
            // Only top-level keys: the key is quoted so that a dot is part of the name.
            let path = "$.metadata.\"\(m.key.replacingOccurrences(of: "\"", with: "\"\""))\""
            let text = "CAST(json_extract(record, ?) AS TEXT)"
            switch m.op {
            case .equals: w.add("\(text) = ?", path, m.value)
            case .contains: w.add("instr(\(text), ?) > 0", path, m.value)
            }
        }
        let column = TraceFilter.orderColumns[f.orderBy.column] ?? "start_time"
        let direction = f.orderBy.ascending ? "ASC" : "DESC"
        return try page(
            record: "record", from: "traces", where: w, orderBy: "\(column) \(direction), trace_id \(direction)", page: f.page, limit: f.limit
        )
    }

    /// One page of records and the total count, for the offset-paged lists.
    func page(record: String, from: String, where w: SQLWhere, orderBy: String, page: Int, limit: Int) throws -> (records: [String], total: Int) {
        try pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(from) \(w.sql)", arguments: w.arguments) ?? 0
            let records = try String.fetchAll(
                db,
                sql: "SELECT \(record) FROM \(from) \(w.sql) ORDER BY \(orderBy) LIMIT ? OFFSET ?",
                arguments: StatementArguments(w.args + [limit, (page - 1) * limit])
            )
            return (records, total)
        }
    }

    /// WHERE clauses shared by the v1 and v2 observation lists, over
    /// `observations o LEFT JOIN traces t`.
    static func clauses(_ f: ObservationFilter) -> SQLWhere {
        var w = SQLWhere()
        w.equals("o.type", f.type)
        w.equals("o.name", f.name)
        w.equals("o.level", f.level)
        w.equals("o.version", f.version)
        w.equals("t.user_id", f.userID)
        if let parent = f.parentObservationID {
            // An empty value matches observations without a parent.
            if parent.isEmpty { w.add("o.parent_id IS NULL") } else { w.add("o.parent_id = ?", parent) }
        }
        if let trace = f.traceID { w.add("o.trace_id = ?", Data(trace.bytes)) }
        w.oneOf("o.environment", f.environments)
        w.range("o.start_time", from: f.fromUnixNano, to: f.toUnixNano)
        return w
    }

    public func observations(_ f: ObservationFilter) throws -> (records: [String], total: Int) {
        try page(
            record: "o.record", from: "observations o LEFT JOIN traces t ON t.trace_id = o.trace_id", where: Self.clauses(f),
            orderBy: "o.start_time DESC, o.span_id DESC", page: f.page, limit: f.limit
        )
    }

    /// An observation by its id (the span id), whatever its trace.
    public func observation(_ id: SpanID) throws -> String? {
        try pool.read { db in
            try String.fetchOne(db, sql: "SELECT record FROM observations WHERE span_id = ? LIMIT 1", arguments: [Data(id.bytes)])
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

extension SQLiteStore {
    /// A page in `start_time DESC, trace_id DESC, span_id DESC` order, with one
    /// row more than asked when more follow.
    public func observationPage(_ r: ObservationPageRequest) throws -> [ObservationRow] {
        var w = Self.clauses(r.filter)
        w.equals("t.session_id", r.sessionID)
        if let root = r.isRoot { w.add(root ? "o.parent_id IS NULL" : "o.parent_id IS NOT NULL") }
        if let after = r.after { w.add("(o.start_time, o.trace_id, o.span_id) < (?, ?, ?)", after.startUnixNano, after.traceID, after.spanID) }
        return try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT o.record, o.start_time, o.trace_id, o.span_id, t.user_id, t.session_id, t.public, t.tags, t.release, t.name AS trace_name
                    FROM observations o LEFT JOIN traces t ON t.trace_id = o.trace_id \(w.sql)
                    ORDER BY o.start_time DESC, o.trace_id DESC, o.span_id DESC LIMIT ?
                    """,
                arguments: StatementArguments(w.args + [r.limit + 1])
            ).map { row in
                ObservationRow(
                    record: row["record"], startUnixNano: row["start_time"], traceID: row["trace_id"], spanID: row["span_id"],
                    userID: row["user_id"], sessionID: row["session_id"], isPublic: (row["public"] as Int?) == 1,
                    tags: row["tags"] ?? "[]", release: row["release"], traceName: row["trace_name"]
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
}

extension SQLiteStore {
    /// Aggregates per group inside SQLite: counts and sums with GROUP BY, and
    /// nearest-rank p50/p95 with window functions, so no record is loaded.
    public func summary(groupBy: SummaryGrouping, fromUnixNano: UInt64?, toUnixNano: UInt64?) throws -> [SummaryRow] {
        var w = SQLWhere()
        w.range("start_time", from: fromUnixNano, to: toUnixNano)
        var args = w.args
        let sql: String
        if groupBy == .model {
            // Only observations that name a model form a group.
            w.add("json_extract(record, '$.model') IS NOT NULL")
            // Observation-level: latency and cost of the observations.
            sql = """
                WITH b AS (
                  SELECT json_extract(record, '$.model') AS g, trace_id, level, json_extract(record, '$.latency') AS latency,
                    json_extract(record, '$.usageDetails.input') AS i, json_extract(record, '$.usageDetails.output') AS o,
                    json_extract(record, '$.usageDetails.total') AS tt, json_extract(record, '$.costDetails.total') AS cost
                  FROM observations \(w.sql)),
                p AS (SELECT g, latency, ROW_NUMBER() OVER (PARTITION BY g ORDER BY latency) AS rn, COUNT(*) OVER (PARTITION BY g) AS cnt FROM b)
                SELECT b.g AS g, COUNT(DISTINCT b.trace_id) AS traces, COUNT(*) AS observations,
                  SUM(b.level = 'ERROR') AS errors, SUM(COALESCE(i, 0)) AS input, SUM(COALESCE(o, 0)) AS output,
                  SUM(COALESCE(tt, 0)) AS total, SUM(COALESCE(cost, 0)) AS cost,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 50 + 99) / 100 THEN latency END) FROM p WHERE p.g IS b.g) AS p50,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 95 + 99) / 100 THEN latency END) FROM p WHERE p.g IS b.g) AS p95
                FROM b GROUP BY b.g ORDER BY traces DESC, g
                """
        } else {
            let key: String
            switch groupBy {
            case .metadata(let k):
                key = "json_extract(record, ?)"
                args.insert("$.metadata.\"\(k.replacingOccurrences(of: "\"", with: "\"\""))\"", at: 0)
            case .userID: key = "user_id"
            case .environment: key = "environment"
            case .name: key = "name"
            case .model: key = "NULL"
            }
            sql = """
                WITH t AS (
                  SELECT trace_id, \(key) AS g, json_extract(record, '$.latency') AS latency, json_extract(record, '$.totalCost') AS cost
                  FROM traces \(w.sql)),
                o AS (
                  SELECT trace_id, COUNT(*) AS n, SUM(level = 'ERROR') AS errors,
                    SUM(COALESCE(json_extract(record, '$.usageDetails.input'), 0)) AS i,
                    SUM(COALESCE(json_extract(record, '$.usageDetails.output'), 0)) AS o,
                    SUM(COALESCE(json_extract(record, '$.usageDetails.total'), 0)) AS tt
                  FROM observations WHERE trace_id IN (SELECT trace_id FROM t) GROUP BY trace_id),
                p AS (SELECT g, latency, ROW_NUMBER() OVER (PARTITION BY g ORDER BY latency) AS rn, COUNT(*) OVER (PARTITION BY g) AS cnt FROM t)
                SELECT t.g AS g, COUNT(*) AS traces, SUM(COALESCE(o.n, 0)) AS observations, SUM(COALESCE(o.errors, 0)) AS errors,
                  SUM(COALESCE(o.i, 0)) AS input, SUM(COALESCE(o.o, 0)) AS output, SUM(COALESCE(o.tt, 0)) AS total,
                  SUM(COALESCE(t.cost, 0)) AS cost,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 50 + 99) / 100 THEN latency END) FROM p WHERE p.g IS t.g) AS p50,
                  (SELECT MIN(CASE WHEN rn >= (cnt * 95 + 99) / 100 THEN latency END) FROM p WHERE p.g IS t.g) AS p95
                FROM t LEFT JOIN o ON o.trace_id = t.trace_id GROUP BY t.g ORDER BY traces DESC, g
                """
        }
        return try pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { row in
                let g: DatabaseValue = row["g"]
                let group: JSONValue
                switch g.storage {
                case .null: group = .null
                case .int64(let i): group = .int(i)
                case .double(let d): group = .double(d)
                case .string(let s): group = .string(s)
                case .blob(let b): group = .string(HexCoding.encode(bytes: b))
                }
                return SummaryRow(
                    group: group, traces: row["traces"], observations: row["observations"] ?? 0, errors: row["errors"] ?? 0,
                    latencyP50: row["p50"], latencyP95: row["p95"], inputTokens: row["input"] ?? 0, outputTokens: row["output"] ?? 0,
                    totalTokens: row["total"] ?? 0, totalCost: row["cost"] ?? 0
                )
            }
        }
    }
}

extension SQLiteStore {
    /// Traces that started in `[from, to)` after `after` (start time, trace
    /// id), oldest first, with all their observations: what `tracefold export`
    /// streams a page at a time (SPEC §6.4).
    public func exportPage(fromUnixNano: UInt64, toUnixNano: UInt64, after: (Int64, Data)?, limit: Int) throws -> [(start: Int64, trace: PendingTrace)] {
        try pool.read { db in
            var sql = "SELECT trace_id, start_time, revision, record FROM traces WHERE start_time >= ? AND start_time < ?"
            var args: [(any DatabaseValueConvertible)?] = [Int64(bitPattern: fromUnixNano), Int64(bitPattern: toUnixNano)]
            if let after {
                sql += " AND (start_time, trace_id) > (?, ?)"
                args += [after.0, after.1]
            }
            sql += " ORDER BY start_time, trace_id LIMIT ?"
            args.append(limit)
            let obs = try db.cachedStatement(sql: "SELECT span_id, revision, record FROM observations WHERE trace_id = ? ORDER BY start_time, span_id")
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { row in
                let traceID: Data = row["trace_id"]
                let observations = try Row.fetchAll(obs, arguments: [traceID]).map { o -> (spanID: Data, record: PendingRecord) in
                    let spanID: Data = o["span_id"]
                    return (spanID, PendingRecord(recordType: "observation", id: HexCoding.encode(bytes: spanID), revision: o["revision"], record: o["record"]))
                }
                let trace = PendingTrace(
                    traceID: traceID,
                    trace: PendingRecord(recordType: "trace", id: HexCoding.encode(bytes: traceID), revision: row["revision"], record: row["record"]),
                    observations: observations
                )
                return (row["start_time"], trace)
            }
        }
    }

    public func traceCount(fromUnixNano: UInt64, toUnixNano: UInt64) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM traces WHERE start_time >= ? AND start_time < ?",
                             arguments: [Int64(bitPattern: fromUnixNano), Int64(bitPattern: toUnixNano)]) ?? 0
        }
    }
}
