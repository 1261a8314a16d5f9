import Compression
import Foundation
import Logging
import TracefoldFold
import TracefoldModel
import TracefoldStore
import XCTest

/// The store's big columns are compressed against dictionaries of the rows
/// stored before them (`RowCompression`).
final class RowCompressionTests: XCTestCase {
    /// Rows alike as stored spans are: the same keys and prompt, some
    /// values varied.
    func rows(_ n: Int, from start: Int = 0) -> [[UInt8]] {
        (start..<start + n).map { i in
            Array(
                #"{"name":"handle-request","input":{"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise order \#(i) for the customer"}]},"metadata":{"tenant":"acme-\#(i % 7)","step":\#(i)}}"#
                    .utf8)
        }
    }

    func testADictionaryDoublesToTheWindowThenServesRotateEveryRowsAndNoMore() throws {
        let c = RowCompression(rotateEvery: 100)
        XCTAssertNil(c.compress([], column: .spanBody).dictionary)
        let first = try XCTUnwrap(c.compress(rows(2), column: .spanBody).dictionary)
        XCTAssertEqual(Array(first.content), Array(rows(2).joined()), "the first commit's rows, oldest first")
        // Rows of the same length: a third keeps it, a fourth doubles it.
        XCTAssertEqual(c.compress(rows(1, from: 2), column: .spanBody).dictionary, first)
        let second = try XCTUnwrap(c.compress(rows(1, from: 3), column: .spanBody).dictionary)
        XCTAssertEqual(Array(second.content), Array(rows(4).joined()))

        // It keeps doubling until it holds the window, each time the last
        // rows written.
        var current = second, next = 4
        while current.content.count < RowCompression.windowSize {
            let d = try XCTUnwrap(c.compress(rows(3, from: next), column: .spanBody).dictionary)
            next += 3
            guard d != current else { continue }
            XCTAssertTrue(d.content.count >= 2 * current.content.count || d.content.count == RowCompression.windowSize, "\(d.content.count) after \(current.content.count)")
            XCTAssertEqual(Array(d.content.suffix(rows(3, from: next - 3).joined().count)), Array(rows(3, from: next - 3).joined()))
            current = d
        }
        XCTAssertEqual(current.content.count, RowCompression.windowSize)

        // Full: it serves 100 rows in all (3 made it, then 32 commits of 3:
        // 99), and the commit that would pass 100 gets a new one.
        var served = 3
        while true {
            let d = try XCTUnwrap(c.compress(rows(3, from: next), column: .spanBody).dictionary)
            next += 3
            if d != current { break }
            served += 3
        }
        XCTAssertEqual(served, 99)
        // Each column keeps its own.
        XCTAssertEqual(c.compress(rows(1), column: .traceRecord).dictionary.map { Array($0.content) }, rows(1)[0])
        // Bytes that zstd would take for a dictionary of its own format
        // lose their first byte.
        XCTAssertEqual(c.compress([[0x37, 0xA4, 0x30, 0xEC, 1, 2]], column: .observationRecord).dictionary.map { Array($0.content) }, [0xA4, 0x30, 0xEC, 1, 2])
    }

    /// A dictionary made after a commit holds the last window of the rows
    /// written, oldest first, whether the commit's rows fill less than a
    /// window, many windows, or one row passes the window on its own (a row
    /// counts with at most its last window of bytes).
    func testADictionaryIsTheLastWindowOfTheRowsWhateverTheCommitsSizes() throws {
        let c = RowCompression(rotateEvery: 0)
        let window = RowCompression.windowSize
        var written = [UInt8]()
        func check(_ commit: [[UInt8]], _ what: String) throws {
            let d = try XCTUnwrap(c.compress(commit, column: .spanBody).dictionary, what)
            for row in commit { written += row.suffix(window) }
            let expected = Array(written.suffix(window))
            // Not XCTAssertEqual: it would print two 16 KiB arrays.
            XCTAssertTrue(Array(d.content) == expected, "\(what): \(d.content.count) bytes, not the \(expected.count) expected")
            // Entropy tables before the content: zstd's dictionary format.
            XCTAssertTrue(d.isFinalized && d.bytes.starts(with: [0x37, 0xA4, 0x30, 0xEC]), what)
        }
        try check(rows(3), "less than a window")
        try check(rows(200, from: 3), "many windows in one commit")
        try check(rows(2, from: 203), "two rows after a full window")
        try check([[UInt8](repeating: 7, count: window + 10)] + rows(1, from: 205), "a row longer than the window, then one more")
        try check([[UInt8](repeating: 9, count: 2 * window)], "one row of two windows")
        try check(rows(1, from: 206), "one row after it")
    }

    /// Folded spans are stored compressed in all three columns; each reads
    /// back, with the dictionary read from the store by a reader that has
    /// never seen it, and takes a fraction of its size.
    func testFoldedRowsReadBackWithDictionariesFromTheStore() throws {
        try StoreBackend.eachStore { backend, store, _ in
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
            let spans: [Span] = (1...40).map { (n: Int) -> Span in
                let input = #"{"messages":[{"role":"user","content":"Summarise order \#(n) for the customer"}]}"#
                let attributes: [String: AttributeValue] = [
                    "langfuse.observation.input": .string(input), "langfuse.trace.metadata.tenant": .string("acme"),
                    "langfuse.observation.metadata.step": .int(Int64(n)),
                ]
                let parent: UInt64? = n == 1 ? nil : 1
                return Conformance.S("step \(n)", id: UInt64(n), parent: parent, UInt64(n), UInt64(n + 10), attributes)
            }
            _ = try folder.consume(Fixtures.batch(spans))
            let before = (try store.observationRecords(of: Conformance.trace), try store.traceRecord(Conformance.trace))
            XCTAssertEqual(before.0.count, 40, "\(backend)")

            let fresh = RowCompression()
            var stored = 0, expanded = 0
            // Each table, its compressed column, and the first byte of what it holds.
            let columns: [(String, String, UInt8)] = [("spans", "body", 0x0A), ("observations", "record", 2), ("traces", "record", 0x7B)]
            for (table, column, first) in columns {
                let values = try store.read { s in try s.rows("SELECT \(column) AS v FROM \(table)", []).map { $0["v"] } }
                XCTAssertEqual(values.count, table == "traces" ? 1 : 40, "\(backend) \(table)")
                for value in values {
                    guard case .blob(let data) = value else { return XCTFail("\(backend) \(table): \(value)") }
                    XCTAssertEqual(data.first, 0xDC, "\(backend) \(table)")
                    let bytes = try store.read { try fresh.expand(data, in: $0) }
                    XCTAssertEqual(bytes.first, first, "\(backend) \(table)")
                    XCTAssertEqual(bytes, try store.read { try $0.rowCompression.expand(data, in: $0) }, "\(backend) \(table)")
                    stored += data.count
                    expanded += bytes.count
                }
            }
            XCTAssertLessThan(stored * 3, expanded, "\(backend): \(stored) bytes stored for \(expanded)")

            // A trace rebuilt from its stored spans (another process's
            // cache, here an empty one) folds a late span onto the same
            // records.
            let other = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
            _ = try other.consume(Fixtures.batch([Conformance.S("late", id: 41, parent: 1, 50, 60)]))
            let after = try store.observationRecords(of: Conformance.trace)
            XCTAssertEqual(after.count, 41, "\(backend)")
            XCTAssertEqual(Set(before.0).subtracting(after), [], "\(backend): the 40 records are unchanged")
            // The first folder catches up by replaying the stored span.
            XCTAssertEqual(try other.allEntries(of: Conformance.trace), try folder.allEntries(of: Conformance.trace), "\(backend)")
        }
    }

    /// A compressed row whose dictionary is gone, or that is cut short,
    /// is an error that says so, not a wrong or empty record.
    func testAMissingDictionaryOrACutRowIsAnError() throws {
        try StoreBackend.eachStore { backend, store, _ in
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
            _ = try folder.consume(Fixtures.batch([Conformance.S("root", id: 1, 0, 10)]))
            let data = try XCTUnwrap(try store.read { try $0.rows("SELECT record FROM observations", []) }.first?["record"].data)
            try store.write {
                try $0.execute("UPDATE observations SET record = ?", [.blob(data.prefix(data.count - 3))])
            }
            XCTAssertThrowsError(try store.observation(Conformance.id(1)), "\(backend)") { error in
                XCTAssertTrue("\(error)".contains("does not inflate"), "\(backend): \(error)")
            }
            try store.write { try $0.execute("DELETE FROM row_dictionaries", []) }
            XCTAssertThrowsError(try store.read { try RowCompression().expand(data, in: $0) }, "\(backend)") { error in
                XCTAssertTrue("\(error)".contains("is missing from the store"), "\(backend): \(error)")
            }
        }
    }

    /// An SQLite file reopened reads what it stored compressed.
    func testAReopenedSQLiteFileReadsItsCompressedRows() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = try SQLiteStore(path: dir + "/t.sqlite")
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
        _ = try folder.consume(Fixtures.batch([Conformance.S("root", id: 1, 0, 10), Conformance.S("child", id: 2, parent: 1, 1, 5)]))
        let observations = try store.observationRecords(of: Conformance.trace)
        let trace = try XCTUnwrap(try store.traceRecord(Conformance.trace))
        store.close()
        store = try SQLiteStore(path: dir + "/t.sqlite")
        defer { store.close() }
        XCTAssertEqual(try store.observationRecords(of: Conformance.trace), observations)
        XCTAssertEqual(try store.traceRecord(Conformance.trace), trace)
        XCTAssertTrue(trace.contains(#""name":"root""#), trace)
    }

    /// The writer connection has its larger page cache; the readers keep
    /// SQLite's default, so that a pool of them does not hold 16 MiB each.
    func testOnlyTheWriterHasTheLargerPageCache() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/t.sqlite")
        defer { store.close() }
        XCTAssertEqual(try store.write { try $0.rows("PRAGMA cache_size", []).first?["cache_size"] }, .int(-Int64(SQLiteStore.writerCacheKiB)))
        XCTAssertEqual(try store.read { try $0.rows("PRAGMA cache_size", []).first?["cache_size"] }, .int(-2000))
    }
}

/// A span's bytes live in its observation's row, and `spans` is a view of
/// them; a store made before moves its spans there when it is opened.
final class SpansInObservationsTests: XCTestCase {
    func testAStoreWithASpansTableMovesItsSpansIntoTheirObservationsRows() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var opens: [(StoreBackend, () throws -> any RecordStore)] = [(.sqlite, { try SQLiteStore(path: dir + "/t.sqlite") })]
        if StoreBackend.postgresURL != nil {
            let url = try StoreBackend.freshPostgresDatabase()
            opens.append((.postgres, { try PostgresStore(url: url, logger: Logger(label: "test")) }))
        }
        for (backend, open) in opens {
            var store = try open()
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
            let spans: [Span] = (1...5).map { (n: UInt64) -> Span in
                let parent: UInt64? = n == 1 ? nil : 1
                return Conformance.S("s\(n)", id: n, parent: parent, n, n + 9)
            }
            _ = try folder.consume(Fixtures.batch(spans))
            let records = try store.observationRecords(of: Conformance.trace)
            XCTAssertEqual(try store.counts().spans, 5, "\(backend)")

            // The layout before: a spans table, observations without the span.
            let blob = backend == .sqlite ? "BLOB" : "bytea"
            try store.write { s in
                try s.execute("CREATE TABLE spans_before (trace_id \(blob) NOT NULL, span_id \(blob) NOT NULL, seq BIGINT NOT NULL, received_at BIGINT NOT NULL, body \(blob) NOT NULL)", [])
                try s.execute("INSERT INTO spans_before SELECT trace_id, span_id, seq, received_at, body FROM spans", [])
                try s.execute("DROP VIEW spans", [])
                try s.execute("ALTER TABLE spans_before RENAME TO spans", [])
                if backend == .postgres { try s.execute("DROP INDEX observations_by_seq", []) }
                for column in ["seq", "received_at", "body"] { try s.execute("ALTER TABLE observations DROP COLUMN \(column)", []) }
                if backend == .sqlite { try s.execute("DELETE FROM grdb_migrations WHERE identifier = 'v13-spans-in-observations'", []) }
            }
            store.close()

            store = try open()
            defer { store.close() }
            let kind = try store.read { s in
                backend == .sqlite
                    ? try s.rows("SELECT type AS t FROM sqlite_master WHERE name = 'spans'", []).first?["t"]
                    : try s.rows("SELECT table_type AS t FROM information_schema.tables WHERE table_name = 'spans' AND table_schema = current_schema()", []).first?["t"]
            }
            XCTAssertEqual(kind, .text(backend == .sqlite ? "view" : "VIEW"), "\(backend)")
            XCTAssertEqual(try store.counts().spans, 5, "\(backend)")
            XCTAssertEqual(try store.observationRecords(of: Conformance.trace), records, "\(backend)")
            // A fold with an empty cache replays the moved spans.
            let other = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
            _ = try other.consume(Fixtures.batch([Conformance.S("late", id: 6, parent: 1, 20, 30)]))
            let after = try store.observationRecords(of: Conformance.trace)
            XCTAssertEqual(after.count, 6, "\(backend)")
            XCTAssertEqual(Set(records).subtracting(after), [], "\(backend): the five records are unchanged")
            XCTAssertTrue(try XCTUnwrap(try store.traceRecord(Conformance.trace)).contains(Conformance.id(6).hex), "\(backend)")
        }
    }
}
