import HTTPTypes
import TracefoldConfig
import TracefoldModel

/// Reads a request's metadata (SPEC §5.1–5.3): the explicit
/// `x-tracefold-metadata` header, the headers named by HEADERS_TO_METADATA,
/// and the governance layers of the API key the request authenticated with.
/// Bad header metadata never fails the request: the offending key, or the
/// whole header, is dropped with a warning (reference M8.4).
public struct RequestMetadataReader: Sendable {
    public static let header = HTTPField.Name("x-tracefold-metadata")!

    let injected: [(name: HTTPField.Name, key: String)]
    let governance: [String: Governance]

    public init(metadata: MetadataConfig, auth: AuthConfig) {
        injected = metadata.headersToMetadata.compactMap { name in HTTPField.Name(name).map { ($0, name) } }
        var governance = [String: Governance]()
        for key in auth.apiKeys {
            let workspace = key.workspace.flatMap { metadata.workspace(named: $0) }
            governance[key.publicKey] = Governance(
                apiKey: key.publicKey, workspace: key.workspace, apiKeyMetadata: key.metadata,
                workspaceMetadata: workspace?.metadata ?? [:], defaults: metadata.defaults(forKeyIn: key.workspace)
            )
        }
        self.governance = governance
    }

    /// The request's context; nil when it carries nothing.
    public func read(_ headers: HTTPFields, apiKey: String?, receivedAtUnixNano: UInt64) -> RequestMetadata? {
        var context = RequestMetadata(receivedAtUnixNano: receivedAtUnixNano)
        for (name, key) in injected {
            let values = headers[values: name]
            guard !values.isEmpty else { continue }
            // RFC 9110 field combination; an empty value stays "".
            let value = values.joined(separator: ", ")
            if let problem = Self.problem(with: value) {
                context.warnings["header.\(key)"] = "\(problem); dropped"
            } else {
                context.metadata[key] = value
            }
        }
        for raw in headers[values: Self.header] {
            Self.readExplicit(raw, into: &context)
        }
        context.governance = apiKey.flatMap { governance[$0] }
        return context.isEmpty ? nil : context
    }

    /// One `x-tracefold-metadata` value: a JSON object of string values.
    static func readExplicit(_ raw: String, into context: inout RequestMetadata) {
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(raw, maxDepth: 8)
        } catch {
            context.warnings["x-tracefold-metadata"] = "not valid JSON (\(error.message) at byte \(error.offset)); header dropped"
            return
        }
        guard let object = parsed.objectValue else {
            context.warnings["x-tracefold-metadata"] = "not a JSON object; header dropped"
            return
        }
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            guard !key.isEmpty else {
                context.warnings["x-tracefold-metadata.(empty key)"] = "keys must be non-empty; dropped"
                continue
            }
            guard case .string(let s) = value else {
                // Reference M8.5: numbers and booleans are not coerced.
                context.warnings["x-tracefold-metadata.\(key)"] = "value is \(Self.describe(value)), not a string; dropped"
                continue
            }
            if let problem = Self.problem(with: s) {
                context.warnings["x-tracefold-metadata.\(key)"] = "\(problem); dropped"
            } else {
                context.metadata[key] = s
            }
        }
    }

    /// Why a value cannot be indexed metadata, or nil.
    static func problem(with value: String) -> String? {
        let n = value.unicodeScalars.count
        let limit = MetadataConfig.maxValueScalars
        return n > limit ? "value is \(n) characters long, over the \(limit)-character limit" : nil
    }

    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .array: "an array"
        case .object: "an object"
        case .string: "a string"
        }
    }
}
