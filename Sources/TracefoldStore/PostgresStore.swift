import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import TracefoldFold
import TracefoldModel

/// The shared store (SPEC §8.2): PostgreSQL through postgres-nio, so that
/// several tracefold processes can fold into one database.
///
/// The fold, the exporter and the query API call the store from their own
/// threads and expect an answer, so each call leases a connection from a
/// small pool and waits for postgres-nio's async answer there. Writers of a
/// trace serialise on a transaction-scoped advisory lock keyed by the trace
/// id; inside it the fold catches up with what other processes stored
/// (`traces.last_seq`) before it adds its own spans.
public final class PostgresStore: RecordStore, @unchecked Sendable {
    public let configuration: PostgresConnection.Configuration
    public var dialect: SQLDialect { .postgres }
    public let location: String
    public let rowCompression = RowCompression()
    public let traceEpochs = TraceEpochs()
    let logger: Logger
    let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    private let poolLock = NSLock()
    private var idle: [PostgresConnection] = []
    private var nextID = 0

    /// The longest wait for one round trip (a batch of statements, or a
    /// connect) before the connection is given up.
    public let requestTimeout: Duration

    /// The records lately committed, for the exporter (`ExportCache`): it
    /// reads from the rows only what the cache does not hold exactly, such
    /// as what other processes wrote.
    public let exportCache: ExportCache?

    /// `url` is `postgres://user[:password]@host[:port]/database`.
    /// `exportCacheBudget`: the bytes of records kept for the exporter; nil
    /// keeps none, and the exporter reads every row.
    public init(
        url: String, requestTimeout: Duration = .seconds(30), exportCacheBudget: Int? = ExportCache.defaultBudget, logger: Logger
    ) throws {
        self.requestTimeout = requestTimeout
        exportCache = exportCacheBudget.map { ExportCache(budget: $0) }
        guard let c = URLComponents(string: url), c.scheme == "postgres" || c.scheme == "postgresql", let host = c.host, !host.isEmpty else {
            throw StoreError("store.postgres.url must look like postgres://user:password@host:port/database, got \"\(Self.redacted(url))\"")
        }
        let database = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        var config = PostgresConnection.Configuration(
            host: host, port: c.port ?? 5432, username: c.user ?? "postgres", password: c.password,
            database: database.isEmpty ? nil : database, tls: .disable
        )
        config.options.connectTimeout = .seconds(max(1, min(10, requestTimeout.components.seconds)))
        configuration = config
        location = "postgres \(Self.redacted(url))"
        self.logger = logger
        try migrate()
    }

    /// The URL with its password hidden, for logs and errors.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "***"
        return c.string ?? url
    }

    /// Turns a text `record` column of `table` into bytea, once.
    static func textRecordsToBytes(_ table: String) -> String {
        """
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = '\(table)' AND column_name = 'record'
                       AND data_type = 'text') THEN
            ALTER TABLE \(table) ALTER COLUMN record TYPE bytea USING convert_to(record, 'UTF8');
          END IF;
        END $$
        """
    }

    /// Every table of `SQLiteStore`'s schema, with PostgreSQL's types; tags
    /// are jsonb for the tag filter.
    static let schema = [
        "CREATE TABLE IF NOT EXISTS api_updates (trace_id bytea NOT NULL, seq bigint NOT NULL, body text NOT NULL, PRIMARY KEY (trace_id, seq))",
        """
        CREATE TABLE IF NOT EXISTS traces (
          trace_id bytea PRIMARY KEY, revision bigint NOT NULL, exported_revision bigint NOT NULL DEFAULT 0,
          changed_at bigint NOT NULL, start_time bigint NOT NULL, record bytea NOT NULL,
          name text, user_id text, session_id text, version text, release text, environment text,
          tags jsonb NOT NULL DEFAULT '[]', public bigint NOT NULL DEFAULT 0, entries text NOT NULL DEFAULT '[]',
          last_seq bigint NOT NULL DEFAULT 0, latency double precision, total_cost double precision)
        """,
        // A row's generation (`StoredTrace`), as in SQLiteStore's v14 migration.
        "ALTER TABLE traces ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 0",
        "CREATE TABLE IF NOT EXISTS trace_metadata (trace_id bytea NOT NULL, key text NOT NULL, value text, PRIMARY KEY (trace_id, key))",
        // The trace's start time, as in SQLiteStore's v8 migration; a
        // database made before it gets the column and its values once.
        """
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                         WHERE table_schema = current_schema() AND table_name = 'trace_metadata' AND column_name = 'start_time') THEN
            ALTER TABLE trace_metadata ADD COLUMN start_time bigint;
            UPDATE trace_metadata m SET start_time = t.start_time FROM traces t WHERE t.trace_id = m.trace_id;
          END IF;
        END $$
        """,
        // A trace's epoch (`TraceEpochs`), as in SQLiteStore's v15 migration.
        "ALTER TABLE traces ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0",
        "ALTER TABLE trace_metadata ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0",
        "DROP INDEX IF EXISTS trace_metadata_by_value",
        "CREATE INDEX IF NOT EXISTS trace_metadata_by_value_start ON trace_metadata(key, value, start_time, trace_id)",
        // A value belongs to its key: without statistics on the pair the
        // planner multiplies the two selectivities, and on the bench load
        // it expected 355 rows of `tenant = acme-3` where 2,880 matched
        // (2,955 with these), which sent a metadata filter combined with
        // another one to a plan that reads every trace row.
        "CREATE STATISTICS IF NOT EXISTS trace_metadata_key_value (mcv) ON key, value FROM trace_metadata",
        // `ServiceMetadata`, as in SQLiteStore's v17 migration. Looked up
        // by digest: a btree entry holds at most about 2.7 KB of text.
        "CREATE TABLE IF NOT EXISTS service_metadata (id bigserial PRIMARY KEY, resource_attributes text, scope text)",
        "CREATE INDEX IF NOT EXISTS service_metadata_by_digest ON service_metadata(md5(coalesce(resource_attributes, '')), md5(coalesce(scope, '')))",
        "ALTER TABLE traces ADD COLUMN IF NOT EXISTS service_metadata bigint",
        "CREATE INDEX IF NOT EXISTS traces_by_service ON traces(service_metadata, start_time)",
        """
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM trace_metadata WHERE key IN ('resourceAttributes', 'scope')) THEN
            \(ServiceMetadata.migration(.postgres))
          END IF;
        END $$
        """,
        "CREATE INDEX IF NOT EXISTS traces_by_start ON traces(start_time)",
        "CREATE INDEX IF NOT EXISTS traces_unexported ON traces(changed_at) WHERE revision > exported_revision",
        "CREATE INDEX IF NOT EXISTS traces_by_user ON traces(user_id, start_time)",
        "CREATE INDEX IF NOT EXISTS traces_by_session ON traces(session_id, start_time)",
        "CREATE INDEX IF NOT EXISTS traces_by_name ON traces(name, start_time)",
        """
        CREATE TABLE IF NOT EXISTS observations (
          trace_id bytea NOT NULL, span_id bytea NOT NULL, revision bigint NOT NULL, exported_revision bigint NOT NULL DEFAULT 0,
          start_time bigint NOT NULL, record bytea NOT NULL, type text, name text, level text, version text, parent_id text,
          environment text, model text, latency double precision, input_tokens double precision, output_tokens double precision,
          total_tokens double precision, cost double precision, trace_revision bigint,
          PRIMARY KEY (trace_id, span_id))
        """,
        // Export state moved to the trace, as in SQLiteStore's v9 migration;
        // a database made before gets the column and its values once, from
        // exported_revision, which is no longer written.
        """
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                         WHERE table_schema = current_schema() AND table_name = 'observations' AND column_name = 'trace_revision') THEN
            ALTER TABLE observations ADD COLUMN trace_revision bigint;
            UPDATE observations o SET trace_revision = CASE WHEN o.revision > o.exported_revision THEN t.revision ELSE 0 END
            FROM traces t WHERE t.trace_id = o.trace_id;
          END IF;
        END $$
        """,
        // Observation records are stored in `ObservationRecord`'s binary
        // form, and trace records compressed (`RowCompression`); a record
        // written before stays JSON text, now as its UTF-8 bytes (they start
        // with "{", which neither form does).
        textRecordsToBytes("observations"),
        textRecordsToBytes("traces"),
        // A span's bytes live in its observation's row, and `spans` is a
        // view of them, as in SQLiteStore's v13 migration; a database made
        // before moves its spans there once. Processes sharing the store
        // catch up on each other's spans by seq, through an index.
        "ALTER TABLE observations ADD COLUMN IF NOT EXISTS seq bigint, ADD COLUMN IF NOT EXISTS received_at bigint, ADD COLUMN IF NOT EXISTS body bytea",
        """
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_name = 'spans' AND table_type = 'BASE TABLE') THEN
            UPDATE observations o SET seq = s.seq, received_at = s.received_at, body = s.body
              FROM spans s WHERE s.trace_id = o.trace_id AND s.span_id = o.span_id;
            DROP TABLE spans;
          END IF;
        END $$
        """,
        "CREATE OR REPLACE VIEW spans AS SELECT trace_id, span_id, seq, received_at, body FROM observations WHERE body IS NOT NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS observations_by_seq ON observations(trace_id, seq)",
        "CREATE INDEX IF NOT EXISTS observations_by_start ON observations(start_time)",
        // An observation is found by its id within its trace's epoch
        // (`TraceEpochs`), as in SQLiteStore's v15 migration.
        "ALTER TABLE observations ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0",
        "DROP INDEX IF EXISTS observations_by_span",
        "CREATE INDEX IF NOT EXISTS observations_by_epoch_span ON observations(epoch, span_id)",
        "CREATE TABLE IF NOT EXISTS export_position (exporter text PRIMARY KEY, file text NOT NULL, length bigint NOT NULL)",
        // As in SQLiteStore's v12 migration.
        "CREATE TABLE IF NOT EXISTS row_dictionaries (id bigint PRIMARY KEY, bytes bytea NOT NULL)",
        // Scores and tombstones, as in SQLiteStore's v10 migration.
        """
        CREATE TABLE IF NOT EXISTS scores (
          id text PRIMARY KEY, revision bigint NOT NULL, exported_revision bigint NOT NULL DEFAULT 0,
          changed_at bigint NOT NULL, created_at bigint NOT NULL, timestamp bigint NOT NULL,
          trace_id text, observation_id text, session_id text, dataset_run_id text, name text NOT NULL, data_type text NOT NULL,
          value double precision, string_value text, source text NOT NULL, environment text NOT NULL, config_id text, queue_id text,
          record text NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS scores_by_time ON scores(timestamp, id)",
        "CREATE INDEX IF NOT EXISTS scores_by_trace ON scores(trace_id, timestamp)",
        "CREATE INDEX IF NOT EXISTS scores_by_session ON scores(session_id, timestamp)",
        "CREATE INDEX IF NOT EXISTS scores_unexported ON scores(changed_at) WHERE revision > exported_revision",
        """
        CREATE TABLE IF NOT EXISTS tombstones (
          record_type text NOT NULL, id text NOT NULL, revision bigint NOT NULL, exported_revision bigint NOT NULL DEFAULT 0,
          changed_at bigint NOT NULL, PRIMARY KEY (record_type, id))
        """,
        "CREATE INDEX IF NOT EXISTS tombstones_unexported ON tombstones(changed_at) WHERE revision > exported_revision",
        // Model definitions, as in SQLiteStore's v11 migration.
        "CREATE TABLE IF NOT EXISTS models (id text PRIMARY KEY, created_at bigint NOT NULL, record text NOT NULL)",
    ]

    private func migrate() throws {
        try write { s in
            // Two processes starting at once must not race on CREATE.
            try s.execute("SELECT pg_advisory_xact_lock(7320418)", [])
            for statement in Self.schema { try s.execute(statement, []) }
        }
    }

    // MARK: sessions

    public func read<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        let session = PostgresSession(connection: try checkout(), store: self)
        do {
            let result = try body(session)
            try session.flush()
            checkin(session.connection)
            return result
        } catch {
            discard(session.connection)
            throw error
        }
    }

    public func write<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        let session = PostgresSession(connection: try checkout(), store: self)
        do {
            try session.execute("BEGIN", [])
            let result = try body(session)
            try session.execute("COMMIT", [])
            try session.flush()
            checkin(session.connection)
            return result
        } catch {
            session.pending.removeAll()
            if (try? session.execute("ROLLBACK", [])) != nil, (try? session.flush()) != nil {
                checkin(session.connection)
            } else {
                discard(session.connection)
            }
            throw error
        }
    }

    /// Advisory locks, taken in key order so that two writers never wait on
    /// each other crosswise.
    public func lock(_ traces: [TraceID], in session: any SQLSession) throws {
        let keys = Set(traces.map(Self.lockKey)).sorted()
        guard !keys.isEmpty else { return }
        let values = keys.map { "(\($0))" }.joined(separator: ",")
        _ = try session.rows("SELECT pg_advisory_xact_lock(k) FROM (SELECT k FROM (VALUES \(values)) v(k) ORDER BY k) s", [])
    }

    static func lockKey(_ id: TraceID) -> Int64 {
        var key: UInt64 = 0
        for (i, b) in id.bytes.enumerated() { key ^= UInt64(b) << (UInt64(i % 8) * 8) }
        return Int64(bitPattern: key)
    }

    /// A committed PostgreSQL transaction is durable on its own.
    public func sync() throws {}

    public func close() {
        poolLock.lock()
        let connections = idle
        idle.removeAll()
        poolLock.unlock()
        // Bounded like every other wait: a frozen server must not hold
        // shutdown.
        let closed = DispatchSemaphore(value: 0)
        for c in connections { Self.close(c) { closed.signal() } }
        for _ in connections { _ = closed.wait(timeout: .now() + requestTimeout.inSeconds) }
    }

    // MARK: connection pool

    private func checkout() throws -> PostgresConnection {
        poolLock.lock()
        while let c = idle.popLast() {
            if !c.isClosed {
                poolLock.unlock()
                return c
            }
        }
        nextID += 1
        let id = nextID
        poolLock.unlock()
        do {
            return try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
        } catch {
            throw StoreError("cannot connect to \(location): \(String(reflecting: error))")
        }
    }

    private func checkin(_ c: PostgresConnection) {
        guard !c.isClosed else { return }
        poolLock.lock()
        idle.append(c)
        poolLock.unlock()
    }

    /// A connection in an unknown state is closed rather than reused.
    private func discard(_ c: PostgresConnection) { Self.close(c) {} }

    /// Closes `c` and keeps it alive until the close has run on its event
    /// loop: the caller lets go of it at once, and postgres-nio asserts that
    /// a connection is closed before it is freed.
    static func close(_ c: PostgresConnection, then done: @escaping @Sendable () -> Void) {
        c.close().whenComplete { _ in
            withExtendedLifetime(c) { done() }
        }
    }

    /// Runs `body` on postgres-nio's event loops and waits for it here, at
    /// most `requestTimeout`: a database that stops answering without
    /// closing the connection (frozen, or a network partition) must not
    /// stall the pipeline, the exporter or shutdown for ever. On a timeout
    /// the connection is closed, which fails whatever still runs on it, and
    /// the caller's transaction fails like any other store error. Callers are
    /// store threads, or NIO's blocking thread pool, never an event loop.
    func blocking<T: Sendable>(on connection: PostgresConnection?, _ body: @escaping @Sendable () async throws -> T) throws -> T {
        let promise = group.next().makePromise(of: T.self)
        promise.completeWithTask(body)
        let outcome = NIOLockedValueBox<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        promise.futureResult.whenComplete { result in
            outcome.withLockedValue { $0 = result }
            done.signal()
        }
        // postgres-nio writes a query to its channel without a promise: a
        // query sent on a connection that closed meanwhile (the server
        // restarted) is dropped and never answered. Waking on the close
        // turns that into an error at once instead of a stall.
        connection?.closeFuture.whenComplete { _ in done.signal() }
        guard done.wait(timeout: .now() + requestTimeout.inSeconds) == .success else {
            if let connection { Self.close(connection) {} }
            throw StoreError("\(location): no answer within \(requestTimeout); the connection is closed")
        }
        guard let result = outcome.withLockedValue({ $0 }) else {
            throw StoreError("\(location): the connection closed before the answer")
        }
        do {
            return try result.get()
        } catch let error as PSQLError {
            // PSQLError hides the server's message from its description.
            throw StoreError("\(location): \(error.serverInfo?[.message] ?? "\(error.code)")")
        }
    }
}

/// One leased connection. Statements without results are queued and sent
/// together before the next read or at the end, one wait for many.
final class PostgresSession: SQLSession {
    let connection: PostgresConnection
    let store: PostgresStore
    var pending: [PostgresQuery] = []
    var dialect: SQLDialect { .postgres }
    var rowCompression: RowCompression { store.rowCompression }

    init(connection: PostgresConnection, store: PostgresStore) {
        self.connection = connection
        self.store = store
    }

    func execute(_ sql: String, _ args: [SQLValue]) throws {
        pending.append(try Self.query(sql, args))
        if pending.count >= 512 { try flush() }
    }

    func rows(_ sql: String, _ args: [SQLValue]) throws -> [SQLRow] {
        let queued = pending + [try Self.query(sql, args)]
        pending.removeAll()
        let (connection, logger) = (self.connection, store.logger)
        return try store.blocking(on: connection) {
            let results = try await Self.send(queued, on: connection, logger: logger).get()
            return try results[results.count - 1].rows.map(Self.row)
        }
    }

    func flush() throws {
        guard !pending.isEmpty else { return }
        let queued = pending
        pending.removeAll()
        let (connection, logger) = (self.connection, store.logger)
        _ = try store.blocking(on: connection) {
            try await Self.send(queued, on: connection, logger: logger).get().count
        }
    }

    /// All rows in one statement: a round trip per table, not per row. A
    /// column with no NULL travels as one typed array (`bytea[]`, `text[]`,
    /// `int8[]`, `float8[]`) in PostgreSQL's binary format, and the arrays
    /// are unnested side by side; the columns that hold a NULL travel as one
    /// JSON document that `json_to_recordset` unpacks beside them (bytes as
    /// hex). Sending everything as JSON cost an escape of every record and
    /// the hex of every span body, on both sides.
    func insert(into table: String, _ columns: [(String, SQLColumnType)], rows: [[SQLValue]], onConflict: String) throws {
        guard !rows.isEmpty else { return }
        var arrays = [PostgresBinaryArray]()
        var sources = [String]()
        var arrayNames = [String]()
        var inJSON = [Int]()
        for (j, (name, type)) in columns.enumerated() {
            let values = rows.map { $0[j] }
            let placeholder = "$\(arrays.count + 2)"  // $1 is the JSON document
            let array: PostgresBinaryArray
            switch type {
            case .int:
                let ints = values.compactMap { if case .int(let v) = $0 { v } else { nil } }
                guard ints.count == rows.count else { inJSON.append(j); continue }
                array = PostgresBinaryArray(.int8(ints))
            case .double:
                let doubles = values.compactMap { if case .double(let v) = $0, v.isFinite { v } else { nil } }
                guard doubles.count == rows.count else { inJSON.append(j); continue }
                array = PostgresBinaryArray(.float8(doubles))
            case .text, .json:
                let texts = values.compactMap { if case .text(let v) = $0 { Self.storable(v) } else { nil } }
                guard texts.count == rows.count else { inJSON.append(j); continue }
                array = PostgresBinaryArray(.text(texts))
            case .blob:
                let blobs = values.compactMap { if case .blob(let v) = $0 { v } else { nil } }
                guard blobs.count == rows.count else { inJSON.append(j); continue }
                array = PostgresBinaryArray(.bytea(blobs))
            }
            sources.append("unnest(\(placeholder)::\(array.sqlType))")
            arrays.append(array)
            arrayNames.append(name)
        }
        var w = JSONWriter(reservingCapacity: inJSON.isEmpty ? 2 : 32 * rows.count * inJSON.count)
        w.writeRaw("[")
        for (i, row) in rows.enumerated() where !inJSON.isEmpty {
            w.writeRaw(i == 0 ? "{" : ",{")
            for (k, j) in inJSON.enumerated() {
                if k > 0 { w.writeRaw(",") }
                w.writeString(columns[j].0)
                w.writeRaw(":")
                switch row[j] {
                case .null: w.writeRaw("null")
                case .int(let v): w.writeInt(v)
                case .double(let v): v.isFinite ? w.writeRaw("\(v)") : w.writeRaw("null")
                case .text(let v): w.writeString(Self.storable(v))
                case .blob(let v): v.withUnsafeBytes { w.writeHexString($0) }
                }
            }
            w.writeRaw("}")
        }
        w.writeRaw("]")
        var binds = PostgresBindings(capacity: arrays.count + 1)
        binds.append(String(decoding: w.bytes, as: UTF8.self))
        for array in arrays { binds.append(array) }
        let jsonShape = inJSON.map { j -> String in
            let (name, type) = columns[j]
            switch type {
            case .int: return "\(name) bigint"
            case .double: return "\(name) double precision"
            case .text, .blob, .json: return "\(name) text"
            }
        }
        if !inJSON.isEmpty { sources.insert("json_to_recordset(CAST($1 AS json)) AS (\(jsonShape.joined(separator: ", ")))", at: 0) }
        let aliases = inJSON.map { columns[$0].0 } + arrayNames
        let jsonSet = Set(inJSON)
        let values = columns.enumerated().map { j, column -> String in
            let (name, type) = column
            switch type {
            case .blob: return jsonSet.contains(j) ? "decode(x.\(name), 'hex')" : "x.\(name)"
            case .json: return "CAST(x.\(name) AS jsonb)"
            default: return "x.\(name)"
            }
        }.joined(separator: ", ")
        // An unused $1 still needs a type: it is cast to json in a clause that
        // never runs when every column travels as an array.
        let keepFirst = inJSON.isEmpty ? " WHERE CAST($1 AS json) IS NOT NULL" : ""
        let sql = "INSERT INTO \(table)(\(columns.map(\.0).joined(separator: ", "))) SELECT \(values) FROM ROWS FROM (\(sources.joined(separator: ", "))) AS x(\(aliases.joined(separator: ", ")))\(keepFirst) \(onConflict)"
        pending.append(PostgresQuery(unsafeSQL: sql, binds: binds))
        if pending.count >= 512 { try flush() }
    }

    /// PostgreSQL text cannot hold U+0000; it is dropped there alone. The
    /// test is a `memchr` over the UTF-8 bytes: Foundation's
    /// `String.contains` went through NSString and took a fifth of the
    /// collector's CPU on this store, over every value and the whole
    /// multi-megabyte JSON document of each bulk insert.
    static func storable(_ s: String) -> String {
        var s = s
        let hasNUL = s.withUTF8 { utf8 in utf8.isEmpty ? false : memchr(utf8.baseAddress!, 0, utf8.count) != nil }
        guard hasNUL else { return s }
        return String(decoding: s.utf8.filter { $0 != 0 }, as: UTF8.self)
    }

    /// Hands the statements to the connection together, on its event loop,
    /// and gives their results in order (the first error, if any).
    ///
    /// On the event loop, and only while the channel is active: postgres-nio
    /// writes a query to its channel without a write promise, so one written
    /// to a channel that has closed meanwhile is dropped, never answered, and
    /// its result promise is leaked (a trap in debug builds). A write made on
    /// the loop to an active channel reaches the connection's handler, which
    /// answers it or fails it when the connection closes.
    static func send(_ queries: [PostgresQuery], on connection: PostgresConnection, logger: Logger) -> EventLoopFuture<[PostgresQueryResult]> {
        let loop = connection.eventLoop
        return loop.flatSubmit {
            guard !connection.isClosed else {
                return loop.makeFailedFuture(StoreError("the connection to PostgreSQL is closed"))
            }
            let futures = queries.map { connection.query($0, logger: logger) }
            return EventLoopFuture.whenAllComplete(futures, on: loop).flatMapThrowing { results in try results.map { try $0.get() } }
        }
    }

    static func query(_ sql: String, _ args: [SQLValue]) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: args.count)
        for a in args {
            switch a {
            case .null: binds.appendNull()
            case .int(let i): binds.append(i)
            case .double(let d): binds.append(d)
            case .text(let s): binds.append(storable(s))
            case .blob(let b): try binds.append(b)
            }
        }
        return PostgresQuery(unsafeSQL: numberPlaceholders(sql), binds: binds)
    }

    static func row(_ row: PostgresRow) throws -> SQLRow {
        var names = [String](), values = [SQLValue]()
        for cell in row {
            names.append(cell.columnName)
            guard cell.bytes != nil else {
                values.append(.null)
                continue
            }
            switch cell.dataType {
            case .int2, .int4, .int8: values.append(.int(try cell.decode(Int64.self)))
            case .float4, .float8: values.append(.double(try cell.decode(Double.self)))
            case .numeric: values.append(.double(NSDecimalNumber(decimal: try cell.decode(Decimal.self)).doubleValue))
            case .bool: values.append(.int(try cell.decode(Bool.self) ? 1 : 0))
            case .bytea: values.append(.blob(try cell.decode(Data.self)))
            case .void: values.append(.null)
            default: values.append(.text(try cell.decode(String.self)))
            }
        }
        return SQLRow(names: names, values: values)
    }
}
