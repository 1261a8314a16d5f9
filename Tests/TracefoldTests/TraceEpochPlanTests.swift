import Foundation
import Logging
import TracefoldFold
import TracefoldModel
@testable import TracefoldStore
import XCTest

/// A trace's observation and metadata rows are keyed by its epoch first
/// (`TraceEpochs`): every statement that reads or deletes them by trace must
/// seek through those keys. A statement that named only `trace_id` would
/// still answer right, over a scan of the whole table, so the plans are
/// what is checked.
final class TraceEpochPlanTests: XCTestCase {
    /// A store holding `Conformance.trace`, one span with a metadata entry.
    private func withOneTrace(_ body: (SQLiteStore) throws -> Void) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/t.sqlite")
        defer { store.close() }
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
        _ = try folder.consume(Fixtures.batch([Conformance.S("root", id: 1, 0, 10, ["langfuse.trace.metadata.tenant": .string("a")])]))
        try body(store)
    }

    func testStatementsByTraceSeekThroughTheEpochKeys() throws { try withOneTrace { store in
        let trace = SQLValue.blob(Conformance.trace.data)
        var keys = [TraceRows.TraceKeys]()
        try TraceRows.keyLists([(Conformance.trace, epoch: 1), (TraceID(hex: "00000000000000000000000000000002")!, epoch: 3)]) { keys.append($0) }
        XCTAssertEqual(keys.count, 1)
        let (one, oneO) = try store.read { s in (try TraceRows.one(Conformance.trace, in: s), try TraceRows.one("o.", Conformance.trace, in: s)) }
        XCTAssertEqual(one.args.count, 2, "the trace's one epoch and its id")
        let statements: [(String, [SQLValue])] = [
            ("SELECT record FROM observations WHERE \(one.sql) ORDER BY start_time, span_id", one.args),
            // The observation lists' trace filter, newest first.
            ("SELECT o.record FROM observations o LEFT JOIN traces t ON t.epoch = o.epoch AND t.trace_id = o.trace_id WHERE \(oneO.sql) ORDER BY o.start_time DESC, o.span_id DESC LIMIT 50",
             oneO.args),
            ("SELECT COUNT(*) FROM traces WHERE EXISTS (SELECT 1 FROM observations o WHERE \(TraceRows.joined("o", to: "traces")) AND o.level = 'ERROR')", []),
            ("SELECT t.trace_id, COUNT(*) FROM traces t JOIN observations o ON \(TraceRows.joined("o", to: "t")) WHERE t.epoch IN (?) AND t.trace_id IN (?) GROUP BY t.trace_id",
             [one.args[0], trace]),
            // The summary's observations per trace.
            ("WITH t AS (SELECT epoch, trace_id FROM traces WHERE start_time >= ?) SELECT ob.trace_id, COUNT(*) FROM t JOIN observations ob ON \(TraceRows.joined("ob", to: "t")) GROUP BY ob.trace_id",
             [.int(0)]),
            ("SELECT (SELECT value FROM trace_metadata m WHERE \(TraceRows.joined("m", to: "traces")) AND m.key = ?) FROM traces", [.text("tenant")]),
            ("DELETE FROM trace_metadata WHERE \(keys[0].sql)", keys[0].args),
            ("DELETE FROM observations WHERE \(keys[0].sql)", keys[0].args),
            ("SELECT seq, received_at, body FROM observations WHERE \(one.sql) AND seq > ? AND body IS NOT NULL", one.args + [.int(0)]),
            ("SELECT trace_id, span_id, revision, record FROM observations WHERE epoch = ? AND trace_id = ? AND trace_revision > ? ORDER BY start_time, span_id",
             [.int(1), trace, .int(0)]),
        ]
        for (sql, args) in statements {
            let plan = try store.read { try $0.rows("EXPLAIN QUERY PLAN " + sql, args) }.compactMap { $0["detail"].string }
            XCTAssertFalse(plan.isEmpty, sql)
            for step in plan {
                XCTAssertFalse(["SCAN observations", "SCAN o", "SCAN trace_metadata", "SCAN m"].contains { step.hasPrefix($0) }, "\(sql): \(plan)")
            }
            XCTAssertTrue(plan.contains { $0.contains("observations_by_trace (epoch=? AND trace_id=?") || $0.contains("PRIMARY KEY (epoch=? AND trace_id=?") }, "\(sql): \(plan)")
        }
    } }

    /// SQLite's trace rows have no key by id (`TraceKeyIndex`): every
    /// statement that reads, updates or deletes trace rows by id seeks
    /// `traces_by_key (epoch, trace_id)`, and a join to them from an
    /// observation or metadata row names the epoch too.
    func testTraceRowsByIDSeekThroughTheirEpochKey() throws { try withOneTrace { store in
        let trace = SQLValue.blob(Conformance.trace.data)
        let one = try store.read { try TraceRows.one(Conformance.trace, in: $0) }
        var byID = [TraceRows.TraceKeys]()
        try store.read { s in try TraceRows.byID([Conformance.trace, TraceID(hex: "00000000000000000000000000000002")!], in: s) { byID.append($0) } }
        XCTAssertEqual(byID.count, 1)
        XCTAssertEqual(byID[0].args.count, 2, "the trace with no row is left out")
        let statements: [(String, [SQLValue])] = [
            ("SELECT record FROM traces WHERE \(one.sql)", one.args),
            ("SELECT trace_id, last_seq, revision, generation, epoch FROM traces WHERE \(byID[0].sql)", byID[0].args),
            ("DELETE FROM traces WHERE \(byID[0].sql)", byID[0].args),
            ("""
             WITH marks(epoch, trace_id, revision) AS (VALUES (?, ?, ?))
             UPDATE traces SET exported_revision = marks.revision FROM marks WHERE traces.epoch = marks.epoch AND traces.trace_id = marks.trace_id
             """, [one.args[0], trace, .int(1)]),
            ("SELECT o.record, t.user_id FROM observations o LEFT JOIN traces t ON t.epoch = o.epoch AND t.trace_id = o.trace_id ORDER BY o.start_time DESC LIMIT 50", []),
            ("SELECT traces.record FROM trace_metadata m JOIN traces ON traces.epoch = m.epoch AND traces.trace_id = m.trace_id WHERE m.key = ? AND m.value = ?",
             [.text("tenant"), .text("a")]),
        ]
        for (sql, args) in statements {
            let plan = try store.read { try $0.rows("EXPLAIN QUERY PLAN " + sql, args) }.compactMap { $0["detail"].string }
            XCTAssertFalse(plan.isEmpty, sql)
            XCTAssertFalse(plan.contains { $0.hasPrefix("SCAN traces") || $0.hasPrefix("SCAN t ") || $0 == "SCAN t" }, "\(sql): \(plan)")
            XCTAssertTrue(plan.contains { $0.contains("traces_by_key (epoch=? AND trace_id=?)") }, "\(sql): \(plan)")
        }
        let indexes = try store.read { try $0.rows("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'traces'", []) }.compactMap { $0["name"].string }
        XCTAssertFalse(indexes.contains { $0.hasPrefix("sqlite_autoindex_traces") }, "no key by trace id: \(indexes)")
    } }

    /// Key lists hold at most 100 traces: 100 make one list, 101 two.
    func testKeyListsHoldAHundredTraces() throws {
        let traces = (1...101).map { (TraceID(hex: String(format: "%032x", $0))!, epoch: Int64($0 % 3)) }
        for (count, lists) in [(100, [100]), (101, [100, 1])] {
            var sizes = [Int]()
            try TraceRows.keyLists(Array(traces.prefix(count))) { keys in
                XCTAssertEqual(keys.args.count % 2, 0)
                sizes.append(keys.args.count / 2)
                XCTAssertEqual(keys.args.prefix(keys.args.count / 2).compactMap(\.int).count, keys.args.count / 2, "the epochs first")
            }
            XCTAssertEqual(sizes, lists, "\(count) traces")
        }
    }

    /// An observation by its id alone: each step to the next epoch, and
    /// each probe, is a seek in the epoch index; no step scans the table.
    func testObservationByIDSeeksEachEpoch() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/t.sqlite")
        defer { store.close() }
        let plan = try store.read { try $0.rows("EXPLAIN QUERY PLAN " + SQLiteStore.observationByID, [.blob(Data(count: 8))]) }.compactMap { $0["detail"].string }
        XCTAssertTrue(plan.contains { $0.contains("USING COVERING INDEX observations_by_epoch_span (epoch>?)") }, "\(plan)")
        XCTAssertTrue(plan.contains { $0.contains("USING INDEX observations_by_epoch_span (epoch=? AND span_id=?)") }, "\(plan)")
        XCTAssertFalse(plan.contains { $0.hasPrefix("SCAN o") || $0.hasPrefix("SCAN observations") }, "\(plan)")
    }
}
