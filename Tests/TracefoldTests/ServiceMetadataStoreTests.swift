import Foundation
import Logging
import TracefoldFold
import TracefoldModel
import TracefoldStore
import XCTest

/// A trace's `resourceAttributes` and `scope` metadata (its root's resource
/// and scope, SPEC §2.4) are stored once per distinct pair and referred to
/// from the trace row, not as metadata rows of every trace; the metadata
/// filters and the summary's grouping on them still see each trace's values
/// as its record shows them, on both stores, and a store whose traces have
/// rows of these keys from before gets references for them when it opens.
final class ServiceMetadataStoreTests: XCTestCase {
    let logger = Logger(label: "test")

    func testResourceAndScopeAreFilteredAndGroupedAsTheRecordsShowIt() throws {
        typealias C = Conformance
        let svc = Resource(attributes: [Attribute("service.name", .string("svc")), Attribute("telemetry.sdk.language", .string("python"))])
        let other = Resource(attributes: [Attribute("service.name", .string("other"))])
        let otherScope = InstrumentationScope(name: "my-lib", version: "2.0")
        let a = TraceID(high: 0x5E41, low: 1), b = TraceID(high: 0x5E41, low: 2), c = TraceID(high: 0x5E41, low: 3)
        let rootless = TraceID(high: 0x5E41, low: 4), scoped = TraceID(high: 0x5E41, low: 5)
        let spans: [(Resource, InstrumentationScope, Span)] = [
            (svc, C.sdk, C.S("root", id: 1, 0, 10, ["langfuse.trace.metadata.tenant": .string("t1")], trace: a)),
            (svc, C.sdk, C.S("child", id: 2, parent: 1, 1, 9, [:], trace: a)),
            (other, C.sdk, C.S("root", id: 3, 0, 10, ["langfuse.trace.metadata.tenant": .string("t1")], trace: b)),
            // A trace's own metadata of the key wins over its root's (SPEC §3.5).
            (svc, C.sdk, C.S("root", id: 4, 0, 10, ["langfuse.trace.metadata.resourceAttributes": .string("custom")], trace: c)),
            // No root: the earliest span's resource and scope stand in.
            (other, C.sdk, C.S("orphan", id: 5, parent: 99, 0, 10, [:], trace: rootless)),
            (svc, otherScope, C.S("root", id: 6, 0, 10, [:], trace: scoped)),
        ]
        var byResource = [Resource: [(InstrumentationScope, Span)]]()
        for (r, s, span) in spans { byResource[r, default: []].append((s, span)) }
        let batch = SpanBatch(resourceSpans: byResource.map { r, list in
            ResourceSpans(resource: r, scopeSpans: list.map { ScopeSpans(scope: $0.0, spans: [$0.1]) })
        })
        let ids = [a, b, c, rootless, scoped]
        for backend in StoreBackend.available {
            let dir = Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let url = backend == .postgres ? try StoreBackend.freshPostgresDatabase() : dir + "/t.sqlite"
            func open() throws -> any RecordStore {
                backend == .postgres ? try PostgresStore(url: url, logger: logger) : try SQLiteStore(path: url)
            }
            var store = try open()
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: logger)
            _ = try folder.consume(batch)

            // What each record says, as a metadata row's text would hold it.
            var shown = [String: [TraceID: String]]()
            for id in ids {
                let record = try JSONParser.parse(try XCTUnwrap(store.traceRecord(id)))
                for key in ["resourceAttributes", "scope"] {
                    guard let v = record["metadata"]?[key] else { continue }
                    shown[key, default: [:]][id] = v.stringValue ?? JSONWriter.serialize(v)
                }
            }
            let svcText = try XCTUnwrap(shown["resourceAttributes"]?[a]), otherText = try XCTUnwrap(shown["resourceAttributes"]?[b])
            let sdkText = try XCTUnwrap(shown["scope"]?[a]), otherScopeText = try XCTUnwrap(shown["scope"]?[scoped])
            XCTAssertEqual(shown["resourceAttributes"], [a: svcText, b: otherText, c: "custom", rootless: otherText, scoped: svcText], "\(backend)")
            XCTAssertEqual(shown["scope"], [a: sdkText, b: sdkText, c: sdkText, rootless: sdkText, scoped: otherScopeText], "\(backend)")
            XCTAssertTrue(svcText.contains("\"svc\"") && otherText.contains("\"other\"") && otherScopeText.contains("my-lib"), "\(backend)")

            func check(_ what: String) throws {
                let rows = try store.read { s in
                    try s.rows("SELECT COUNT(*) AS n FROM trace_metadata WHERE key IN ('resourceAttributes', 'scope')", [])
                }
                XCTAssertEqual(rows.first?["n"].int, 0, "\(backend) \(what): no metadata rows of these keys")
                func found(_ key: String, _ op: TraceFilter.MetadataOperator, _ value: String, alsoName: Bool) throws -> Set<TraceID> {
                    try listedTraces(store, [(key, op, value)], name: alsoName ? "root" : nil, "\(backend) \(what) \(key) \(op) \(value)")
                }
                for alsoName in [false, true] {
                    let w = "\(backend) \(what), with a name filter: \(alsoName)"
                    let named = { (all: Set<TraceID>) in alsoName ? all.subtracting([rootless]) : all }
                    XCTAssertEqual(try found("resourceAttributes", .equals, svcText, alsoName: alsoName), [a, scoped], w)
                    XCTAssertEqual(try found("resourceAttributes", .equals, otherText, alsoName: alsoName), named([b, rootless]), w)
                    XCTAssertEqual(try found("resourceAttributes", .equals, "custom", alsoName: alsoName), [c], w)
                    XCTAssertEqual(try found("resourceAttributes", .equals, "svc", alsoName: alsoName), [], "\(w): a part is not the value")
                    XCTAssertEqual(try found("resourceAttributes", .contains, "svc", alsoName: alsoName), [a, scoped], w)
                    XCTAssertEqual(try found("resourceAttributes", .contains, "other", alsoName: alsoName), named([b, rootless]), w)
                    XCTAssertEqual(try found("scope", .equals, otherScopeText, alsoName: alsoName), [scoped], w)
                    XCTAssertEqual(try found("scope", .contains, "langfuse-sdk", alsoName: alsoName), named([a, b, c, rootless]), w)
                }
                // Both keys together; and beside an equality on another key,
                // whose index gives the page (the list's fast path).
                for (filters, expected): ([(key: String, op: TraceFilter.MetadataOperator, value: String)], Set<TraceID>) in [
                    ([("scope", .equals, sdkText), ("resourceAttributes", .contains, "svc")], [a]),
                    ([("tenant", .equals, "t1"), ("resourceAttributes", .contains, "svc")], [a]),
                    ([("resourceAttributes", .equals, otherText), ("tenant", .equals, "t1")], [b]),
                    ([("tenant", .equals, "t1"), ("scope", .equals, otherScopeText)], []),
                ] {
                    XCTAssertEqual(try listedTraces(store, filters, "\(backend) \(what) \(filters)"), expected, "\(backend) \(what) \(filters)")
                }

                for (key, expected) in [("resourceAttributes", [svcText: 2, otherText: 2, "custom": 1]), ("scope", [sdkText: 4, otherScopeText: 1])] {
                    var counts = [String: Int]()
                    for g in try store.summary(groupBy: .metadata(key), fromUnixNano: nil, toUnixNano: nil) {
                        counts[g.group.stringValue ?? "null", default: 0] += g.traces
                    }
                    XCTAssertEqual(counts, expected, "\(backend) \(what): grouped by \(key)")
                }
            }
            try check("as written")
            let pairs = try store.read { s in try s.rows("SELECT COUNT(*) AS n FROM service_metadata", []) }
            XCTAssertEqual(pairs.first?["n"].int, 4, "\(backend): one row a distinct pair, not a row a trace")

            // As a store written before kept them: metadata rows, no references.
            try store.write { s in
                let join = backend == .sqlite ? "m.epoch = t.epoch AND m.trace_id = t.trace_id" : "m.trace_id = t.trace_id"
                for (key, column) in [("resourceAttributes", "resource_attributes"), ("scope", "scope")] {
                    try s.execute(
                        """
                        INSERT INTO trace_metadata (epoch, trace_id, key, value, start_time)
                        SELECT t.epoch, t.trace_id, ?, s.\(column), t.start_time FROM traces t JOIN service_metadata s ON s.id = t.service_metadata
                        WHERE s.\(column) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM trace_metadata m WHERE \(join) AND m.key = ?)
                        """, [.text(key), .text(key)])
                }
                try s.execute("UPDATE traces SET service_metadata = NULL", [])
                try s.execute("DELETE FROM service_metadata", [])
                if backend == .sqlite {
                    try s.execute("DROP INDEX traces_by_service", [])
                    try s.execute("ALTER TABLE traces DROP COLUMN service_metadata", [])
                    try s.execute("DROP TABLE service_metadata", [])
                    try s.execute("DELETE FROM grdb_migrations WHERE identifier = 'v17-service-metadata'", [])
                }
            }
            let legacy = try store.read { s in try s.rows("SELECT COUNT(*) AS n FROM trace_metadata WHERE key IN ('resourceAttributes', 'scope')", []) }
            XCTAssertEqual(legacy.first?["n"].int, 10, "\(backend): the rows a store written before holds")
            store.close()
            store = try open()
            defer { store.close() }
            try check("after opening a store written before")
            for id in ids {
                XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(store.traceRecord(id)))["metadata"]?["scope"].map { $0.stringValue ?? JSONWriter.serialize($0) },
                               shown["scope"]?[id], "\(backend): records unchanged")
            }
        }
    }

    /// A filter names the pairs it matches as values up to
    /// `ServiceMetadata.mostNamedPairs` (1,000) and reads them through a
    /// subquery past it; at the limit and one past it, the same traces.
    func testAFilterMatchingManyPairsFindsEveryTrace() throws {
        typealias C = Conformance
        func batch(_ range: Range<Int>) -> SpanBatch {
            SpanBatch(resourceSpans: range.map { i in
                ResourceSpans(resource: Resource(attributes: [Attribute("service.name", .string("many-\(i)"))]), scopeSpans: [
                    ScopeSpans(scope: C.sdk, spans: [C.S("root", id: UInt64(i + 1), UInt64(i), UInt64(i + 1), [:], trace: TraceID(high: 0x3A17, low: UInt64(i)))])
                ])
            })
        }
        try StoreBackend.eachStore { backend, store, _ in
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: logger)
            var f = TraceFilter()
            f.metadata = [("resourceAttributes", .contains, "many-")]
            f.limit = 5
            for (range, why) in [(0..<1_000, "at the limit"), (1_000..<1_001, "one past it")] {
                _ = try folder.consume(batch(range))
                let (records, total) = try store.traces(f)
                XCTAssertEqual(total, range.upperBound, "\(backend) \(why)")
                // Newest first: the last trace made starts last.
                XCTAssertEqual(try records.first.map { try JSONParser.parse($0)["id"]?.stringValue }, TraceID(high: 0x3A17, low: UInt64(range.upperBound - 1)).hex, "\(backend) \(why)")
                XCTAssertEqual(records.count, 5, "\(backend) \(why)")
            }
        }
    }
}
