import Foundation
import Logging
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

    /// A new, empty store; SQLite's file goes in `dir`.
    func makeStore(in dir: String) throws -> any RecordStore {
        switch self {
        case .sqlite: return try SQLiteStore(path: dir + "/t.sqlite")
        case .postgres: return try PostgresStore(url: Self.freshPostgresDatabase(), logger: Logger(label: "test"))
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
}
