import Foundation
import GRDB
import Logging
import TracefoldModel
import TracefoldStore
import XCTest

/// The store suites run on every backend: SQLite always, and PostgreSQL when
/// `TRACEFOLD_TEST_POSTGRES_URL` names a server (scripts/test.sh starts a
/// private cluster and sets it, with `TRACEFOLD_REQUIRE_POSTGRES=1` so that a
/// missing server fails the run instead of skipping half of it).
enum StoreBackend: String, CaseIterable, Sendable {
    case sqlite, postgres

    static var postgresURL: String? {
        ProcessInfo.processInfo.environment["TRACEFOLD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static var available: [StoreBackend] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// A URL of a new, empty database on the test server.
    static func freshPostgresDatabase() throws -> String {
        let base = try XCTUnwrap(postgresURL)
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let admin = try PostgresStore(url: base, logger: Logger(label: "test"))
        defer { admin.close() }
        try admin.read { try $0.execute("CREATE DATABASE \(name)", []) }
        var c = try XCTUnwrap(URLComponents(string: base))
        c.path = "/" + name
        return try XCTUnwrap(c.string)
    }

    /// Runs `body` on each available backend with a new, empty store and a
    /// temporary directory, both gone afterwards.
    static func eachStore(_ body: (StoreBackend, any RecordStore, String) throws -> Void) throws {
        for backend in available {
            let dir = Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try backend.makeStore(in: dir)
            defer { store.close() }
            try body(backend, store, dir)
        }
    }

    /// A new, empty store; SQLite's file goes in `dir`.
    /// `exportCacheBudget`: the store's export cache.
    func makeStore(in dir: String, exportCacheBudget: Int? = ExportCache.defaultBudget) throws -> any RecordStore {
        switch self {
        case .sqlite: return try SQLiteStore(path: dir + "/t.sqlite", exportCacheBudget: exportCacheBudget)
        case .postgres: return try PostgresStore(url: Self.freshPostgresDatabase(), exportCacheBudget: exportCacheBudget, logger: Logger(label: "test"))
        }
    }
}

final class StoreBackendTests: XCTestCase {
    func testPostgresIsThereWhenRequired() throws {
        guard ProcessInfo.processInfo.environment["TRACEFOLD_REQUIRE_POSTGRES"] == "1" else { return }
        XCTAssertNotNil(StoreBackend.postgresURL, "TRACEFOLD_TEST_POSTGRES_URL is not set: the PostgreSQL half of the store suites would not run")
        let store = try StoreBackend.postgres.makeStore(in: "")
        defer { store.close() }
        XCTAssertEqual(try store.counts().traces, 0)
    }

    /// A new SQLite file gets 16 KiB pages (see `SQLiteStore.pageSize`); a
    /// file made with 4 KiB pages before keeps them and still opens.
    func testANewSQLiteFileHasSixteenKiBPages() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/new.sqlite")
        XCTAssertEqual(try store.read { try $0.rows("PRAGMA page_size", []) }.first?["page_size"].int, 16_384)
        store.close()

        let old = try DatabaseQueue(path: dir + "/old.sqlite")
        try old.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA page_size = 4096")
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE t (x)")
        }
        try old.close()
        let reopened = try SQLiteStore(path: dir + "/old.sqlite")
        defer { reopened.close() }
        XCTAssertEqual(try reopened.read { try $0.rows("PRAGMA page_size", []) }.first?["page_size"].int, 4096)
        XCTAssertEqual(try reopened.counts().traces, 0)
    }

    /// A result row reads each column as its type, on both backends: a
    /// column named twice gives the first, one not named gives null. The
    /// statement is cached, so the second call must not see the first's
    /// bindings, and a call with too few arguments is refused, not run with
    /// what an earlier call bound.
    func testRowsReadEachColumnAsItsType() throws {
        try StoreBackend.eachStore { backend, store, _ in
            let sql = "SELECT ? AS i, 1.5 AS d, 'té' AS t, ? AS b, NULL AS n, 2 AS i"
            for (n, bytes) in [(Int64(7), Data([1, 2, 0, 3])), (Int64(-1), Data([9]))] {
                let row = try XCTUnwrap(store.read { try $0.rows(sql, [.int(n), .blob(bytes)]) }.first, "\(backend)")
                XCTAssertEqual(row["i"], .int(n), "\(backend)")
                XCTAssertEqual(row["d"], .double(1.5), "\(backend)")
                XCTAssertEqual(row["t"], .text("té"), "\(backend)")
                XCTAssertEqual(row["b"], .blob(bytes), "\(backend)")
                XCTAssertEqual(row["n"], .null, "\(backend)")
                XCTAssertEqual(row["missing"], .null, "\(backend)")
            }
            XCTAssertEqual(try store.read { try $0.rows("SELECT x FROM (SELECT 1 AS x) s WHERE x > 1", []) }.count, 0, "\(backend): no rows")
            XCTAssertThrowsError(try store.read { try $0.rows(sql, [.int(1)]) }, "\(backend): one argument of two")
        }
    }

    /// A failed call closes its PostgreSQL connection rather than reuse it.
    /// The close runs on the connection's event loop, after the call has
    /// returned and let go of the connection: the connection must live until
    /// it is closed (postgres-nio asserts that in debug builds, which ended
    /// the collector during a PostgreSQL outage in the test suite).
    func testAFailedCallOutlivesNothingItCloses() throws {
        guard StoreBackend.postgresURL != nil else { return }
        let store = try StoreBackend.postgres.makeStore(in: "")
        defer { store.close() }
        for _ in 0..<50 {
            XCTAssertThrowsError(try store.read { _ in throw StoreError("the caller failed") })
            XCTAssertThrowsError(try store.write { _ in throw StoreError("the caller failed") })
            XCTAssertThrowsError(try store.write { try $0.execute("SELECT no_such_function()", []) })
        }
        XCTAssertEqual(try store.read { try $0.rows("SELECT 1 AS one", []) }.first?["one"].int, 1)
    }

    /// Inserted values read back as they went in: empty text and blobs stay
    /// empty (not NULL), NULL stays NULL, a conflicting row is skipped, and a
    /// constraint failure is an error.
    func testInsertedValuesReadBack() throws {
        try StoreBackend.eachStore { backend, store, dir in
            let columns: [(String, SQLColumnType)] = [("trace_id", .blob), ("seq", .int), ("body", .text)]
            let rows: [[SQLValue]] = [
                [.blob(Data([1])), .int(1), .text("")], [.blob(Data([2])), .int(-7), .text("é\"x")], [.blob(Data([3])), .int(3), .text("a")],
                [.blob(Data([1])), .int(1), .text("dup")],
            ]
            try store.write { try $0.insert(into: "api_updates", columns, rows: rows, onConflict: "ON CONFLICT DO NOTHING") }
            let back = try store.read { try $0.rows("SELECT trace_id, seq, body FROM api_updates ORDER BY trace_id, seq", []) }
            XCTAssertEqual(back.map { [$0["trace_id"], $0["seq"], $0["body"]] }, Array(rows.prefix(3)), "\(backend)")
            XCTAssertThrowsError(try store.write { try $0.insert(into: "api_updates", columns, rows: [[.blob(Data([4])), .null, .text("x")]], onConflict: "") })
            try store.write { try $0.insert(into: "trace_metadata", [("trace_id", .blob), ("key", .text), ("value", .text), ("start_time", .int)],
                                            rows: [[.blob(Data()), .text(""), .null, .int(0)]], onConflict: "") }
            let m = try store.read { try $0.rows("SELECT trace_id, key, value FROM trace_metadata", []).first }
            XCTAssertEqual(m?["trace_id"], .blob(Data()), "\(backend)")
            XCTAssertEqual(m?["key"], .text(""), "\(backend)")
            XCTAssertEqual(m?["value"], .null, "\(backend)")

            // PostgreSQL text cannot hold U+0000: dropped there, and only there,
            // in bulk inserts and in bound parameters alike.
            try store.write {
                try $0.insert(into: "api_updates", columns, rows: [[.blob(Data([5])), .int(5), .text("a\u{0}b\u{0}")]], onConflict: "")
                try $0.execute("INSERT INTO api_updates (trace_id, seq, body) VALUES (?, ?, ?)", [.blob(Data([6])), .int(6), .text("\u{0}é")])
            }
            let nul = try store.read { try $0.rows("SELECT body FROM api_updates WHERE seq >= 5 ORDER BY seq", []) }.map { $0["body"] }
            XCTAssertEqual(nul.count, 2, "\(backend)")
            if backend == .postgres { XCTAssertEqual(nul, [.text("ab"), .text("é")]) }
        }
    }

    /// Many rows in one insert, as a commit writes them (31 to 65 rows):
    /// every value reads back in its own row (empty text and blobs, NULLs,
    /// large integers), an upsert that hits a row the same insert made
    /// updates it, and a row that fails takes back the rows before it.
    func testManyRowsInOneInsertReadBackRowByRow() throws {
        try StoreBackend.eachStore { backend, store, dir in
            let columns: [(String, SQLColumnType)] = [("trace_id", .blob), ("key", .text), ("value", .text), ("start_time", .int)]
            let updates: [(String, SQLColumnType)] = [("trace_id", .blob), ("seq", .int), ("body", .text)]
            func row(_ batch: Int, _ i: Int) -> [SQLValue] {
                [.blob(i % 5 == 0 ? Data() : Data([UInt8(batch), UInt8(i), 0, 0xFF])),
                 .text("k\(i)-" + String(repeating: "é", count: i % 7)),
                 i % 3 == 0 ? .null : .text(i % 4 == 0 ? "" : String(repeating: "v", count: 100 + i)),
                 .int(Int64(i) * 1_000_000_007)]
            }
            for (batch, count) in [31, 32, 33, 64, 65].enumerated() {
                let rows = (0..<count).map { row(batch, $0) }
                try store.write { try $0.insert(into: "trace_metadata", columns, rows: rows, onConflict: "") }
                let back = try store.read {
                    try $0.rows("SELECT trace_id, key, value, start_time FROM trace_metadata WHERE key LIKE 'k%' ORDER BY start_time", [])
                }
                XCTAssertEqual(back.map { [$0["trace_id"], $0["key"], $0["value"], $0["start_time"]] }, rows, "\(backend), \(count) rows")
                try store.write { try $0.execute("DELETE FROM trace_metadata", []) }
            }

            // A NULL seq in row 50 fails the insert; nothing of it stays.
            let failing = (0..<60).map { i -> [SQLValue] in [.blob(Data([8])), i == 50 ? .null : .int(Int64(i)), .text("x")] }
            XCTAssertThrowsError(try store.write { try $0.insert(into: "api_updates", updates, rows: failing, onConflict: "") })
            XCTAssertEqual(try store.read { try $0.rows("SELECT COUNT(*) AS n FROM api_updates WHERE trace_id = ?", [.blob(Data([8]))]) }.first?["n"].int, 0,
                           "\(backend)")

            // Row 20 updates row 3 and row 70 updates row 65. (PostgreSQL
            // refuses an upsert that touches a row twice; the fold never
            // writes a key twice in one insert.)
            guard backend == .sqlite else { return }
            let seqs = (0..<72).map { i -> [SQLValue] in
                let seq: Int64 = i == 20 ? 3 : i == 70 ? 65 : Int64(i)
                return [.blob(Data([9])), .int(seq), .text("body \(i)")]
            }
            try store.write {
                try $0.insert(into: "api_updates", updates, rows: seqs, onConflict: "ON CONFLICT (trace_id, seq) DO UPDATE SET body = excluded.body")
            }
            let bodies = try store.read { try $0.rows("SELECT seq, body FROM api_updates WHERE trace_id = ? ORDER BY seq", [.blob(Data([9]))]) }
            XCTAssertEqual(bodies.count, 70, "\(backend)")
            XCTAssertEqual(bodies.first { $0["seq"].int == 3 }?["body"], .text("body 20"), "\(backend)")
            XCTAssertEqual(bodies.first { $0["seq"].int == 65 }?["body"], .text("body 70"), "\(backend)")
            XCTAssertEqual(bodies.first { $0["seq"].int == 71 }?["body"], .text("body 71"), "\(backend)")
        }
    }
}

/// The traces that `store.traces` lists for these metadata filters (and
/// name, if given), by id; asserts that one page holds every match.
func listedTraces(
    _ store: any RecordStore, _ metadata: [(key: String, op: TraceFilter.MetadataOperator, value: String)], name: String? = nil, _ message: String,
    file: StaticString = #filePath, line: UInt = #line
) throws -> Set<TraceID> {
    var f = TraceFilter()
    f.metadata = metadata
    f.name = name
    let (records, total) = try store.traces(f)
    XCTAssertEqual(records.count, total, message, file: file, line: line)
    return Set(try records.map { try XCTUnwrap(TraceID(hex: XCTUnwrap(JSONParser.parse($0)["id"]?.stringValue))) })
}
