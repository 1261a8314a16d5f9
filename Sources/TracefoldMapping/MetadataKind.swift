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

    /// The labels of the kinds that have their own.
    private static let labels: [(kind: String, label: String)] = [
        (userDefault, "User Metadata"), ("tracefold.ai", "AI Metadata"), ("tracefold.http", "HTTP Metadata"),
        ("tracefold.warnings", "Warnings"), ("tracefold.usage", "Usage"), ("tracefold.score", "Scores"),
        ("tracefold.experiment", "Experiment"),
    ]

    public static func label(_ kind: String) -> String {
        if let known = labels.first(where: { $0.kind == kind }) { return known.label }
        return unlisted(kind)
    }

    /// The label of a kind without one of its own.
    private static func unlisted(_ kind: String) -> String {
        kind.hasPrefix("userland.") ? "User Metadata (\(kind.dropFirst(9)))" : kind
    }

    /// `label` of a kind given as its UTF-8 bytes (a stored record's): a
    /// kind with a label of its own is compared in place, not made a
    /// String (`userland.default` is one byte past a String's inline size).
    public static func label(utf8 kind: UnsafeRawBufferPointer) -> String {
        // By length, then bytes: `elementsEqual` walked a String's UTF-8
        // view with its generic iterator for every kind of every entry
        // the exporter and the query API render.
        for known in labelBytes where known.kind.count == kind.count {
            if known.kind.withUnsafeBytes({ $0.elementsEqual(kind) }) { return known.label }
        }
        return unlisted(String(decoding: kind, as: UTF8.self))
    }

    /// `labels` with each kind as its bytes.
    private static let labelBytes: [(kind: [UInt8], label: String)] = labels.map { (Array($0.kind.utf8), $0.label) }
}
