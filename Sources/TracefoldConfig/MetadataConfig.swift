import Yams

/// Request metadata and its governance (SPEC §5): which headers become
/// metadata, the workspaces with their metadata, and the required-metadata
/// schemas that workspace and API-key metadata must satisfy. API keys
/// themselves live with the receiver's auth, and name their workspace.
public struct MetadataConfig: Sendable, Equatable {
    /// Lowercased header names copied into request metadata (SPEC §5.2),
    /// without the denylisted ones.
    public var headersToMetadata: [String] = []
    /// Configured names that the denylist removed; logged at startup.
    public var deniedHeaders: [String] = []
    public var workspaces: [Workspace] = []
    /// Every workspace's metadata must satisfy this.
    public var workspaceSchema: MetadataSchema?
    /// Every API key's metadata must satisfy this.
    public var apiKeySchema: MetadataSchema?

    public init() {}

    public struct Workspace: Sendable, Equatable {
        public var name: String
        public var metadata: [String: String]
        /// The metadata of this workspace's API keys must satisfy this too.
        public var apiKeySchema: MetadataSchema?

        public init(name: String, metadata: [String: String] = [:], apiKeySchema: MetadataSchema? = nil) {
            self.name = name
            self.metadata = metadata
            self.apiKeySchema = apiKeySchema
        }
    }

    public func workspace(named name: String) -> Workspace? { workspaces.first { $0.name == name } }

    /// The schema defaults that apply to a key of this workspace. They are
    /// the lowest layer: any request value beats them (reference M11.1).
    public func defaults(forKeyIn workspace: String?) -> [String: String] {
        var out = [String: String]()
        for schema in [apiKeySchema, workspace.flatMap { self.workspace(named: $0)?.apiKeySchema }, workspaceSchema] {
            for (k, v) in schema?.defaults ?? [:] { out[k] = v }
        }
        return out
    }

    /// SPEC §5.2: never injected, whatever the config says. The names are
    /// credentials, or carry them.
    public static func isDenied(header name: String) -> Bool {
        let n = name.lowercased()
        if ["authorization", "proxy-authorization", "cookie", "set-cookie"].contains(n) { return true }
        return ["api-key", "api_key", "apikey", "token", "secret", "password"].contains { n.contains($0) }
    }

    /// Splits a `HEADERS_TO_METADATA` list: trimmed, lowercased, empty
    /// entries ignored, duplicates once. Returns the allowed and the denied.
    public static func headerList(_ names: [String]) -> (allowed: [String], denied: [String]) {
        var allowed = [String](), denied = [String]()
        for raw in names {
            let name = raw.trimmingWhitespace().lowercased()
            guard !name.isEmpty, !allowed.contains(name), !denied.contains(name) else { continue }
            if isDenied(header: name) { denied.append(name) } else { allowed.append(name) }
        }
        return (allowed, denied)
    }

    /// Indexed metadata values are strings of at most 128 Unicode scalars
    /// (reference M8.2: scalars, not grapheme clusters).
    public static let maxValueScalars = 128
}

/// The JSON-schema subset of SPEC §5.5 (Portkey's required metadata):
/// `type: object`, `additionalProperties: true`, and string properties that
/// may carry `enum` and `default`, with a `required` list.
public struct MetadataSchema: Sendable, Equatable {
    public struct Property: Sendable, Equatable {
        public var allowed: [String]?
        public var defaultValue: String?
    }

    public var properties: [String: Property] = [:]
    public var required: [String] = []

    public var defaults: [String: String] { properties.compactMapValues(\.defaultValue) }

    /// What is wrong with `metadata` under this schema, in field order. A
    /// required field with a default is satisfied by the default.
    public func violations(of metadata: [String: String]) -> [String] {
        var out = [String]()
        for field in required where metadata[field] == nil && properties[field]?.defaultValue == nil {
            out.append("is missing required field \"\(field)\"")
        }
        for (field, value) in metadata.sorted(by: { $0.key < $1.key }) {
            if let allowed = properties[field]?.allowed, !allowed.contains(value) {
                out.append("field \"\(field)\" is \"\(value)\", not one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", "))")
            }
        }
        return out
    }
}

extension MetadataConfig {
    /// Parses the top-level `metadata` section. `HEADERS_TO_METADATA` in the
    /// environment, when set, replaces `headers_to_metadata`.
    static func parse(_ node: Node?, _ r: YAMLReader, environment: [String: String]) throws(ConfigError) -> (MetadataConfig, workspaceNodes: [String: Node]) {
        var c = MetadataConfig()
        var nodes = [String: Node]()
        var headerNames = [String]()
        for (key, _, value) in try r.mapping(node, at: "metadata", allowed: ["headers_to_metadata", "workspaces", "schemas"]) ?? [] {
            switch key {
            case "headers_to_metadata":
                if case .scalar = value {
                    headerNames = try r.string(value, at: "metadata.headers_to_metadata").split(separator: ",").map(String.init)
                } else {
                    headerNames = try r.strings(value, at: "metadata.headers_to_metadata")
                }
            case "schemas":
                for (k, _, v) in try r.mapping(value, at: "metadata.schemas", allowed: ["workspace", "api_key"]) ?? [] {
                    let schema = try MetadataSchema.parse(v, r, at: "metadata.schemas.\(k)")
                    if k == "workspace" { c.workspaceSchema = schema } else { c.apiKeySchema = schema }
                }
            default:
                for (name, nameNode, body) in try r.mapping(value, at: "metadata.workspaces", allowed: []) ?? [] {
                    let path = "metadata.workspaces.\(name)"
                    guard !name.isEmpty else { throw r.error(nameNode, "metadata.workspaces has an empty workspace name") }
                    nodes[name] = nameNode
                    var w = Workspace(name: name)
                    for (k, _, v) in try r.mapping(body, at: path, allowed: ["metadata", "api_key_schema"]) ?? [] {
                        if k == "metadata" {
                            w.metadata = try parseMetadata(v, r, at: "\(path).metadata")
                        } else {
                            w.apiKeySchema = try MetadataSchema.parse(v, r, at: "\(path).api_key_schema")
                        }
                    }
                    c.workspaces.append(w)
                }
            }
        }
        var headerSource = "metadata.headers_to_metadata"
        if let env = environment["HEADERS_TO_METADATA"] {
            headerNames = env.split(separator: ",").map(String.init)
            headerSource = "HEADERS_TO_METADATA"
        }
        (c.headersToMetadata, c.deniedHeaders) = headerList(headerNames)
        let token = Set("abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~")
        for name in c.headersToMetadata where !name.allSatisfy(token.contains) {
            throw r.error(node, "\(headerSource) names \"\(name)\", which is not a valid HTTP header name")
        }
        return (c, nodes)
    }

    /// A flat map of string values: the indexed tier (reference M8).
    static func parseMetadata(_ node: Node, _ r: YAMLReader, at path: String) throws(ConfigError) -> [String: String] {
        var out = [String: String]()
        for (key, keyNode, value) in try r.mapping(node, at: path, allowed: []) ?? [] {
            guard !key.isEmpty else { throw r.error(keyNode, "\(path) has an empty key") }
            guard case .scalar = value else { throw r.error(value, "\(path).\(key) must be a string") }
            let s = try r.string(value, at: "\(path).\(key)")
            let n = s.unicodeScalars.count
            guard n <= maxValueScalars else {
                throw r.error(value, "\(path).\(key) is \(n) characters long; metadata values are at most \(maxValueScalars)")
            }
            out[key] = s
        }
        return out
    }

    /// SPEC §5.5: every workspace and API key satisfies the schemas that
    /// apply to it, and every key names a declared workspace.
    func validate(apiKeys: [AuthConfig.APIKey], keyNodes: [Node], workspaceNodes: [String: Node], r: YAMLReader) throws(ConfigError) {
        for w in workspaces {
            if let problem = workspaceSchema?.violations(of: w.metadata).first {
                throw r.error(workspaceNodes[w.name], "workspace \"\(w.name)\": metadata \(problem) (metadata.schemas.workspace)")
            }
        }
        for (i, key) in apiKeys.enumerated() {
            let node = i < keyNodes.count ? keyNodes[i] : nil
            var who = "api key \"\(key.publicKey)\""
            var schemas = [(apiKeySchema, "metadata.schemas.api_key")]
            if let ws = key.workspace {
                guard let w = workspace(named: ws) else {
                    let known = workspaces.map { "\"\($0.name)\"" }.joined(separator: ", ")
                    throw r.error(node, "\(who) names workspace \"\(ws)\", which is not declared under metadata.workspaces\(known.isEmpty ? "" : " (declared: \(known))")")
                }
                who += " (workspace \(ws))"
                schemas.append((w.apiKeySchema, "metadata.workspaces.\(ws).api_key_schema"))
            }
            for (schema, place) in schemas {
                if let problem = schema?.violations(of: key.metadata).first {
                    throw r.error(node, "\(who): metadata \(problem) (\(place))")
                }
            }
        }
    }
}

extension MetadataSchema {
    static let keywords = ["$schema", "$id", "title", "description", "type", "additionalProperties", "properties", "required"]
    static let propertyKeywords = ["title", "description", "type", "enum", "default"]

    /// Reads a schema and checks it keeps to the subset; anything else is an
    /// error naming the rule, not a silently ignored keyword.
    static func parse(_ node: Node, _ r: YAMLReader, at path: String) throws(ConfigError) -> MetadataSchema {
        guard case .mapping = node else { throw r.error(node, "\(path) must be a mapping (a JSON schema)") }
        var schema = MetadataSchema()
        var sawType = false, sawAdditional = false
        var requiredNode: Node?
        for (key, keyNode, value) in try r.mapping(node, at: path, allowed: []) ?? [] {
            switch key {
            case "type":
                guard try r.string(value, at: "\(path).type") == "object" else { throw r.error(value, "\(path).type must be \"object\"") }
                sawType = true
            case "additionalProperties":
                guard case .scalar = value, try r.bool(value, at: "\(path).additionalProperties") else {
                    throw r.error(value, "\(path).additionalProperties must be true: metadata may carry keys the schema does not name")
                }
                sawAdditional = true
            case "properties":
                for (name, nameNode, body) in try r.mapping(value, at: "\(path).properties", allowed: []) ?? [] {
                    let p = "\(path).properties.\(name)"
                    guard !name.isEmpty else { throw r.error(nameNode, "\(path).properties has an empty name") }
                    guard case .mapping = body else { throw r.error(body, "\(p) must be a mapping") }
                    var property = Property()
                    var sawString = false
                    var defaultNode: Node?
                    for (k, kNode, v) in try r.mapping(body, at: p, allowed: []) ?? [] {
                        switch k {
                        case "type":
                            guard case .scalar = v, try r.string(v, at: "\(p).type") == "string" else {
                                throw r.error(v, "\(p).type must be \"string\": metadata values are strings")
                            }
                            sawString = true
                        case "enum":
                            let values = try r.strings(v, at: "\(p).enum")
                            guard !values.isEmpty else { throw r.error(v, "\(p).enum must list at least one value") }
                            property.allowed = values
                        case "default":
                            guard case .scalar = v else { throw r.error(v, "\(p).default must be a string") }
                            property.defaultValue = try r.string(v, at: "\(p).default")
                            defaultNode = v
                        case "title", "description":
                            _ = try r.string(v, at: "\(p).\(k)")
                        default:
                            throw r.error(kNode, "\(p): unsupported schema keyword \"\(k)\" (supported: \(propertyKeywords.joined(separator: ", ")))")
                        }
                    }
                    guard sawString else { throw r.error(nameNode, "\(p) needs type: string") }
                    if let d = property.defaultValue, let allowed = property.allowed, !allowed.contains(d) {
                        throw r.error(defaultNode, "\(p).default \"\(d)\" is not one of its enum values")
                    }
                    schema.properties[name] = property
                }
            case "required":
                schema.required = try r.strings(value, at: "\(path).required")
                requiredNode = value
            case "$schema", "$id", "title", "description":
                _ = try r.string(value, at: "\(path).\(key)")
            default:
                throw r.error(keyNode, "\(path): unsupported schema keyword \"\(key)\" (supported: \(keywords.joined(separator: ", ")))")
            }
        }
        guard sawType else { throw r.error(node, "\(path) needs type: object") }
        guard sawAdditional else { throw r.error(node, "\(path) needs additionalProperties: true") }
        for field in schema.required where schema.properties[field] == nil {
            throw r.error(requiredNode, "\(path).required names \"\(field)\", which is not under \(path).properties")
        }
        return schema
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
