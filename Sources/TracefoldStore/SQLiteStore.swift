import Foundation
import GRDB
import OTLP
import TracefoldFold
import TracefoldMapping
import TracefoldModel

/// The embedded store (SPEC §8.1): SQLite in WAL mode through GRDB.
///
/// `spans` holds every distinct span as a one-span OTLP protobuf message, the
/// source of truth; `traces` and `observations` hold the rendered records with
/// a revision counter and the revision the JSONL exporter last wrote.
public final class SQLiteStore: FoldStore, @unchecked Sendable {
    public let path: String
    let pool: DatabasePool
    // The next span sequence number; only the fold thread writes spans.
    private var nextSeq: Int64

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // Commits are made durable by sync() (a FULL checkpoint) before the
            // intake log forgets them, so a commit need not fsync on its own.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(pool)
        nextSeq = try pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(COALESCE((SELECT MAX(seq) FROM spans), 0), COALESCE((SELECT MAX(seq) FROM api_updates), 0))") ?? 0
        } + 1
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE spans (
                  trace_id BLOB NOT NULL, span_id BLOB NOT NULL, seq INTEGER NOT NULL,
                  received_at INTEGER NOT NULL, body BLOB NOT NULL,
                  PRIMARY KEY (trace_id, span_id)) WITHOUT ROWID;
                CREATE UNIQUE INDEX spans_by_trace_seq ON spans(trace_id, seq);
                CREATE TABLE traces (
                  trace_id BLOB PRIMARY KEY, revision INTEGER NOT NULL, exported_revision INTEGER NOT NULL DEFAULT 0,
                  changed_at INTEGER NOT NULL, start_time INTEGER NOT NULL, record TEXT NOT NULL);
                CREATE INDEX traces_by_start ON traces(start_time);
                CREATE INDEX traces_unexported ON traces(changed_at) WHERE revision > exported_revision;
                CREATE TABLE observations (
                  trace_id BLOB NOT NULL, span_id BLOB NOT NULL, revision INTEGER NOT NULL,
                  exported_revision INTEGER NOT NULL DEFAULT 0, start_time INTEGER NOT NULL, record TEXT NOT NULL,
                  PRIMARY KEY (trace_id, span_id)) WITHOUT ROWID;
                """)
        }
        m.registerMigration("v2-export-position") { db in
            // The JSONL file being written and how much of it is covered by
            // committed export marks (SPEC §6, exactly-once after a crash).
            try db.execute(sql: "CREATE TABLE export_position (id INTEGER PRIMARY KEY CHECK (id = 1), file TEXT NOT NULL, length INTEGER NOT NULL)")
        }
        m.registerMigration("v3-query-columns") { db in
            // Columns the query API filters and sorts on (SPEC §7.1).
            try db.execute(sql: """
                ALTER TABLE traces ADD COLUMN name TEXT;
                ALTER TABLE traces ADD COLUMN user_id TEXT;
                ALTER TABLE traces ADD COLUMN session_id TEXT;
                ALTER TABLE traces ADD COLUMN version TEXT;
                ALTER TABLE traces ADD COLUMN release TEXT;
                ALTER TABLE traces ADD COLUMN environment TEXT;
                ALTER TABLE traces ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
                ALTER TABLE traces ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX traces_by_user ON traces(user_id, start_time);
                CREATE INDEX traces_by_session ON traces(session_id, start_time);
                CREATE INDEX traces_by_name ON traces(name, start_time);
                ALTER TABLE observations ADD COLUMN type TEXT;
                ALTER TABLE observations ADD COLUMN name TEXT;
                ALTER TABLE observations ADD COLUMN level TEXT;
                ALTER TABLE observations ADD COLUMN version TEXT;
                ALTER TABLE observations ADD COLUMN parent_id TEXT;
                ALTER TABLE observations ADD COLUMN environment TEXT;
                CREATE INDEX observations_by_start ON observations(start_time);
                CREATE UNIQUE INDEX observations_by_span ON observations(span_id, trace_id);
                """)
        }
        m.registerMigration("v4-all-entries") { db in
            try db.execute(sql: "ALTER TABLE traces ADD COLUMN entries TEXT NOT NULL DEFAULT '[]'")
        }
        m.registerMigration("v5-api-updates") { db in
            // REST metadata writes (SPEC §7.5); seq shares the spans' counter,
            // so a trace rebuilds in arrival order.
            try db.execute(sql: """
                CREATE TABLE api_updates (trace_id BLOB NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (trace_id, seq)) WITHOUT ROWID
                """)
        }
        return m
    }

    static func blob(_ id: TraceID) -> Data { Data(id.bytes) }
    static func blob(_ id: SpanID) -> Data { Data(id.bytes) }

    public func existing(_ keys: [SpanKey]) throws -> Set<SpanKey> {
        try pool.read { db in
            let statement = try db.cachedStatement(sql: "SELECT 1 FROM spans WHERE trace_id = ? AND span_id = ?")
            var found = Set<SpanKey>()
            for key in keys where try Int.fetchOne(statement, arguments: [Self.blob(key.traceID), Self.blob(key.spanID)]) != nil {
                found.insert(key)
            }
            return found
        }
    }

    public func history(of trace: TraceID) throws -> [TraceEvent] {
        let rows = try pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, received_at, body, NULL AS api FROM spans WHERE trace_id = ?
                    UNION ALL SELECT seq, 0, NULL, body FROM api_updates WHERE trace_id = ? ORDER BY seq
                    """,
                arguments: [Self.blob(trace), Self.blob(trace)]
            )
        }
        return try rows.map { row in
            if let api: String = row["api"] {
                guard let update = MetadataUpdateCoding.decode(api) else { throw StoreError("stored metadata update of trace \(trace.hex) does not decode") }
                return .update(update)
            }
            let body: Data = row["body"]
            let decoded = try OTLPProtobufDecoder.decode([UInt8](body)).batch
            guard let rs = decoded.resourceSpans.first, let ss = rs.scopeSpans.first, let span = ss.spans.first else {
                throw StoreError("stored span of trace \(trace.hex) does not decode")
            }
            return .span(StoredSpan(span: span, resource: rs.resource, scope: ss.scope, receivedAtUnixNano: UInt64(bitPattern: row["received_at"])))
        }
    }

    public func commit(_ commit: FoldCommit) throws {
        let now = Int64(WallClock.nowUnixNano())
        try pool.write { db in
            let insertSpan = try db.cachedStatement(sql: "INSERT OR IGNORE INTO spans(trace_id, span_id, seq, received_at, body) VALUES (?, ?, ?, ?, ?)")
            for s in commit.newSpans {
                let body = OTLPProtobufEncoder.encode(SpanBatch(resourceSpans: [
                    ResourceSpans(resource: s.resource, scopeSpans: [ScopeSpans(scope: s.scope, spans: [s.span])])
                ]))
                try insertSpan.execute(arguments: [Self.blob(s.span.traceID), Self.blob(s.span.spanID), nextSeq, Int64(bitPattern: s.receivedAtUnixNano), Data(body)])
                nextSeq += 1
            }
            let insertUpdate = try db.cachedStatement(sql: "INSERT INTO api_updates(trace_id, seq, body) VALUES (?, ?, ?)")
            for (trace, update) in commit.newUpdates {
                try insertUpdate.execute(arguments: [Self.blob(trace), nextSeq, MetadataUpdateCoding.encode(update)])
                nextSeq += 1
            }
            let upsertTrace = try db.cachedStatement(sql: """
                INSERT INTO traces(trace_id, revision, changed_at, start_time, record, name, user_id, session_id, version, release, environment, tags, public, entries)
                VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(trace_id) DO UPDATE SET revision = revision + 1, changed_at = excluded.changed_at,
                  start_time = excluded.start_time, record = excluded.record, name = excluded.name, user_id = excluded.user_id,
                  session_id = excluded.session_id, version = excluded.version, release = excluded.release,
                  environment = excluded.environment, tags = excluded.tags, public = excluded.public, entries = excluded.entries
                """)
            for t in commit.traces {
                let r = t.record
                try upsertTrace.execute(arguments: [
                    Self.blob(t.traceID), now, Int64(bitPattern: t.startUnixNano), JSONWriter.serialize(.object(r)),
                    r["name"]?.stringValue, r["userId"]?.stringValue, r["sessionId"]?.stringValue, r["version"]?.stringValue,
                    r["release"]?.stringValue, r["environment"]?.stringValue, JSONWriter.serialize(r["tags"] ?? .array([])),
                    r["public"] == .bool(true), JSONWriter.serialize(t.allEntries ?? .array([])),
                ])
            }
            let upsertObservation = try db.cachedStatement(sql: """
                INSERT INTO observations(trace_id, span_id, revision, start_time, record, type, name, level, version, parent_id, environment)
                VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(trace_id, span_id) DO UPDATE SET revision = revision + 1, start_time = excluded.start_time,
                  record = excluded.record, type = excluded.type, name = excluded.name, level = excluded.level,
                  version = excluded.version, parent_id = excluded.parent_id, environment = excluded.environment
                """)
            for o in commit.observations {
                guard let spanID = o.spanID else { continue }
                let r = o.record
                try upsertObservation.execute(arguments: [
                    Self.blob(o.traceID), Self.blob(spanID), Int64(bitPattern: o.startUnixNano), JSONWriter.serialize(.object(r)),
                    r["type"]?.stringValue, r["name"]?.stringValue, r["level"]?.stringValue, r["version"]?.stringValue,
                    r["parentObservationId"]?.stringValue, r["environment"]?.stringValue,
                ])
            }
        }
    }

    /// Deletes traces whose first span started before `cutoff`, with their
    /// observations and spans (SPEC §8.3). Returns how many traces went.
    @discardableResult
    public func deleteTraces(startedBefore cutoff: UInt64) throws -> Int {
        try pool.write { db in
            let args: StatementArguments = [Int64(bitPattern: cutoff)]
            let doomed = "SELECT trace_id FROM traces WHERE start_time < ?"
            try db.execute(sql: "DELETE FROM spans WHERE trace_id IN (\(doomed))", arguments: args)
            try db.execute(sql: "DELETE FROM api_updates WHERE trace_id IN (\(doomed))", arguments: args)
            try db.execute(sql: "DELETE FROM observations WHERE trace_id IN (\(doomed))", arguments: args)
            try db.execute(sql: "DELETE FROM traces WHERE start_time < ?", arguments: args)
            return db.changesCount
        }
    }

    public func sync() throws {
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(FULL)") }
    }

    // MARK: reading records

    /// Every metadata entry of a trace, as JSON text.
    public func traceEntries(_ id: TraceID) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT entries FROM traces WHERE trace_id = ?", arguments: [Self.blob(id)]) }
    }

    /// The stored record of a trace, as JSON text.
    public func traceRecord(_ id: TraceID) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT record FROM traces WHERE trace_id = ?", arguments: [Self.blob(id)]) }
    }

    public func observationRecords(of trace: TraceID) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT record FROM observations WHERE trace_id = ? ORDER BY start_time, span_id", arguments: [Self.blob(trace)])
        }
    }

    public func counts() throws -> (spans: Int, traces: Int, observations: Int) {
        try pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM spans") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM traces") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM observations") ?? 0)
        }
    }

    // MARK: export bookkeeping (SPEC §6.2)

    public struct PendingRecord: Sendable {
        public var recordType: String
        public var id: String
        public var revision: Int64
        public var record: String
    }

    public struct PendingTrace: Sendable {
        public var traceID: Data
        public var trace: PendingRecord
        public var observations: [(spanID: Data, record: PendingRecord)]
    }

    /// Traces with unexported revisions that have not changed since
    /// `idleSince` (all of them when nil), oldest change first.
    public func unexported(idleSince: UInt64?, limit: Int) throws -> [PendingTrace] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT trace_id, revision, record FROM traces
                    WHERE revision > exported_revision AND changed_at <= ? ORDER BY changed_at LIMIT ?
                    """,
                arguments: [idleSince.map { Int64(bitPattern: $0) } ?? Int64.max, limit]
            )
            let obs = try db.cachedStatement(sql: "SELECT span_id, revision, record FROM observations WHERE trace_id = ? AND revision > exported_revision ORDER BY start_time, span_id")
            return try rows.map { row in
                let traceID: Data = row["trace_id"]
                let observations = try Row.fetchAll(obs, arguments: [traceID]).map { o -> (spanID: Data, record: PendingRecord) in
                    let spanID: Data = o["span_id"]
                    return (spanID, PendingRecord(recordType: "observation", id: HexCoding.encode(bytes: spanID), revision: o["revision"], record: o["record"]))
                }
                return PendingTrace(
                    traceID: traceID,
                    trace: PendingRecord(recordType: "trace", id: HexCoding.encode(bytes: traceID), revision: row["revision"], record: row["record"]),
                    observations: observations
                )
            }
        }
    }

    /// The active export file and its committed length, if any.
    public func exportPosition() throws -> (file: String, length: Int)? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT file, length FROM export_position WHERE id = 1").map { ($0["file"], $0["length"]) }
        }
    }

    /// Marks revisions exported and records where the export file now ends,
    /// in one transaction: lines past that point after a crash are not
    /// covered by marks and are cut off at the next start.
    public func markExported(_ traces: [PendingTrace], file: String, length: Int) throws {
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO export_position(id, file, length) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET file = excluded.file, length = excluded.length",
                arguments: [file, length]
            )
            let t = try db.cachedStatement(sql: "UPDATE traces SET exported_revision = MAX(exported_revision, ?) WHERE trace_id = ?")
            let o = try db.cachedStatement(sql: "UPDATE observations SET exported_revision = MAX(exported_revision, ?) WHERE trace_id = ? AND span_id = ?")
            for p in traces {
                try t.execute(arguments: [p.trace.revision, p.traceID])
                for obs in p.observations { try o.execute(arguments: [obs.record.revision, p.traceID, obs.spanID]) }
            }
        }
    }
}

public struct StoreError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A metadata update as stored JSON.
enum MetadataUpdateCoding {
    static func encode(_ u: MetadataUpdate) -> String {
        JSONWriter.serialize(.object([
            "id": .string(u.id), "scope": .string(u.scope.rawValue), "target": u.target.map { .string($0.hex) } ?? .null,
            "kind": .string(u.kind), "values": .object(u.values),
            "time": .string(String(u.order.time)), "spanId": .string(String(u.order.spanID)), "position": .int(Int64(u.order.position)),
        ]))
    }

    static func decode(_ text: String) -> MetadataUpdate? {
        guard let v = try? JSONParser.parse(text), let id = v["id"]?.stringValue,
            let scope = v["scope"]?.stringValue.flatMap(MetadataScope.init(wire:)), let kind = v["kind"]?.stringValue,
            let values = v["values"]?.objectValue, let time = v["time"]?.stringValue.flatMap({ UInt64($0) }),
            let span = v["spanId"]?.stringValue.flatMap({ UInt64($0) }), case .int(let position)? = v["position"]
        else { return nil }
        return MetadataUpdate(
            id: id, scope: scope, target: v["target"]?.stringValue.flatMap(SpanID.init(hex:)), kind: kind, values: values,
            order: OrderKey(time: time, spanID: span, position: Int(position))
        )
    }
}
