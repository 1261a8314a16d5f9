import Foundation
import TracefoldMapping
import TracefoldModel

/// A score as the API accepted it (Langfuse's scores, SPEC §7.9), validated
/// and with its defaults filled in. Scores are records of their own: they
/// are not folded from spans, and a trace lists the ids of its scores.
public struct ScoreWrite: Sendable, Equatable {
    public var id: String
    public var traceID: String?
    public var observationID: String?
    public var sessionID: String?
    public var datasetRunID: String?
    public var name: String
    /// NUMERIC, BOOLEAN, CATEGORICAL or TEXT.
    public var dataType: String
    /// NUMERIC and BOOLEAN (0 or 1); Langfuse's v2 shape has 0 for the others.
    public var value: Double?
    /// CATEGORICAL and TEXT; BOOLEAN as "True" or "False".
    public var stringValue: String?
    public var source: String
    public var environment: String
    public var comment: String?
    /// A JSON object, or nil.
    public var metadata: JSONValue?
    public var configID: String?
    public var queueID: String?
    public var timestampUnixNano: UInt64

    public init(
        id: String, traceID: String? = nil, observationID: String? = nil, sessionID: String? = nil, datasetRunID: String? = nil,
        name: String, dataType: String, value: Double?, stringValue: String?, source: String = "API", environment: String = "default",
        comment: String? = nil, metadata: JSONValue? = nil, configID: String? = nil, queueID: String? = nil, timestampUnixNano: UInt64
    ) {
        self.id = id
        self.traceID = traceID
        self.observationID = observationID
        self.sessionID = sessionID
        self.datasetRunID = datasetRunID
        self.name = name
        self.dataType = dataType
        self.value = value
        self.stringValue = stringValue
        self.source = source
        self.environment = environment
        self.comment = comment
        self.metadata = metadata
        self.configID = configID
        self.queueID = queueID
        self.timestampUnixNano = timestampUnixNano
    }

    /// The stored record: the score's own fields in Langfuse's (v2) shape,
    /// without createdAt and updatedAt, which come from the row. Two writes
    /// of the same score give the same text, so a retry changes nothing.
    var record: String {
        JSONWriter.serialize(.object([
            "id": .string(id), "traceId": JSONValue(traceID), "observationId": JSONValue(observationID),
            "sessionId": JSONValue(sessionID), "datasetRunId": JSONValue(datasetRunID), "name": .string(name),
            "value": dataType == "TEXT" ? .null : .double(value ?? 0), "dataType": .string(dataType),
            "source": .string(source), "environment": .string(environment), "comment": JSONValue(comment),
            "metadata": metadata ?? .null, "configId": JSONValue(configID), "queueId": JSONValue(queueID),
            "authorUserId": .null, "timestamp": .string(ISOTime.format(unixNano: timestampUnixNano)),
        ].merging(stringValue.map { ["stringValue": .string($0)] } ?? [:]) { $1 }))
    }
}

extension JSONValue {
    init(_ s: String?) { self = s.map(JSONValue.string) ?? .null }
}

/// A stored score: its record with createdAt and updatedAt.
public struct StoredScore: Sendable {
    public var record: [String: JSONValue]
    public var id: String { record["id"]?.stringValue ?? "" }
    /// The value typed by its data type, as v3 reads show it: a number
    /// (NUMERIC), a boolean (BOOLEAN), or the text (CATEGORICAL, TEXT).
    public var typedValue: JSONValue {
        switch record["dataType"]?.stringValue {
        case "NUMERIC": record["value"] ?? .null
        case "BOOLEAN": .bool(record["value"]?.numberValue == 1)
        default: record["stringValue"] ?? .null
        }
    }
    public var timestampUnixNano: Int64
}

/// The filters of the score lists (`GET /api/public/v3/scores` and the v2
/// list), already validated. Lists are ORed within a filter and ANDed
/// across filters.
public struct ScoreFilter: Sendable {
    public var ids: [String] = []
    public var names: [String] = []
    public var sources: [String] = []
    public var dataTypes: [String] = []
    public var environments: [String] = []
    public var configIDs: [String] = []
    public var queueIDs: [String] = []
    public var traceIDs: [String] = []
    public var observationIDs: [String] = []
    public var sessionIDs: [String] = []
    public var datasetRunIDs: [String] = []
    /// Exact values: numbers (NUMERIC, BOOLEAN as 0/1) or categories.
    public var values: [Double] = []
    public var categories: [String] = []
    /// Inclusive bounds on a NUMERIC value.
    public var valueMin: Double?
    public var valueMax: Double?
    /// `fromTimestamp` inclusive, `toTimestamp` exclusive, ns.
    public var fromUnixNano: UInt64?
    public var toUnixNano: UInt64?

    public init() {}

    func clauses(_ dialect: SQLDialect) -> SQLWhere {
        var w = SQLWhere(dialect)
        w.oneOf("id", ids)
        w.oneOf("name", names)
        w.oneOf("source", sources)
        w.oneOf("data_type", dataTypes)
        w.oneOf("environment", environments)
        w.oneOf("config_id", configIDs)
        w.oneOf("queue_id", queueIDs)
        w.oneOf("trace_id", traceIDs)
        w.oneOf("observation_id", observationIDs)
        w.oneOf("session_id", sessionIDs)
        w.oneOf("dataset_run_id", datasetRunIDs)
        if !values.isEmpty {
            w.clauses.append("value IN (\(Array(repeating: "?", count: values.count).joined(separator: ",")))")
            w.args += values.map { .double($0) }
        }
        w.oneOf("string_value", categories)
        if let valueMin { w.add("value >= ?", .double(valueMin)) }
        if let valueMax { w.add("value <= ?", .double(valueMax)) }
        w.range("timestamp", from: fromUnixNano, to: toUnixNano)
        return w
    }
}

extension RecordStore {
    /// Stores scores in one transaction. A score whose id is stored already
    /// is replaced (Langfuse's upsert) and gets a new revision, unless
    /// nothing in it changed: a retried batch writes nothing new.
    public func writeScores(_ scores: [ScoreWrite]) throws {
        guard !scores.isEmpty else { return }
        // The last of several writes of one id in a batch wins.
        var byID = [String: Int]()
        for (i, s) in scores.enumerated() { byID[s.id] = i }
        let unique = byID.values.sorted().map { scores[$0] }
        let now = SQLValue.int(Int64(WallClock.nowUnixNano()))
        try durableWrite { s in
            try s.insert(
                into: "scores",
                [("id", .text), ("revision", .int), ("changed_at", .int), ("created_at", .int), ("timestamp", .int), ("trace_id", .text),
                 ("observation_id", .text), ("session_id", .text), ("dataset_run_id", .text), ("name", .text), ("data_type", .text),
                 ("value", .double), ("string_value", .text), ("source", .text), ("environment", .text), ("config_id", .text),
                 ("queue_id", .text), ("record", .text)],
                rows: unique.map { c in
                    [
                        .text(c.id), .int(1), now, now, .int(Int64(bitPattern: c.timestampUnixNano)), SQLValue(c.traceID), SQLValue(c.observationID),
                        SQLValue(c.sessionID), SQLValue(c.datasetRunID), .text(c.name), .text(c.dataType), SQLValue(c.value),
                        SQLValue(c.stringValue), .text(c.source), .text(c.environment), SQLValue(c.configID), SQLValue(c.queueID), .text(c.record),
                    ]
                },
                onConflict: """
                    ON CONFLICT(id) DO UPDATE SET revision = scores.revision + 1, changed_at = excluded.changed_at,
                      timestamp = excluded.timestamp, trace_id = excluded.trace_id, observation_id = excluded.observation_id,
                      session_id = excluded.session_id, dataset_run_id = excluded.dataset_run_id, name = excluded.name,
                      data_type = excluded.data_type, value = excluded.value, string_value = excluded.string_value,
                      source = excluded.source, environment = excluded.environment, config_id = excluded.config_id,
                      queue_id = excluded.queue_id, record = excluded.record
                    WHERE scores.record <> excluded.record
                    """
            )
        }
    }

    static var scoreColumns: String { "record, created_at, changed_at, timestamp" }

    static func storedScore(_ row: SQLRow) throws -> StoredScore {
        guard let text = row["record"].string, case .object(var record) = try JSONParser.parse(text) else {
            throw StoreError("a stored score record does not decode")
        }
        record["createdAt"] = .string(ISOTime.format(unixNano: UInt64(bitPattern: row["created_at"].int ?? 0)))
        record["updatedAt"] = .string(ISOTime.format(unixNano: UInt64(bitPattern: row["changed_at"].int ?? 0)))
        return StoredScore(record: record, timestampUnixNano: row["timestamp"].int ?? 0)
    }

    public func score(id: String) throws -> StoredScore? {
        try read { s in try s.row("SELECT \(Self.scoreColumns) FROM scores WHERE id = ?", [.text(id)]).map(Self.storedScore) }
    }

    /// Newest first (timestamp, then id, descending), after the cursor's
    /// (timestamp, id) when given; one more than `limit` when more follow.
    public func scores(_ f: ScoreFilter, after: (timestamp: Int64, id: String)?, limit: Int) throws -> [StoredScore] {
        var w = f.clauses(dialect)
        if let after { w.add("(timestamp < ? OR (timestamp = ? AND id < ?))", .int(after.timestamp), .int(after.timestamp), .text(after.id)) }
        return try read { s in
            try s.rows("SELECT \(Self.scoreColumns) FROM scores \(w.sql) ORDER BY timestamp DESC, id DESC LIMIT ?", w.args + [SQLValue(limit + 1)])
                .map(Self.storedScore)
        }
    }

    /// One page of the offset-paged (v2) list and the total count.
    public func scores(_ f: ScoreFilter, page: Int, limit: Int) throws -> (scores: [StoredScore], total: Int) {
        let w = f.clauses(dialect)
        return try read { s in
            let total = try s.row("SELECT COUNT(*) AS n FROM scores \(w.sql)", w.args)?["n"].int ?? 0
            let (offset, overflow) = (page - 1).multipliedReportingOverflow(by: limit)
            let rows = try s.rows(
                "SELECT \(Self.scoreColumns) FROM scores \(w.sql) ORDER BY timestamp DESC, id DESC LIMIT ? OFFSET ?",
                w.args + [SQLValue(limit), SQLValue(overflow ? Int.max : offset)]
            )
            return (try rows.map(Self.storedScore), Int(total))
        }
    }

    /// The scores of these traces (32-hex ids), oldest first, by trace.
    public func scores(ofTraces traces: [String]) throws -> [String: [StoredScore]] {
        guard !traces.isEmpty else { return [:] }
        return try read { s in
            var out = [String: [StoredScore]]()
            for start in stride(from: 0, to: traces.count, by: 100) {
                let chunk = Array(traces[start..<min(start + 100, traces.count)])
                var w = SQLWhere(dialect)
                w.oneOf("trace_id", chunk)
                for row in try s.rows("SELECT trace_id, \(Self.scoreColumns) FROM scores \(w.sql) ORDER BY timestamp, id", w.args) {
                    out[row["trace_id"].string ?? "", default: []].append(try Self.storedScore(row))
                }
            }
            return out
        }
    }

    /// Deletes a score; its tombstone is exported (SPEC §7.9). False when
    /// there was no such score.
    /// Scores whose timestamp is in `[from, to)`, oldest first after the
    /// cursor (timestamp, id), as the JSONL exporter's records with their
    /// line revisions: what `tracefold export` writes after the traces.
    public func exportScores(fromUnixNano: UInt64, toUnixNano: UInt64, after: (Int64, String)?, limit: Int) throws -> [(cursor: (Int64, String), record: PendingRecord)] {
        var w = SQLWhere(dialect)
        w.range("timestamp", from: fromUnixNano, to: toUnixNano)
        if let after { w.add("(timestamp > ? OR (timestamp = ? AND id > ?))", .int(after.0), .int(after.0), .text(after.1)) }
        return try read { s in
            let rows = try s.rows("SELECT id, revision, \(Self.scoreColumns) FROM scores \(w.sql) ORDER BY timestamp, id LIMIT ?", w.args + [SQLValue(limit)])
            var records = try rows.map(Self.pendingScore)
            try Tombstones.raiseRevisions(&records, recordType: "score", in: s)
            return zip(rows, records).map { (($0["timestamp"].int ?? 0, $1.id), $1) }
        }
    }

    /// A `scores` row (id, revision and `scoreColumns`) as a record to export.
    static func pendingScore(_ row: SQLRow) throws -> PendingRecord {
        var w = JSONWriter(reservingCapacity: 512)
        w.write(.object(try storedScore(row).record))
        return PendingRecord(recordType: "score", id: row["id"].string ?? "", revision: row["revision"].int ?? 0, stored: .json(String(decoding: w.bytes, as: UTF8.self)))
    }

    public func deleteScore(id: String) throws -> Bool {
        try durableWrite { s in
            guard let revision = try s.row("SELECT revision FROM scores WHERE id = ?", [.text(id)])?["revision"].int else { return false }
            try Tombstones.bury("score", [(id, revision)], in: s)
            try s.execute("DELETE FROM scores WHERE id = ?", [.text(id)])
            return true
        }
    }
}

/// Deleted records, kept for the JSONL export (SPEC §7.9).
enum Tombstones {
    /// Records deleted records as tombstones for the JSONL export. A
    /// tombstone's revision is one above the last revision the record's
    /// lines could have carried, and it stays as the floor of a record
    /// made again with the same id (`revisionFloors`), so that a reader
    /// keeping the highest revision per (recordType, id) sees the delete,
    /// and then whatever came after it.
    static func bury(_ recordType: String, _ records: [(id: String, revision: Int64)], in s: any SQLSession) throws {
        guard !records.isEmpty else { return }
        let floors = try revisionFloors(recordType, ids: records.map(\.id), in: s)
        try s.insert(
            into: "tombstones", [("record_type", .text), ("id", .text), ("revision", .int), ("changed_at", .int)],
            rows: records.map { [.text(recordType), .text($0.id), .int($0.revision + (floors[$0.id] ?? 0) + 1), .int(Int64(WallClock.nowUnixNano()))] },
            onConflict: "ON CONFLICT(record_type, id) DO UPDATE SET revision = excluded.revision, changed_at = excluded.changed_at"
        )
    }

    /// The tombstone revisions of these ids: what their records' revisions
    /// count from after a delete.
    static func revisionFloors(_ recordType: String, ids: [String], in s: any SQLSession) throws -> [String: Int64] {
        var floors = [String: Int64]()
        for start in stride(from: 0, to: ids.count, by: 100) {
            var w = SQLWhere(s.dialect)
            w.add("record_type = ?", .text(recordType))
            w.oneOf("id", Array(ids[start..<min(start + 100, ids.count)]))
            for row in try s.rows("SELECT id, revision FROM tombstones \(w.sql)", w.args) {
                if let id = row["id"].string, let r = row["revision"].int { floors[id] = r }
            }
        }
        return floors
    }

    /// Adds the tombstone floors of one record type to these records' line
    /// revisions.
    static func raiseRevisions(_ records: inout [PendingRecord], recordType: String, in s: any SQLSession) throws {
        guard !records.isEmpty else { return }
        let floors = try revisionFloors(recordType, ids: records.map(\.id), in: s)
        for i in records.indices { records[i].revision += floors[records[i].id] ?? 0 }
    }

    /// Adds the tombstone floors to pending revisions; nothing to do (one
    /// cheap probe) while nothing was ever deleted.
    static func raiseRevisions(_ traces: inout [PendingTrace], in s: any SQLSession) throws {
        guard !traces.isEmpty, try s.row("SELECT 1 AS one FROM tombstones LIMIT 1", []) != nil else { return }
        // The ids once: a trace's and an observation's are hex-encoded when read.
        let traceIDs = traces.map(\.trace.id)
        let observationIDs = traces.map { $0.observations.map(\.record.id) }
        let traceFloors = try revisionFloors("trace", ids: traceIDs, in: s)
        let observationFloors = try revisionFloors("observation", ids: observationIDs.flatMap { $0 }, in: s)
        for i in traces.indices {
            traces[i].trace.revision += traceFloors[traceIDs[i]] ?? 0
            for j in traces[i].observations.indices {
                traces[i].observations[j].record.revision += observationFloors[observationIDs[i][j]] ?? 0
            }
        }
    }
}
