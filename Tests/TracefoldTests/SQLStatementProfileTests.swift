import Foundation
import Logging
import TracefoldFold
import TracefoldModel
@testable import TracefoldStore
import XCTest

/// `SQLStatementProfile` (the pipeline bench's `--sql-profile`): the time
/// SQLite spends in each statement, summed by the statement's start.
final class SQLStatementProfileTests: XCTestCase {
    func testAFoldCommitsStatementsAreCountedOncePerRunByTheirStart() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let profile = SQLStatementProfile()
        let store = try SQLiteStore(path: dir + "/t.sqlite", statementProfile: profile)
        defer { store.close() }
        // The schema's statements are not the fold's.
        profile.reset()
        XCTAssertEqual(profile.totals, [])
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
        // Three spans of one trace, with two trace metadata keys.
        let metadata: [String: AttributeValue] = ["langfuse.trace.metadata.tenant": .string("a"), "langfuse.trace.metadata.plan": .string("p")]
        _ = try folder.consume(Fixtures.batch([
            Conformance.S("root", id: 1, 0, 10, metadata), Conformance.S("a", id: 2, parent: 1, 1, 5), Conformance.S("b", id: 3, parent: 1, 2, 6),
        ]))
        let totals = profile.totals
        func runs(_ start: String) -> Int? { totals.first { $0.statement.hasPrefix(start) }?.runs }
        // One row a span, one a trace, one a metadata key (the two sent and
        // the root's `attributes`); the fold's one transaction.
        XCTAssertEqual(runs("INSERT INTO observations("), 3)
        XCTAssertEqual(runs("INSERT INTO traces("), 1)
        let keys = try store.read { try $0.rows("SELECT key FROM trace_metadata ORDER BY key", []) }.compactMap { $0["key"].string }
        XCTAssertEqual(keys, ["attributes", "plan", "tenant"])
        XCTAssertEqual(runs("INSERT INTO trace_metadata("), keys.count)
        XCTAssertEqual(runs(SQLiteStore.transactionStatement), 1)
        for entry in totals {
            XCTAssertLessThanOrEqual(entry.statement.count, SQLStatementProfile.keyLength)
            XCTAssertFalse(entry.statement.contains("\n") || entry.statement.contains("  "), "whitespace collapsed: \(entry.statement)")
            XCTAssertGreaterThanOrEqual(entry.seconds, 0)
        }
        XCTAssertEqual(totals.map(\.seconds), totals.map(\.seconds).sorted(by: >), "the most time first")
        // Reads are statements too, on the readers' connections.
        _ = try store.read { try $0.rows("SELECT COUNT(*) AS n FROM spans", []) }
        XCTAssertEqual(profile.totals.first { $0.statement == "SELECT COUNT(*) AS n FROM spans" }?.runs, 1)
    }

    func testAStatementsKeyIsItsStartWithWhitespaceCollapsed() {
        XCTAssertEqual(SQLStatementProfile.key("  SELECT  a,\n   b\tFROM t "), "SELECT a, b FROM t")
        let long = "INSERT INTO t(" + (0..<40).map { "column\($0)" }.joined(separator: ", ") + ") VALUES (?)"
        XCTAssertEqual(SQLStatementProfile.key(long).count, SQLStatementProfile.keyLength)
        XCTAssertEqual(SQLStatementProfile.key(long), String(long.prefix(SQLStatementProfile.keyLength)))
    }
}
