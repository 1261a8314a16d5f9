import Hummingbird
import TracefoldModel

/// `GET /api/public/projects`, which the Langfuse SDK's `auth_check()`
/// calls, and `GET /api/public/health` (SPEC §7.9), in the shapes of the
/// SDK's `Projects` and `HealthResponse`.
public struct ProjectsAPI: Sendable {
    /// The project a request's credentials belong to: its API key's
    /// workspace, or the configured project (auth off, a bearer token, a
    /// key without a workspace).
    let project: @Sendable (_ authorization: String?) -> String
    /// Whether the store answers; Langfuse's health fails when its
    /// database does not.
    let storeAnswers: @Sendable () async -> Bool
    let version: String

    public init(version: String, project: @escaping @Sendable (String?) -> String, storeAnswers: @escaping @Sendable () async -> Bool) {
        self.version = version
        self.project = project
        self.storeAnswers = storeAnswers
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/api/public/projects") { request, _ in
            let name = self.project(request.headers[.authorization])
            return QueryAPI.json(.ok, .object(["data": .array([.object([
                "id": .string(name), "name": .string(name),
                "organization": .object(["id": .string("tracefold"), "name": .string("tracefold")]),
                "metadata": .object([:]),
            ])])]))
        }
        router.get("/api/public/health") { _, _ in
            let ok = await self.storeAnswers()
            return QueryAPI.json(ok ? .ok : .serviceUnavailable, .object([
                "status": .string(ok ? "OK" : "Database not available"), "version": .string(self.version),
            ]))
        }
    }
}
