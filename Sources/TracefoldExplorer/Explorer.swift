import HTTPTypes
import Hummingbird
import NIOCore

/// The trace explorer (`/ui/`): static HTML, CSS and JavaScript modules,
/// embedded in the binary (`ExplorerAssets`), that read the public JSON
/// endpoints. It sits behind the front door like every other route, so
/// with auth on it needs the intake's credentials (the 401 carries
/// `WWW-Authenticate: Basic`, so a browser asks for them).
public struct Explorer: Sendable {
    public init() {}

    /// The pages; each answers the same document, and the script renders
    /// the page its URL names.
    static let pages = ["/ui", "/ui/traces/:id", "/ui/sessions/:id", "/ui/dashboard"]

    public func register(on router: Router<BasicRequestContext>) {
        for page in Self.pages {
            router.get(RouterPath(page)) { request, _ in ExplorerAssets.response(for: "index.html", request: request) }
        }
        router.get("/ui/assets/:name") { request, context in
            ExplorerAssets.response(for: context.parameters.get("name") ?? "", request: request)
        }
    }
}

/// The embedded files, with what a browser needs to cache and trust them.
enum ExplorerAssets {
    struct Asset: Sendable {
        var body: ByteBuffer
        var contentType: String
        var etag: String
    }

    static let assets: [String: Asset] = files.reduce(into: [:]) { out, file in
        let bytes = Array(file.value.utf8)
        out[file.key] = Asset(body: ByteBuffer(bytes: bytes), contentType: contentType(of: file.key), etag: "\"\(fnv1a(bytes))\"")
    }

    /// Scripts, styles, images and fetches from this origin only: nothing
    /// inline runs, so text that slipped into markup could not execute.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    static func response(for name: String, request: Request) -> Response {
        guard let asset = assets[name] else {
            return Response(
                status: .notFound, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"error":"Not found","message":"no explorer asset with this name"}"#))
            )
        }
        var headers: HTTPFields = [
            .contentType: asset.contentType, .eTag: asset.etag, .cacheControl: "no-cache",
            .xContentTypeOptions: "nosniff", .referrerPolicy: "no-referrer",
        ]
        if asset.contentType.hasPrefix("text/html") {
            headers[.contentSecurityPolicy] = contentSecurityPolicy
            headers[.xFrameOptions] = "DENY"
        }
        // A revalidation of an unchanged file (the binary is the version).
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.filter { $0 != " " } == asset.etag }) {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.body))
    }

    static func contentType(of name: String) -> String {
        switch name.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        default: "application/octet-stream"
        }
    }

    /// 64-bit FNV-1a, in hex: the ETag of a file's bytes.
    static func fnv1a(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            hash ^= UInt64(b)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
}
