import Instrumentation
import Logging
import Tracing

/// The trace-level attributes of the enclosing `propagateAttributes`
/// scopes, carried in the task-local `InstrumentationContext` so that child
/// tasks and task groups see them too.
struct PropagatedAttributes: Sendable {
    var userId: String?
    var sessionId: String?
    var traceName: String?
    var version: String?
    /// Nested scopes union their tags (v5), keeping first-seen order.
    var tags: [String] = []
    /// Nested scopes merge their dicts per top-level key.
    var metadata: [MetadataValue.Field] = []

    static func current(in context: InstrumentationContext) -> PropagatedAttributes? { context[PropagatedAttributesKey.self] }

    /// v5's rule: each value is a string of at most 200 characters, and a
    /// metadata value must be at most 200 characters once JSON-encoded.
    /// Anything longer is dropped with a warning, not truncated.
    static let maxLength = 200

    func merging(
        userId: String?, sessionId: String?, tags: [String]?, traceName: String?, version: String?, metadata: [String: MetadataValue]?,
        logger: Logger
    ) -> PropagatedAttributes {
        func valid(_ value: String?, _ name: String) -> String? {
            guard let value else { return nil }
            guard value.count <= Self.maxLength else {
                logger.warning("propagateAttributes: \(name) is over \(Self.maxLength) characters and is dropped")
                return nil
            }
            return value
        }
        var out = self
        if let v = valid(userId, "userId") { out.userId = v }
        if let v = valid(sessionId, "sessionId") { out.sessionId = v }
        if let v = valid(traceName, "traceName") { out.traceName = v }
        if let v = valid(version, "version") { out.version = v }
        for tag in tags ?? [] {
            if let t = valid(tag, "a tag"), !out.tags.contains(t) { out.tags.append(t) }
        }
        for key in (metadata ?? [:]).keys.sorted() {
            guard let value = metadata?[key], value != .null else { continue }
            guard PythonJSON.string(value, style: .metadata).count <= Self.maxLength else {
                logger.warning("propagateAttributes: metadata \(key) is over \(Self.maxLength) characters once encoded and is dropped")
                continue
            }
            if let i = out.metadata.firstIndex(where: { $0.key == key }) {
                out.metadata[i].value = value
            } else {
                out.metadata.append(MetadataValue.Field(key, value))
            }
        }
        return out
    }

    func apply(to attributes: inout SpanAttributes) {
        let written = LangfuseAttributes.trace(
            userId: userId, sessionId: sessionId, tags: tags.isEmpty ? nil : tags, traceName: traceName, version: version,
            metadata: metadata.isEmpty ? nil : .object(metadata)
        )
        attributes.set(written)
    }
}

enum PropagatedAttributesKey: InstrumentationContextKey {
    typealias Value = PropagatedAttributes
    static var nameOverride: String? { "tracefold.propagated" }
}
