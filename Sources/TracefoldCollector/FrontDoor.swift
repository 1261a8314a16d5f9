import Hummingbird
import OTLP
import NIOCore
import TracefoldIntake
import TracefoldTelemetry

/// The first responder every request meets. It collapses doubled slashes
/// (`//api/public/otel/v1/traces`, SPEC §1.2), sends the intake paths to the
/// OTLP receiver whatever the method (the receiver answers 405 itself), and
/// everything else to the router. When auth is on, every route but the
/// health checks needs the intake's credentials (SPEC §7.7).
struct FrontDoor<Router: HTTPResponder>: HTTPResponder where Router.Context == BasicRequestContext {
    typealias Context = BasicRequestContext

    let receiver: OTLPHTTPReceiver
    let authenticator: RequestAuthenticator
    let router: Router
    let metrics: CollectorMetrics

    func respond(to request: Request, context: Context) async throws -> Response {
        var request = request
        if request.uri.path.contains("//") {
            var head = request.head
            head.path = Self.collapseSlashes(head.path ?? "/")
            request = Request(head: head, body: request.body)
        }
        let path = request.uri.path
        let handler =
            OTLPHTTPReceiver.paths.contains(path) ? "intake"
            : path.hasPrefix("/health/") ? "health" : path == "/metrics" ? "metrics"
            : path == "/ui" || path.hasPrefix("/ui/") ? "explorer" : "query"
        do {
            let response = try await route(request, context: context)
            metrics.request(handler: handler, code: response.status.code)
            return response
        } catch let error as HTTPResponseError {
            metrics.request(handler: handler, code: error.status.code)
            throw error
        }
    }

    /// `request`'s path is already collapsed.
    private func route(_ request: Request, context: Context) async throws -> Response {
        if OTLPHTTPReceiver.paths.contains(request.uri.path) {
            return try await receiver.handle(request)
        }
        // Only the two exact health paths are open: a prefix test would let
        // `/health/../api/...` through if anything behind us ever resolved
        // dot segments.
        if !Self.openPaths.contains(request.uri.path), !authenticator.isAuthorized(authorization: request.headers[.authorization]) {
            return Response(
                status: .unauthorized,
                headers: [.contentType: "application/json", .wwwAuthenticate: "Basic realm=\"tracefold\""],
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"error":"Unauthorized","message":"missing or invalid credentials"}"#))
            )
        }
        return try await router.respond(to: request, context: context)
    }

    /// Langfuse's health check needs no credentials either.
    static var openPaths: Set<String> { ["/health/live", "/health/ready", "/api/public/health"] }

    /// Collapses runs of "/" in the path part, leaving the query alone.
    static func collapseSlashes(_ target: String) -> String {
        let query = target.firstIndex(of: "?")
        let pathPart = query.map { target[..<$0] } ?? target[...]
        var out = ""
        var previousSlash = false
        for c in pathPart {
            if c == "/" && previousSlash { continue }
            previousSlash = c == "/"
            out.append(c)
        }
        if let query { out += target[query...] }
        return out
    }
}
