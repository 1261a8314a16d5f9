import Foundation
import GRDB
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
        var clauses = [String]()
        var args = [(any DatabaseValueConvertible)?]()
        func eq(_ column: String, _ value: String?) {
            guard let value else { return }
            clauses.append("\(column) = ?")
            args.append(value)
        }
        eq("user_id", f.userID)
        eq("name", f.name)
        eq("session_id", f.sessionID)
        eq("version", f.version)
        eq("release", f.release)
        for tag in f.tags {
            clauses.append("EXISTS (SELECT 1 FROM json_each(traces.tags) WHERE value = ?)")
            args.append(tag)
        }
        if !f.environments.isEmpty {
            clauses.append("environment IN (\(Array(repeating: "?", count: f.environments.count).joined(separator: ",")))")
            args += f.environments.map { $0 }
        }
        if let from = f.fromUnixNano {
            clauses.append("start_time >= ?")
            args.append(Int64(bitPattern: from))
        }
        if let to = f.toUnixNano {
            clauses.append("start_time < ?")
            args.append(Int64(bitPattern: to))
        }
        for m in f.metadata {
            // Only top-level keys: the key is quoted so that a dot is part of the name.
            let path = "$.metadata.\"\(m.key.replacingOccurrences(of: "\"", with: "\"\""))\""
            let text = "CAST(json_extract(record, ?) AS TEXT)"
            switch m.op {
            case .equals: clauses.append("\(text) = ?")
            case .contains: clauses.append("instr(\(text), ?) > 0")
            }
            args.append(path)
            args.append(m.value)
        }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let column = TraceFilter.orderColumns[f.orderBy.column] ?? "start_time"
        let direction = f.orderBy.ascending ? "ASC" : "DESC"
        return try pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM traces \(whereSQL)", arguments: StatementArguments(args)) ?? 0
            let records = try String.fetchAll(
                db,
                sql: "SELECT record FROM traces \(whereSQL) ORDER BY \(column) \(direction), trace_id \(direction) LIMIT ? OFFSET ?",
                arguments: StatementArguments(args + [f.limit, (f.page - 1) * f.limit])
            )
            return (records, total)
        }
    }

    public func observations(_ f: ObservationFilter) throws -> (records: [String], total: Int) {
        var clauses = [String]()
        var args = [(any DatabaseValueConvertible)?]()
        func eq(_ column: String, _ value: String?) {
            guard let value else { return }
            clauses.append("\(column) = ?")
            args.append(value)
        }
        eq("o.type", f.type)
        eq("o.name", f.name)
        eq("o.level", f.level)
        eq("o.version", f.version)
        eq("o.parent_id", f.parentObservationID)
        eq("t.user_id", f.userID)
        if let trace = f.traceID {
            clauses.append("o.trace_id = ?")
            args.append(Data(trace.bytes))
        }
        if !f.environments.isEmpty {
            clauses.append("o.environment IN (\(Array(repeating: "?", count: f.environments.count).joined(separator: ",")))")
            args += f.environments.map { $0 }
        }
        if let from = f.fromUnixNano {
            clauses.append("o.start_time >= ?")
            args.append(Int64(bitPattern: from))
        }
        if let to = f.toUnixNano {
            clauses.append("o.start_time < ?")
            args.append(Int64(bitPattern: to))
        }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        let from = "FROM observations o LEFT JOIN traces t ON t.trace_id = o.trace_id"
        return try pool.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) \(from) \(whereSQL)", arguments: StatementArguments(args)) ?? 0
            let records = try String.fetchAll(
                db,
                sql: "SELECT o.record \(from) \(whereSQL) ORDER BY o.start_time DESC, o.span_id DESC LIMIT ? OFFSET ?",
                arguments: StatementArguments(args + [f.limit, (f.page - 1) * f.limit])
            )
            return (records, total)
        }
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
        var clauses = [String]()
        var args = [(any DatabaseValueConvertible)?]()
        let f = r.filter
        for (column, value) in [("o.type", f.type), ("o.name", f.name), ("o.level", f.level), ("o.version", f.version),
                                ("t.user_id", f.userID), ("t.session_id", r.sessionID)] {
            if let value {
                clauses.append("\(column) = ?")
                args.append(value)
            }
        }
        if let parent = f.parentObservationID {
            // An empty value matches observations without a parent.
            if parent.isEmpty { clauses.append("o.parent_id IS NULL") } else {
                clauses.append("o.parent_id = ?")
                args.append(parent)
            }
        }
        if let root = r.isRoot { clauses.append(root ? "o.parent_id IS NULL" : "o.parent_id IS NOT NULL") }
        if let trace = f.traceID {
            clauses.append("o.trace_id = ?")
            args.append(Data(trace.bytes))
        }
        if !f.environments.isEmpty {
            clauses.append("o.environment IN (\(Array(repeating: "?", count: f.environments.count).joined(separator: ",")))")
            args += f.environments.map { $0 }
        }
        if let from = f.fromUnixNano {
            clauses.append("o.start_time >= ?")
            args.append(Int64(bitPattern: from))
        }
        if let to = f.toUnixNano {
            clauses.append("o.start_time < ?")
            args.append(Int64(bitPattern: to))
        }
        if let after = r.after {
            clauses.append("(o.start_time, o.trace_id, o.span_id) < (?, ?, ?)")
            args += [after.startUnixNano, after.traceID, after.spanID]
        }
        let whereSQL = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT o.record, o.start_time, o.trace_id, o.span_id, t.user_id, t.session_id, t.public, t.tags, t.release, t.name AS trace_name
                    FROM observations o LEFT JOIN traces t ON t.trace_id = o.trace_id \(whereSQL)
                    ORDER BY o.start_time DESC, o.trace_id DESC, o.span_id DESC LIMIT ?
                    """,
                arguments: StatementArguments(args + [r.limit + 1])
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
