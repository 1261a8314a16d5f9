import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import TracefoldExplorer

final class ExplorerTests: XCTestCase {
    static let assetsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/TracefoldExplorer/assets")

    func testEmbeddedAssetsEqualTheFiles() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.assetsDirectory.path).sorted()
        XCTAssertEqual(ExplorerAssets.files.keys.sorted(), names, "run scripts/embed-explorer.sh")
        for name in names {
            let file = try String(contentsOf: Self.assetsDirectory.appendingPathComponent(name), encoding: .utf8)
            XCTAssertEqual(ExplorerAssets.files[name], file, "\(name) differs: run scripts/embed-explorer.sh")
        }
    }

    static func app() -> some ApplicationProtocol {
        let router = Router()
        Explorer().register(on: router)
        return Application(router: router)
    }

    func testEveryPageIsTheDocumentWithAStrictPolicy() async throws {
        try await Self.app().test(.router) { client in
            for path in ["/ui", "/ui/", "/ui/traces/0af7651916cd43dd8448eb211c80319c", "/ui/sessions/chat%2Fone", "/ui/dashboard?groupBy=model"] {
                let r = try await client.execute(uri: path, method: .get)
                XCTAssertEqual(r.status, .ok, path)
                XCTAssertEqual(r.headers[.contentType], "text/html; charset=utf-8", path)
                let body = String(buffer: r.body)
                XCTAssertTrue(body.contains(#"<script type="module" src="/ui/assets/app.js"></script>"#), path)
                let csp = r.headers[.contentSecurityPolicy] ?? ""
                XCTAssertTrue(csp.contains("script-src 'self'"), csp)
                XCTAssertFalse(csp.contains("unsafe-inline"), "nothing inline may run: \(csp)")
                XCTAssertEqual(r.headers[.xContentTypeOptions], "nosniff")
            }
            let r = try await client.execute(uri: "/ui/nowhere", method: .get)
            XCTAssertEqual(r.status, .notFound)
        }
    }

    func testAssetsCarryTheirTypeAndRevalidate() async throws {
        try await Self.app().test(.router) { client in
            for (name, type) in [("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8"), ("favicon.svg", "image/svg+xml")] {
                let r = try await client.execute(uri: "/ui/assets/\(name)", method: .get)
                XCTAssertEqual(r.status, .ok, name)
                XCTAssertEqual(r.headers[.contentType], type, name)
                XCTAssertEqual(String(buffer: r.body), ExplorerAssets.files[name])
                let etag = try XCTUnwrap(r.headers[.eTag])
                let again = try await client.execute(uri: "/ui/assets/\(name)", method: .get, headers: [.ifNoneMatch: etag])
                XCTAssertEqual(again.status, .notModified, name)
                XCTAssertEqual(again.body.readableBytes, 0)
                let other = try await client.execute(uri: "/ui/assets/\(name)", method: .get, headers: [.ifNoneMatch: "\"0\""])
                XCTAssertEqual(other.status, .ok, "another version's tag gets the file")
            }
            for name in ["missing.js", "..%2Fapp.js", "%2E%2E"] {
                let r = try await client.execute(uri: "/ui/assets/\(name)", method: .get)
                XCTAssertEqual(r.status, .notFound, name)
            }
        }
    }

    /// Every module the document loads, and every module they import, is
    /// embedded: a missing one would be a 404 and a blank page.
    func testEveryImportedModuleIsEmbedded() throws {
        let pattern = try NSRegularExpression(pattern: #"(?:from|src=|href=)\s*['"](?:\./|/ui/assets/)([A-Za-z0-9_.-]+)['"]"#)
        for (name, text) in ExplorerAssets.files where name.hasSuffix(".js") || name.hasSuffix(".html") {
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let target = String(text[Range(m.range(at: 1), in: text)!])
                XCTAssertNotNil(ExplorerAssets.files[target], "\(name) loads \(target), which is not embedded")
            }
        }
    }
}
