/// Metadata kinds (SPEC §4.3).
public enum MetadataKind {
    public struct Invalid: Error, Sendable, Equatable { public var message: String }

    /// The kind of a key written without one (`""` or `default`).
    public static let userDefault = "userland.default"

    /// Kinds a client may write under the reserved `tracefold.` prefix.
    public static let clientWritable: Set<String> = ["tracefold.score", "tracefold.experiment"]
    /// Kinds only the collector writes.
    public static let collectorOnly: Set<String> = ["tracefold.ai", "tracefold.http", "tracefold.warnings", "tracefold.usage"]

    /// `""`/`default` → `userland.default`; `billing` → `userland.billing`;
    /// `userland.x` stays. 1–128 UTF-8 bytes.
    public static func normalise(_ raw: String, fromClient: Bool) -> Result<String, Invalid> {
        guard raw.utf8.count <= 128 else { return .failure(Invalid(message: "kind is longer than 128 bytes")) }
        if raw.isEmpty || raw == "default" { return .success("userland.default") }
        if raw.hasPrefix("tracefold.") {
            if fromClient && !clientWritable.contains(raw) {
                return .failure(Invalid(message: "kind \"\(raw)\" is reserved"))
            }
            return .success(raw)
        }
        if raw.hasPrefix("userland.") { return .success(raw) }
        let kind = "userland." + raw
        guard kind.utf8.count <= 128 else { return .failure(Invalid(message: "kind is longer than 128 bytes")) }
        return .success(kind)
    }

    public static func label(_ kind: String) -> String {
        switch kind {
        case userDefault: return "User Metadata"
        case "tracefold.ai": return "AI Metadata"
        case "tracefold.http": return "HTTP Metadata"
        case "tracefold.warnings": return "Warnings"
        case "tracefold.usage": return "Usage"
        case "tracefold.score": return "Scores"
        case "tracefold.experiment": return "Experiment"
        default:
            if kind.hasPrefix("userland.") { return "User Metadata (\(kind.dropFirst(9)))" }
            return kind
        }
    }
}
