import Foundation
import GRDB
import GRDBSQLite
import TracefoldFold
import TracefoldModel

/// The embedded store (SPEC §8.1): SQLite in WAL mode through GRDB.
///
/// `observations` holds, per distinct span, its one-span OTLP protobuf
/// message (`body`, the source of truth, which the `spans` view shows) and
/// the stored form of its observation record (`ObservationRecord`, a blob in
/// the `record` column, rendered when read; older rows keep JSON text
/// there); `traces` holds the rendered trace records; each row has a
/// revision counter, and the big columns are compressed (`RowCompression`). A trace
/// also keeps the revision the JSONL exporter last wrote, and an observation
/// the revision its trace had when it was last written (unexported while
/// that is the greater).
public final class SQLiteStore: RecordStore, @unchecked Sendable {
    public let path: String
    let pool: DatabasePool
    public var dialect: SQLDialect { .sqlite }
    public var location: String { "sqlite \(path)" }
    public let rowCompression = RowCompression()
    public let traceEpochs = TraceEpochs()
    /// Each trace row's epoch by trace id: `traces` has no key by id.
    public let traceKeys = TraceKeyIndex()
    /// One process writes an SQLite file, so what it committed is what the
    /// file holds.
    public let exportCache: ExportCache?
    /// Where statements' CPU time goes, when profiling (`SQLStatementProfile`).
    let statementProfile: SQLStatementProfile?

    /// The page size of a new database file.
    public static let pageSize = 16_384

    /// The writer connection's page cache, in KiB (readers keep SQLite's
    /// default, 2,000 KiB). New traces go into the `traces` table's key
    /// index at random places, and each commit also updates the other
    /// indexes; with the default cache (125 of these 16 KiB pages) a store
    /// of a million spans no longer held the pages a commit touches, so
    /// the writer spilled dirty pages and read clean ones back (cache
    /// spills went from 1.06 µs a span to 0, preads from 1.39 to 0.79 in
    /// the profile of the full store). In the same-run A/B of spans per
    /// CPU-second on a store of 1.3M spans, 1.00x, 1.23x and 1.12x. The cache only
    /// grows as far as the pages the writer touches.
    public static let writerCacheKiB = 16_384

    /// `exportCacheBudget`: the bytes of records kept for the exporter
    /// (`ExportCache`); nil keeps none, and the exporter reads every row.
    /// `statementProfile`: where to sum the CPU time of each statement and
    /// of each transaction's begin and commit (a diagnostic; see
    /// `SQLStatementProfile`).
    public init(path: String, exportCacheBudget: Int? = ExportCache.defaultBudget, statementProfile: SQLStatementProfile? = nil) throws {
        self.path = path
        self.statementProfile = statementProfile
        exportCache = exportCacheBudget.map { ExportCache(budget: $0) }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // Commits are made durable by sync() (a FULL checkpoint) before the
            // intake log forgets them, so a commit need not fsync on its own.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Takes effect when the file is created (a file in WAL mode keeps
            // the size it has). A 1.3 KB record (observations were stored
            // as JSON then) filled two rows of a 4 KiB page and wasted the
            // rest; 16 KiB pages hold ten. On the bench load: 3,357 -> 2,757
            // bytes on disk per span, and fewer pages through the WAL.
            try db.execute(sql: "PRAGMA page_size = \(Self.pageSize)")
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA cache_size = -\(Self.writerCacheKiB)")
                // The writer's temporary files in memory: SQLite made, wrote
                // and unlinked a new file in /var/tmp ten times a round of
                // the pipeline bench (2.5 MB through pwrite), for its
                // statement journals past 64 KiB. Readers keep files: a
                // query's sort of many rows stays out of the resident set.
                try db.execute(sql: "PRAGMA temp_store = MEMORY")
            }
        }
        pool = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(pool)
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
        m.registerMigration("v6-shared-schema") { db in
            // Per-trace sequence numbers (what a writer has folded), the
            // columns the summary aggregates, and one export position per
            // exporter directory: the schema PostgreSQL shares.
            try db.execute(sql: """
                ALTER TABLE traces ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE traces ADD COLUMN latency REAL;
                ALTER TABLE traces ADD COLUMN total_cost REAL;
                UPDATE traces SET last_seq = MAX(
                    COALESCE((SELECT MAX(seq) FROM spans s WHERE s.trace_id = traces.trace_id), 0),
                    COALESCE((SELECT MAX(seq) FROM api_updates u WHERE u.trace_id = traces.trace_id), 0)),
                  latency = json_extract(record, '$.latency'), total_cost = json_extract(record, '$.totalCost');
                ALTER TABLE observations ADD COLUMN model TEXT;
                ALTER TABLE observations ADD COLUMN latency REAL;
                ALTER TABLE observations ADD COLUMN input_tokens REAL;
                ALTER TABLE observations ADD COLUMN output_tokens REAL;
                ALTER TABLE observations ADD COLUMN total_tokens REAL;
                ALTER TABLE observations ADD COLUMN cost REAL;
                UPDATE observations SET model = json_extract(record, '$.model'), latency = json_extract(record, '$.latency'),
                  input_tokens = json_extract(record, '$.usageDetails.input'), output_tokens = json_extract(record, '$.usageDetails.output'),
                  total_tokens = json_extract(record, '$.usageDetails.total'), cost = json_extract(record, '$.costDetails.total');
                CREATE TABLE export_positions (exporter TEXT PRIMARY KEY, file TEXT NOT NULL, length INTEGER NOT NULL);
                INSERT INTO export_positions SELECT rtrim(rtrim(file, replace(file, '/', '')), '/'), file, length FROM export_position;
                DROP TABLE export_position;
                ALTER TABLE export_positions RENAME TO export_position;
                """)
        }
        m.registerMigration("v7-trace-metadata") { db in
            // Top-level trace metadata as (key, text) rows for indexed filters.
            try db.execute(sql: """
                CREATE TABLE trace_metadata (trace_id BLOB NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (trace_id, key)) WITHOUT ROWID;
                CREATE INDEX trace_metadata_by_value ON trace_metadata(key, value);
                INSERT INTO trace_metadata SELECT t.trace_id, j.key,
                  CASE j.type WHEN 'null' THEN NULL WHEN 'text' THEN j.value WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                    ELSE CAST(j.value AS TEXT) END
                FROM traces t, json_each(t.record, '$.metadata') j;
                """)
        }
        m.registerMigration("v8-trace-metadata-start") { db in
            // The trace's start time in each metadata row, indexed after
            // (key, value): one value's traces come out of the index in
            // timestamp order, so a filtered page reads no other trace rows.
            try db.execute(sql: """
                ALTER TABLE trace_metadata ADD COLUMN start_time INTEGER NOT NULL DEFAULT 0;
                UPDATE trace_metadata SET start_time = (SELECT t.start_time FROM traces t WHERE t.trace_id = trace_metadata.trace_id);
                DROP INDEX trace_metadata_by_value;
                CREATE INDEX trace_metadata_by_value_start ON trace_metadata(key, value, start_time, trace_id);
                """)
        }
        m.registerMigration("v9-rowid-tables-trace-export-state") { db in
            // Rowid tables with the unique key as an index. A WITHOUT ROWID
            // row lives in an index b-tree, whose rows keep at most about
            // 1,000 bytes of a 4 KiB page: every observation record (1.3 KB
            // on the bench load) took a fresh overflow page of its own, four
            // times the bytes through the WAL, and so did any span over
            // about 950 bytes. The big column goes last, so that reading the
            // filter columns never walks its overflow chain.
            //
            // An observation's export state moves to its trace: it keeps the
            // revision its trace got in the commit that last wrote it, and is
            // unexported while that is above the trace's exported_revision.
            // The exporter then rewrites one trace row, not every
            // observation row again. Unexported observations take their
            // trace's current revision (their trace is unexported too).
            try db.execute(sql: """
                CREATE TABLE observations_v9 (
                  trace_id BLOB NOT NULL, span_id BLOB NOT NULL, revision INTEGER NOT NULL,
                  trace_revision INTEGER NOT NULL DEFAULT 0, start_time INTEGER NOT NULL,
                  type TEXT, name TEXT, level TEXT, version TEXT, parent_id TEXT, environment TEXT, model TEXT,
                  latency REAL, input_tokens REAL, output_tokens REAL, total_tokens REAL, cost REAL, record TEXT NOT NULL);
                INSERT INTO observations_v9 (trace_id, span_id, revision, trace_revision, start_time, type, name, level, version,
                  parent_id, environment, model, latency, input_tokens, output_tokens, total_tokens, cost, record)
                SELECT o.trace_id, o.span_id, o.revision,
                  CASE WHEN o.revision > o.exported_revision THEN COALESCE((SELECT t.revision FROM traces t WHERE t.trace_id = o.trace_id), 0) ELSE 0 END,
                  o.start_time, o.type, o.name, o.level, o.version,
                  o.parent_id, o.environment, o.model, o.latency, o.input_tokens, o.output_tokens, o.total_tokens, o.cost, o.record
                FROM observations o;
                DROP TABLE observations;
                ALTER TABLE observations_v9 RENAME TO observations;
                CREATE UNIQUE INDEX observations_by_trace ON observations(trace_id, span_id);
                CREATE UNIQUE INDEX observations_by_span ON observations(span_id, trace_id);
                CREATE INDEX observations_by_start ON observations(start_time);
                CREATE TABLE spans_v9 (
                  trace_id BLOB NOT NULL, span_id BLOB NOT NULL, seq INTEGER NOT NULL, received_at INTEGER NOT NULL, body BLOB NOT NULL);
                INSERT INTO spans_v9 SELECT trace_id, span_id, seq, received_at, body FROM spans;
                DROP TABLE spans;
                ALTER TABLE spans_v9 RENAME TO spans;
                CREATE UNIQUE INDEX spans_by_id ON spans(trace_id, span_id);
                CREATE UNIQUE INDEX spans_by_trace_seq ON spans(trace_id, seq);
                """)
        }
        m.registerMigration("v10-scores-tombstones") { db in
            try db.execute(sql: Self.scoresSchema)
        }
        m.registerMigration("v11-models") { db in
            // Model definitions made through POST /api/public/models.
            try db.execute(sql: "CREATE TABLE models (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, record TEXT NOT NULL)")
        }
        m.registerMigration("v12-row-dictionaries") { db in
            // The dictionaries compressed rows were compressed against
            // (`RowCompression`).
            try db.execute(sql: "CREATE TABLE row_dictionaries (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)")
        }
        m.registerMigration("v13-spans-in-observations") { db in
            // A span and its observation are one to one and written in the
            // same commit: the span's bytes move into its observation's row
            // (`seq`, `received_at`, `body`), and `spans` becomes a view of
            // them. That drops a second row, keyed again by trace and span
            // id, and its two indexes: with compressed rows those keys and
            // indexes were a third of the file. Reads by trace go through
            // `observations_by_trace`; the history of a trace is sorted by
            // seq when read (one process writes an SQLite file, so a read
            // always replays a trace from its start).
            try db.execute(sql: """
                ALTER TABLE observations ADD COLUMN seq INTEGER;
                ALTER TABLE observations ADD COLUMN received_at INTEGER;
                ALTER TABLE observations ADD COLUMN body BLOB;
                UPDATE observations SET seq = s.seq, received_at = s.received_at, body = s.body
                  FROM spans s WHERE s.trace_id = observations.trace_id AND s.span_id = observations.span_id;
                DROP TABLE spans;
                CREATE VIEW spans AS SELECT trace_id, span_id, seq, received_at, body FROM observations WHERE body IS NOT NULL;
                """)
        }
        m.registerMigration("v14-trace-generation") { db in
            // A row's generation (`StoredTrace`): 0 for the rows made before.
            try db.execute(sql: "ALTER TABLE traces ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
        }
        m.registerMigration("v15-trace-epochs") { db in
            // A trace's rows keyed by its epoch first (`TraceEpochs`): ids
            // are random, and b-trees keyed by them first took a commit's
            // rows at as many random places. Rows made before are in epoch 0.
            try db.execute(sql: """
                ALTER TABLE traces ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE observations ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
                DROP INDEX observations_by_span;
                CREATE INDEX observations_by_epoch_span ON observations(epoch, span_id);
                DROP INDEX observations_by_trace;
                CREATE UNIQUE INDEX observations_by_trace ON observations(epoch, trace_id, span_id);
                CREATE TABLE trace_metadata_v15 (
                  epoch INTEGER NOT NULL DEFAULT 0, trace_id BLOB NOT NULL, key TEXT NOT NULL, value TEXT, start_time INTEGER NOT NULL DEFAULT 0,
                  PRIMARY KEY (epoch, trace_id, key)) WITHOUT ROWID;
                INSERT INTO trace_metadata_v15 (epoch, trace_id, key, value, start_time) SELECT 0, trace_id, key, value, start_time FROM trace_metadata;
                DROP TABLE trace_metadata;
                ALTER TABLE trace_metadata_v15 RENAME TO trace_metadata;
                CREATE INDEX trace_metadata_by_value_start ON trace_metadata(key, value, start_time, trace_id);
                """)
        }
        m.registerMigration("v16-trace-keys") { db in
            // Trace rows keyed by (epoch, trace_id), without a key by id
            // (`TraceKeyIndex`), and an `id` that only goes up, for the
            // index to find the rows made since it last read. The table is
            // made again: SQLite cannot drop a primary key.
            let columns = """
                trace_id, revision, exported_revision, changed_at, start_time, record, name, user_id, session_id, version, release,
                environment, tags, public, entries, last_seq, latency, total_cost, generation, epoch
                """
            try db.execute(sql: """
                CREATE TABLE traces_v16 (
                  id INTEGER PRIMARY KEY AUTOINCREMENT,
                  trace_id BLOB NOT NULL, revision INTEGER NOT NULL, exported_revision INTEGER NOT NULL DEFAULT 0,
                  changed_at INTEGER NOT NULL, start_time INTEGER NOT NULL, record TEXT NOT NULL, name TEXT, user_id TEXT, session_id TEXT,
                  version TEXT, release TEXT, environment TEXT, tags TEXT NOT NULL DEFAULT '[]', public INTEGER NOT NULL DEFAULT 0,
                  entries TEXT NOT NULL DEFAULT '[]', last_seq INTEGER NOT NULL DEFAULT 0, latency REAL, total_cost REAL,
                  generation INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 0);
                INSERT INTO traces_v16 (\(columns)) SELECT \(columns) FROM traces ORDER BY epoch, trace_id;
                DROP TABLE traces;
                ALTER TABLE traces_v16 RENAME TO traces;
                CREATE UNIQUE INDEX traces_by_key ON traces(epoch, trace_id);
                CREATE INDEX traces_by_start ON traces(start_time);
                CREATE INDEX traces_unexported ON traces(changed_at) WHERE revision > exported_revision;
                CREATE INDEX traces_by_user ON traces(user_id, start_time);
                CREATE INDEX traces_by_session ON traces(session_id, start_time);
                CREATE INDEX traces_by_name ON traces(name, start_time);
                """)
        }
        m.registerMigration("v17-service-metadata") { db in
            // A trace's `resourceAttributes` and `scope` (`ServiceMetadata`)
            // as one reference to the pair, which the traces of a service
            // share, instead of two `trace_metadata` rows a trace; rows
            // made before become references.
            try db.execute(sql: """
                CREATE TABLE service_metadata (id INTEGER PRIMARY KEY, resource_attributes TEXT, scope TEXT);
                CREATE INDEX service_metadata_by_value ON service_metadata(resource_attributes, scope);
                ALTER TABLE traces ADD COLUMN service_metadata INTEGER;
                CREATE INDEX traces_by_service ON traces(service_metadata, start_time);
                \(ServiceMetadata.migration(.sqlite))
                """)
        }
        return m
    }

    /// Scores (SPEC §7.9) and the tombstones of deleted records; the record
    /// column goes last, as in v9. PostgreSQL's schema is the same.
    static let scoresSchema = """
        CREATE TABLE scores (
          id TEXT PRIMARY KEY, revision INTEGER NOT NULL, exported_revision INTEGER NOT NULL DEFAULT 0,
          changed_at INTEGER NOT NULL, created_at INTEGER NOT NULL, timestamp INTEGER NOT NULL,
          trace_id TEXT, observation_id TEXT, session_id TEXT, dataset_run_id TEXT, name TEXT NOT NULL, data_type TEXT NOT NULL,
          value REAL, string_value TEXT, source TEXT NOT NULL, environment TEXT NOT NULL, config_id TEXT, queue_id TEXT,
          record TEXT NOT NULL);
        CREATE INDEX scores_by_time ON scores(timestamp, id);
        CREATE INDEX scores_by_trace ON scores(trace_id, timestamp);
        CREATE INDEX scores_by_session ON scores(session_id, timestamp);
        CREATE INDEX scores_unexported ON scores(changed_at) WHERE revision > exported_revision;
        CREATE TABLE tombstones (
          record_type TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL, exported_revision INTEGER NOT NULL DEFAULT 0,
          changed_at INTEGER NOT NULL, PRIMARY KEY (record_type, id));
        CREATE INDEX tombstones_unexported ON tombstones(changed_at) WHERE revision > exported_revision;
        """

    /// A session on one of the pool's connections.
    private func session(_ db: Database) -> GRDBSession { GRDBSession(db: db, store: self) }

    /// A timer of `statement` when profiling (`TransactionTimer`).
    private func timer(_ statement: String) -> TransactionTimer? { statementProfile.map { TransactionTimer($0, statement) } }

    public func read<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try pool.read { db in try body(session(db)) }
    }

    public func write<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        let timer = timer(Self.transactionStatement)
        defer { timer?.finish() }
        return try pool.write { db in try TransactionTimer.inside(timer) { try body(session(db)) } }
    }

    /// What `statementProfile` names a write transaction's own work: its
    /// BEGIN and COMMIT, and the WAL pages the commit writes.
    static let transactionStatement = "BEGIN ... COMMIT"

    /// The one transaction with `synchronous = FULL`, which in WAL mode
    /// fsyncs the log at its commit; the fold's commits stay NORMAL (the
    /// intake log covers them until `sync`).
    public func durableWrite<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        let timer = timer(Self.transactionStatement)
        defer { timer?.finish() }
        return try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            defer { try? db.execute(sql: "PRAGMA synchronous = NORMAL") }
            var result: T?
            try db.inTransaction {
                result = try TransactionTimer.inside(timer) { try body(session(db)) }
                return .commit
            }
            return result!
        }
    }

    /// One process writes an SQLite file, one transaction at a time.
    public func lock(_ traces: [TraceID], in session: any SQLSession) throws {}

    public func sync() throws {
        let checkpoint = "PRAGMA wal_checkpoint(FULL)"
        let timer = timer(checkpoint)
        defer { timer?.finish() }
        try pool.writeWithoutTransaction { db in try db.execute(sql: checkpoint) }
    }

    public func close() { try? pool.close() }
}

/// A GRDB connection as a `SQLSession`; statements are prepared once per
/// connection and reused. Two words, as PostgreSQL's session: reaching the
/// store's parts through it keeps the session within an existential's
/// inline buffer (`any SQLSession`), not boxed on the heap.
struct GRDBSession: SQLSession {
    let db: Database
    let store: SQLiteStore
    var rowCompression: RowCompression { store.rowCompression }
    var traceKeys: TraceKeyIndex? { store.traceKeys }
    var dialect: SQLDialect { .sqlite }

    func execute(_ sql: String, _ args: [SQLValue]) throws {
        let handle = try bound(sql, args)
        defer { sqlite3_reset(handle) }
        var stepping = 0.0
        defer { store.statementProfile?.record(sql, seconds: stepping) }
        var code = step(handle, timing: &stepping)
        while code == SQLITE_ROW { code = step(handle, timing: &stepping) }
        guard code == SQLITE_DONE else { throw error(code, sql) }
    }

    /// `sqlite3_step`, its CPU time added to `seconds` when profiling
    /// (`SQLStatementProfile`).
    @inline(__always)
    private func step(_ handle: OpaquePointer, timing seconds: inout Double) -> Int32 {
        guard store.statementProfile != nil else { return sqlite3_step(handle) }
        let started = SQLStatementProfile.threadCPUSeconds()
        defer { seconds += SQLStatementProfile.threadCPUSeconds() - started }
        return sqlite3_step(handle)
    }

    /// The cached statement of `sql`, reset, with `args` bound through
    /// SQLite's C API as the insert binds (GRDB's `StatementArguments`
    /// boxed each value). A cached statement keeps its last bindings:
    /// every one is bound again, or the call is refused, as GRDB refused
    /// it. The caller resets it after use.
    private func bound(_ sql: String, _ args: [SQLValue]) throws -> OpaquePointer {
        let handle = try db.cachedStatement(sql: sql).sqliteStatement
        sqlite3_reset(handle)
        guard sqlite3_bind_parameter_count(handle) == Int32(args.count) else {
            throw DatabaseError(resultCode: .SQLITE_RANGE, message: "\(args.count) arguments for \(sqlite3_bind_parameter_count(handle)) parameters", sql: sql)
        }
        var writer = SQLRowWriter(binding: handle)
        for value in args { writer.value(value) }
        if let code = writer.failure {
            sqlite3_reset(handle)
            throw error(code, sql)
        }
        return handle
    }

    /// Steps the statement and reads each column by its type: GRDB's `Row`
    /// copied every row into an object of its own, and then into a
    /// dictionary.
    func rows(_ sql: String, _ args: [SQLValue]) throws -> [SQLRow] {
        let handle = try bound(sql, args)
        defer { sqlite3_reset(handle) }
        let count = sqlite3_column_count(handle)
        let names = (0..<count).map { String(cString: sqlite3_column_name(handle, $0)) }
        var rows = [SQLRow]()
        // The steps only, not the rows' reading.
        var stepping = 0.0
        defer { store.statementProfile?.record(sql, seconds: stepping) }
        while true {
            let code = step(handle, timing: &stepping)
            if code == SQLITE_DONE { return rows }
            guard code == SQLITE_ROW else { throw error(code, sql) }
            var values = [SQLValue]()
            values.reserveCapacity(Int(count))
            for column in 0..<count {
                switch sqlite3_column_type(handle, column) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(handle, column)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(handle, column)))
                case SQLITE_TEXT:
                    let text = sqlite3_column_text(handle, column)
                    let length = Int(sqlite3_column_bytes(handle, column))
                    values.append(.text(text.map { String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""))
                case SQLITE_BLOB:
                    let bytes = sqlite3_column_blob(handle, column)
                    let length = Int(sqlite3_column_bytes(handle, column))
                    values.append(.blob(bytes.map { Data(bytes: $0, count: length) } ?? Data()))
                default: values.append(.null)
                }
            }
            rows.append(SQLRow(names: names, values: values))
        }
    }

    func insert(into table: String, _ columns: [(String, SQLColumnType)], rows: [[SQLValue]], onConflict: String) throws {
        try insert(into: table, columns, count: rows.count, onConflict: onConflict) { i, w in
            for value in rows[i] { w.value(value) }
        }
    }

    /// Binds each row's values straight to the prepared statement with
    /// SQLite's C API, as `row` gives them: GRDB's `StatementArguments`
    /// boxes every value in an existential and an array first, about 3% of
    /// the fold's CPU on the bench load. The statement is reset after use,
    /// as GRDB expects of a cached statement.
    func insert(
        into table: String, _ columns: [(String, SQLColumnType)], count: Int, onConflict: String, row: (Int, inout SQLRowWriter) throws -> Void
    ) throws {
        guard count > 0 else { return }
        let sql = "INSERT INTO \(table)(\(columns.map(\.0).joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", "))) \(onConflict)"
        let handle = try db.cachedStatement(sql: sql).sqliteStatement
        defer { sqlite3_reset(handle) }
        for i in 0..<count {
            sqlite3_reset(handle)
            var writer = SQLRowWriter(binding: handle)
            try row(i, &writer)
            if let code = writer.failure { throw error(code, sql) }
            // Each row is a run of its own.
            var stepping = 0.0
            let code = step(handle, timing: &stepping)
            store.statementProfile?.record(sql, seconds: stepping)
            guard code == SQLITE_DONE else { throw error(code, sql) }
        }
    }

    /// SQLite copies the bound bytes before the bind call returns.
    static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    private func error(_ code: Int32, _ sql: String) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: sql)
    }

}

/// One row's values, in its columns' order (`SQLSession.insert(into:_:count:onConflict:row:)`):
/// bound straight to an SQLite statement, or collected as `SQLValue`s for
/// a session that takes whole rows.
public struct SQLRowWriter {
    /// The statement bound to; nil when collecting.
    private let statement: OpaquePointer?
    /// The collected values (collecting only).
    private(set) var values: [SQLValue] = []
    /// The next column, from 1 as SQLite counts.
    private var column: Int32 = 1
    /// The result code of the first bind that failed.
    private(set) var failure: Int32?

    init(collecting columns: Int) {
        statement = nil
        values.reserveCapacity(columns)
    }

    init(binding statement: OpaquePointer) { self.statement = statement }

    private mutating func next(_ value: @autoclosure () -> SQLValue, _ bind: (OpaquePointer, Int32) -> Int32) {
        if let statement {
            let code = bind(statement, column)
            if code != SQLITE_OK, failure == nil { failure = code }
        } else {
            values.append(value())
        }
        column += 1
    }

    public mutating func null() { next(.null) { sqlite3_bind_null($0, $1) } }
    public mutating func int(_ v: Int64) { next(.int(v)) { sqlite3_bind_int64($0, $1, v) } }
    public mutating func double(_ v: Double) { next(.double(v)) { sqlite3_bind_double($0, $1, v) } }
    public mutating func double(_ v: Double?) { if let v { double(v) } else { null() } }

    public mutating func text(_ v: String?) {
        guard var v else { return null() }
        next(.text(v)) { s, i in
            v.withUTF8 { u in
                // A nil base address would bind NULL: empty text binds as empty.
                u.baseAddress.map { sqlite3_bind_text(s, i, $0, Int32(u.count), GRDBSession.transient) } ?? sqlite3_bind_text(s, i, "", 0, GRDBSession.transient)
            }
        }
    }

    /// SQLite copies `bytes` before this returns.
    public mutating func blob(_ bytes: UnsafeRawBufferPointer) {
        next(.blob(Data(bytes))) { s, i in
            bytes.baseAddress.map { sqlite3_bind_blob(s, i, $0, Int32(bytes.count), GRDBSession.transient) } ?? sqlite3_bind_zeroblob(s, i, 0)
        }
    }

    /// A span id as its hex text, bound without a String (`SpanID.withHexUTF8`).
    public mutating func hexText(_ id: SpanID?) {
        guard let id else { return null() }
        next(.text(id.hex)) { s, i in
            id.withHexUTF8 { sqlite3_bind_text(s, i, $0.baseAddress, 16, GRDBSession.transient) }
        }
    }

    public mutating func value(_ v: SQLValue) {
        switch v {
        case .null: null()
        case .int(let i): int(i)
        case .double(let d): double(d)
        case .text(let t): text(t)
        case .blob(let b): b.withUnsafeBytes { blob($0) }
        }
    }

    public mutating func blob(_ id: TraceID) { withUnsafeBytes(of: (id.high.bigEndian, id.low.bigEndian)) { blob($0) } }
    public mutating func blob(_ id: SpanID) { withUnsafeBytes(of: id.value.bigEndian) { blob($0) } }
}
