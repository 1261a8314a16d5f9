import Foundation
import Logging
import TracefoldFold
import TracefoldModel
import TracefoldStore
import XCTest

/// SPEC §5.4: a trace's `_user` is its userId unless set otherwise. The
/// store keeps a `_user` metadata row only where it says something else
/// (userId is indexed already, in `traces_by_user`), and the metadata
/// filters and the summary's grouping on `_user` still see every trace's
/// `_user` as its record shows it, on both stores.
final class UserMetadataStoreTests: XCTestCase {
    let logger = Logger(label: "test")

    func testUnderscoreUserIsFilteredAndGroupedAsTheRecordsShowIt() throws {
        typealias C = Conformance
        let long = String(repeating: "x", count: TraceRow.maxUserScalars + 1)
        let atLimit = String(repeating: "y", count: TraceRow.maxUserScalars)
        let derived = TraceID(high: 0x05E5, low: 1), explicit = TraceID(high: 0x05E5, low: 2), tooLong = TraceID(high: 0x05E5, low: 3)
        let none = TraceID(high: 0x05E5, low: 4), same = TraceID(high: 0x05E5, low: 5), limit = TraceID(high: 0x05E5, low: 6)
        let traces: [(TraceID, [String: AttributeValue])] = [
            (derived, ["user.id": .string("u-1")]),
            (explicit, ["user.id": .string("u-2"), "langfuse.trace.metadata._user": .string("vip")]),
            (tooLong, ["user.id": .string(long)]),
            (none, [:]),
            (same, ["user.id": .string("u-5"), "langfuse.trace.metadata._user": .string("u-5")]),
            (limit, ["user.id": .string(atLimit)]),
        ]
        let batch = SpanBatch(resourceSpans: [ResourceSpans(resource: C.r0, scopeSpans: [ScopeSpans(scope: C.sdk, spans: traces.enumerated().map { i, t in
            C.S("root", id: UInt64(i + 1), 0, 10, t.1, trace: t.0)
        })])])
        for backend in StoreBackend.available {
            let dir = Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try backend.makeStore(in: dir)
            defer { store.close() }
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: logger)
            _ = try folder.consume(batch)

            // What each record says its `_user` is.
            var shown = [TraceID: String]()
            for (id, _) in traces {
                let record = try JSONParser.parse(try XCTUnwrap(store.traceRecord(id)))
                if let user = record["metadata"]?["_user"]?.stringValue { shown[id] = user }
            }
            XCTAssertEqual(shown, [derived: "u-1", explicit: "vip", same: "u-5", limit: atLimit], "\(backend)")
            // Only the explicit `_user` that is not the userId has a row.
            let rows = try store.read { s in try s.rows("SELECT value FROM trace_metadata WHERE key = ?", [.text("_user")]) }
            XCTAssertEqual(rows.map { $0["value"].string }, ["vip"], "\(backend)")

            func found(_ op: TraceFilter.MetadataOperator, _ value: String, alsoName: Bool = false) throws -> Set<TraceID> {
                try listedTraces(store, [("_user", op, value)], name: alsoName ? "root" : nil, "\(backend) \(op) \(value)")
            }
            for alsoName in [false, true] {
                let what = "\(backend), with a name filter: \(alsoName)"
                XCTAssertEqual(try found(.equals, "u-1", alsoName: alsoName), [derived], what)
                XCTAssertEqual(try found(.equals, "vip", alsoName: alsoName), [explicit], what)
                XCTAssertEqual(try found(.equals, "u-2", alsoName: alsoName), [], "\(what): the userId of a trace whose _user is another")
                XCTAssertEqual(try found(.equals, "u-5", alsoName: alsoName), [same], what)
                XCTAssertEqual(try found(.equals, atLimit, alsoName: alsoName), [limit], "\(what): a userId at the limit is copied")
                XCTAssertEqual(try found(.equals, long, alsoName: alsoName), [], "\(what): one past the limit is not")
                XCTAssertEqual(try found(.contains, "u-", alsoName: alsoName), [derived, same], what)
                XCTAssertEqual(try found(.contains, "ip", alsoName: alsoName), [explicit], what)
            }

            let groups = try store.summary(groupBy: .metadata("_user"), fromUnixNano: nil, toUnixNano: nil)
            var counts = [String: Int]()
            for g in groups { counts[g.group.stringValue ?? "null", default: 0] += g.traces }
            XCTAssertEqual(counts, ["u-1": 1, "vip": 1, "u-5": 1, atLimit: 1, "null": 2], "\(backend)")
        }
    }
}
