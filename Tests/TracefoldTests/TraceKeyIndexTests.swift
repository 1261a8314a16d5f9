import Foundation
import GRDB
import Logging
import TracefoldFold
import TracefoldModel
@testable import TracefoldStore
import XCTest

/// SQLite keys trace rows by `(epoch, trace_id)` and finds a trace's
/// epoch through `TraceKeyIndex`. If the index ever missed a row that is
/// there, the fold would take the trace for a new one and make a second
/// row for it in another epoch: each test here would then see two rows,
/// or a record without the spans it was folded from.
final class TraceKeyIndexTests: XCTestCase {
    let logger = Logger(label: "test")

    func rowCount(_ store: SQLiteStore, _ trace: TraceID) throws -> Int64 {
        try store.read { try $0.row("SELECT COUNT(*) AS n FROM traces WHERE trace_id = ?", [.blob(trace.data)])?["n"].int ?? -1 }
    }

    func observationIDs(_ store: SQLiteStore, _ trace: TraceID) throws -> Set<String> {
        Set(try store.observationRecords(of: trace).compactMap { try JSONParser.parse($0)["id"]?.stringValue })
    }

    /// Folds `trace`'s root span (trace metadata `first`) into the store
    /// at `path`, and closes it.
    func foldRoot(of trace: TraceID, at path: String) throws {
        let store = try SQLiteStore(path: path)
        defer { store.close() }
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: logger)
        _ = try folder.consume(Fixtures.batch([Conformance.S("root", id: 1, 0, 10, ["langfuse.trace.metadata.first": .int(1)], trace: trace)]))
    }

    /// Opens the store at `path` (a new process), folds a late span of
    /// `trace` (metadata `late`), and checks that it went into the trace's
    /// one row with the root's.
    func checkALateSpanUpdatesTheRow(of trace: TraceID, at path: String, file: StaticString = #filePath, line: UInt = #line) throws -> SQLiteStore {
        let store = try SQLiteStore(path: path)
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: logger)
        _ = try folder.consume(Fixtures.batch([Conformance.S("late", id: 2, parent: 1, 2, 8, ["langfuse.trace.metadata.late": .int(2)], trace: trace)]))
        XCTAssertEqual(try rowCount(store, trace), 1, file: file, line: line)
        let record = try JSONParser.parse(XCTUnwrap(store.traceRecord(trace)))
        XCTAssertEqual(record["metadata"]?["first"], .int(1), file: file, line: line)
        XCTAssertEqual(record["metadata"]?["late"], .int(2), file: file, line: line)
        XCTAssertEqual(try observationIDs(store, trace), [Conformance.id(1).hex, Conformance.id(2).hex], file: file, line: line)
        return store
    }

    /// A late span after a restart: the new process's epoch is past the
    /// trace's, and its index, read from the file, finds the trace's row.
    func testALateSpanAfterARestartUpdatesTheTracesRow() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = TraceID(high: 7, low: 7)
        try foldRoot(of: trace, at: dir + "/t.sqlite")
        let store = try checkALateSpanUpdatesTheRow(of: trace, at: dir + "/t.sqlite")
        defer { store.close() }
        let epochs = try store.read { try $0.rows("SELECT DISTINCT epoch FROM observations", []) }.compactMap { $0["epoch"].int }
        XCTAssertEqual(epochs.count, 1, "the late span's row went into its trace's epoch, not the new process's")
    }

    /// Another store on the same file (the CLI beside the collector) finds
    /// the traces the first one made, before and after it first looked.
    func testAnotherStoreOnTheFileFindsTracesMadeAfterItOpened() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.sqlite"
        let writer = try SQLiteStore(path: path)
        defer { writer.close() }
        let folder = TraceFolder(store: writer, limits: MetadataLimits(), maxOpenTraces: 10, logger: logger)
        let first = TraceID(high: 1, low: 1), second = TraceID(high: 2, low: 2)
        _ = try folder.consume(Fixtures.batch([Conformance.S("a", id: 1, 0, 10, trace: first)]))
        let reader = try SQLiteStore(path: path)
        defer { reader.close() }
        XCTAssertNotNil(try reader.traceRecord(first))
        XCTAssertNil(try reader.traceRecord(second))
        _ = try folder.consume(Fixtures.batch([Conformance.S("b", id: 2, 0, 10, trace: second)]))
        XCTAssertNotNil(try reader.traceRecord(second), "made after the reader's index first read the file")
        XCTAssertEqual(try observationIDs(reader, second), [Conformance.id(2).hex])
    }

    /// A transaction that made a trace row and then read the index, and
    /// rolled back: the row's id goes to the next row made, which the index
    /// must still read.
    func testRowsSeenUncommittedAreReadAgainAfterARollback() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/t.sqlite")
        defer { store.close() }
        struct Rollback: Error {}
        let index = store.traceKeys
        let gone = TraceID(high: 3, low: 3), kept = TraceID(high: 4, low: 4)
        func insert(_ trace: TraceID, epoch: Int64, in s: any SQLSession) throws -> Int64 {
            try s.execute("INSERT INTO traces (trace_id, revision, changed_at, start_time, record, epoch) VALUES (?, 1, 0, 0, '{}', ?)", [.blob(trace.data), .int(epoch)])
            return try s.row("SELECT id FROM traces WHERE trace_id = ?", [.blob(trace.data)])?["id"].int ?? -1
        }
        var goneID: Int64 = 0
        XCTAssertThrowsError(
            try store.write { s in
                goneID = try insert(gone, epoch: 7, in: s)
                XCTAssertEqual(try index.candidates(of: [gone], in: s, advancing: false).map(\.epoch), [7], "its own row, uncommitted")
                throw Rollback()
            })
        let keptID = try store.write { s in try insert(kept, epoch: 8, in: s) }
        XCTAssertEqual(keptID, goneID, "AUTOINCREMENT gives the rolled-back id again")
        let found = try store.read { s in try index.candidates(of: [kept], in: s) }
        XCTAssertEqual(found.map(\.0), [kept])
        XCTAssertEqual(found.map(\.epoch), [8])
    }

    /// Deleted traces leave the index once their delete commits; a trace
    /// deleted and made again is found in its new epoch only.
    func testDeletesLeaveTheIndexAndATraceMadeAgainIsFound() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/t.sqlite")
        defer { store.close() }
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: logger)
        let old = TraceID(high: 5, low: 5), again = TraceID(high: 6, low: 6)
        _ = try folder.consume(Fixtures.batch([Conformance.S("old", id: 1, 0, 10, trace: old)]))
        _ = try folder.consume(Fixtures.batch([Conformance.S("again", id: 2, 1_000, 1_010, trace: again)]))
        XCTAssertEqual(try store.read { try store.traceKeys.candidates(of: [old, again], in: $0) }.count, 2)
        XCTAssertEqual(try store.deleteTraces(startedBefore: 1_700_000_000_500_000_000), 1)
        XCTAssertEqual(store.traceKeys.count, 1, "retention's delete forgot the old trace")
        XCTAssertEqual(try folder.delete([again]), [again])
        XCTAssertEqual(store.traceKeys.count, 0, "the API's delete forgot the trace")
        _ = try folder.consume(Fixtures.batch([Conformance.S("made again", id: 3, 2_000, 2_010, trace: again)]))
        XCTAssertEqual(try rowCount(store, again), 1)
        XCTAssertEqual(try observationIDs(store, again), [Conformance.id(3).hex])
        XCTAssertNil(try store.traceRecord(old))
    }

    /// A store made before trace rows were keyed by epoch: its rows move to
    /// the new table, lose the key by id, and are found and updated in place.
    func testAStoreFromBeforeKeepsItsTraces() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t.sqlite"
        let trace = TraceID(high: 9, low: 9)
        try foldRoot(of: trace, at: path)
        // The file as v15 left it: the same rows in a table keyed by id,
        // and none of v17's service_metadata.
        let pool = try DatabasePool(path: path)
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE traces_v15 AS SELECT trace_id, revision, exported_revision, changed_at, start_time, record, name, user_id,
                  session_id, version, release, environment, tags, public, entries, last_seq, latency, total_cost, generation, epoch FROM traces;
                DROP TABLE traces;
                CREATE TABLE traces (
                  trace_id BLOB PRIMARY KEY, revision INTEGER NOT NULL, exported_revision INTEGER NOT NULL DEFAULT 0,
                  changed_at INTEGER NOT NULL, start_time INTEGER NOT NULL, record TEXT NOT NULL, name TEXT, user_id TEXT, session_id TEXT,
                  version TEXT, release TEXT, environment TEXT, tags TEXT NOT NULL DEFAULT '[]', public INTEGER NOT NULL DEFAULT 0,
                  entries TEXT NOT NULL DEFAULT '[]', last_seq INTEGER NOT NULL DEFAULT 0, latency REAL, total_cost REAL,
                  generation INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 0);
                INSERT INTO traces SELECT * FROM traces_v15;
                DROP TABLE traces_v15;
                DELETE FROM grdb_migrations WHERE identifier = 'v16-trace-keys';
                DROP TABLE service_metadata;
                DELETE FROM grdb_migrations WHERE identifier = 'v17-service-metadata';
                """)
        }
        try pool.close()
        let store = try checkALateSpanUpdatesTheRow(of: trace, at: path)
        defer { store.close() }
        let indexes = try store.read { try $0.rows("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'traces'", []) }.compactMap { $0["name"].string }
        XCTAssertEqual(
            Set(indexes), ["traces_by_key", "traces_by_start", "traces_unexported", "traces_by_user", "traces_by_session", "traces_by_name", "traces_by_service"])
    }
}
