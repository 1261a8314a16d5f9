import Yams

/// The query API's own settings (SPEC §7), under the top-level `query` key:
/// the project that `GET /api/public/projects` names when auth is off (with
/// auth on, a key's workspace is its project) and that every record's
/// `projectId` carries; and whether the trace explorer is served at `/ui/`.
public struct QueryAPIConfig: Sendable, Equatable {
    public var project = "tracefold"
    /// The web explorer at `/ui/`, on the query API's port and behind its
    /// credentials.
    public var explorer = true

    public init() {}

    static func parse(_ node: Node?, _ r: YAMLReader) throws(ConfigError) -> QueryAPIConfig {
        var c = QueryAPIConfig()
        for (key, _, value) in try r.mapping(node, at: "query", allowed: ["project", "explorer"]) ?? [] {
            switch key {
            case "project":
                c.project = try r.string(value, at: "query.project")
                try c.validate(r, value)
            default:
                c.explorer = try r.bool(value, at: "query.explorer")
            }
        }
        return c
    }

    /// A project name appears in URL paths (`htmlPath`): 1–64 characters
    /// of letters, digits, `-`, `_` and `.`.
    func validate(_ r: YAMLReader, _ node: Node) throws(ConfigError) {
        let ok = (1...64).contains(project.utf8.count)
            && project.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
        guard ok else { throw r.error(node, "query.project must be 1 to 64 letters, digits, '-', '_' or '.', got \"\(project)\"") }
    }
}
