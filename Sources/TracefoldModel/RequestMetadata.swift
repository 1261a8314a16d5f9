/// What one intake request says about its spans beyond the OTLP body: the
/// request metadata from its headers (SPEC §5.1–5.2) and the API key and
/// workspace it arrived under with their metadata layers (SPEC §5.3).
///
/// The receiver stamps it onto every resource of the batch as the internal
/// attribute `_tracefold.request`, so it is stored with each span and a trace
/// rebuilt from its stored spans gets the same records. Clients cannot forge
/// it: every `_tracefold.` resource attribute they send is removed first.
public struct RequestMetadata: Sendable, Hashable {
    /// The request layer: injected header values overlaid by the explicit
    /// `x-tracefold-metadata` keys (an explicit key beats an injected one).
    public var metadata: [String: String]
    /// Header keys that were dropped, with why (`tracefold.warnings`).
    public var warnings: [String: String]
    public var governance: Governance?
    /// When the request was received; orders its metadata against other
    /// updates (SPEC §5.1: ordered by receive time).
    public var receivedAtUnixNano: UInt64

    public init(metadata: [String: String] = [:], warnings: [String: String] = [:], governance: Governance? = nil, receivedAtUnixNano: UInt64 = 0) {
        self.metadata = metadata
        self.warnings = warnings
        self.governance = governance
        self.receivedAtUnixNano = receivedAtUnixNano
    }

    public var isEmpty: Bool { metadata.isEmpty && warnings.isEmpty && governance == nil }

    public static let attributeKey = "_tracefold.request"

    /// Removes client-sent internal resource attributes and, unless the
    /// context is empty, attaches this one to every resource.
    public static func stamp(_ batch: inout SpanBatch, with context: RequestMetadata?) {
        let encoded = context.flatMap { $0.isEmpty ? nil : $0.encoded }
        for i in batch.resourceSpans.indices {
            var attributes = batch.resourceSpans[i].resource.attributes
            if attributes.contains(where: { $0.key.hasPrefix("_tracefold.") }) {
                attributes.removeAll { $0.key.hasPrefix("_tracefold.") }
            }
            if let encoded { attributes.append(Attribute(attributeKey, .string(encoded))) }
            batch.resourceSpans[i].resource.attributes = attributes
        }
    }

    /// The context a stamped resource carries.
    public init?(resource: Resource) {
        guard let a = resource.attributes.last(where: { $0.key == Self.attributeKey }), case .string(let s) = a.value else { return nil }
        self.init(encoded: s)
    }

    // MARK: Encoding, as a compact JSON object

    public var encoded: String {
        var o: [String: JSONValue] = ["receivedAt": .string(String(receivedAtUnixNano))]
        if !metadata.isEmpty { o["metadata"] = .object(metadata.mapValues(JSONValue.string)) }
        if !warnings.isEmpty { o["warnings"] = .object(warnings.mapValues(JSONValue.string)) }
        if let g = governance { o["governance"] = g.json }
        return JSONWriter.serialize(.object(o))
    }

    public init?(encoded: String) {
        guard let v = try? JSONParser.parse(encoded), let o = v.objectValue else { return nil }
        receivedAtUnixNano = o["receivedAt"]?.stringValue.flatMap { UInt64($0) } ?? 0
        metadata = Self.strings(o["metadata"])
        warnings = Self.strings(o["warnings"])
        governance = o["governance"].flatMap(Governance.init(json:))
    }

    static func strings(_ v: JSONValue?) -> [String: String] {
        (v?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }
}

/// The governance layers of the API key a request authenticated with, as
/// configured when the request arrived (SPEC §5.3, §5.5). Precedence when a
/// trace record is built: workspace > API key > request > schema defaults.
public struct Governance: Sendable, Hashable {
    /// The key's public key (never its secret).
    public var apiKey: String
    public var workspace: String?
    public var apiKeyMetadata: [String: String]
    public var workspaceMetadata: [String: String]
    /// Defaults of the schemas that apply to the key and its workspace.
    public var defaults: [String: String]

    public init(apiKey: String, workspace: String?, apiKeyMetadata: [String: String], workspaceMetadata: [String: String], defaults: [String: String]) {
        self.apiKey = apiKey
        self.workspace = workspace
        self.apiKeyMetadata = apiKeyMetadata
        self.workspaceMetadata = workspaceMetadata
        self.defaults = defaults
    }

    /// `pk-lf-1 (workspace research)`, for messages.
    public var label: String { workspace.map { "\(apiKey) (workspace \($0))" } ?? apiKey }

    var json: JSONValue {
        var o: [String: JSONValue] = [
            "apiKey": .string(apiKey),
            "apiKeyMetadata": .object(apiKeyMetadata.mapValues(JSONValue.string)),
            "workspaceMetadata": .object(workspaceMetadata.mapValues(JSONValue.string)),
            "defaults": .object(defaults.mapValues(JSONValue.string)),
        ]
        if let workspace { o["workspace"] = .string(workspace) }
        return .object(o)
    }

    init?(json: JSONValue) {
        guard let key = json["apiKey"]?.stringValue else { return nil }
        apiKey = key
        workspace = json["workspace"]?.stringValue
        apiKeyMetadata = RequestMetadata.strings(json["apiKeyMetadata"])
        workspaceMetadata = RequestMetadata.strings(json["workspaceMetadata"])
        defaults = RequestMetadata.strings(json["defaults"])
    }
}
