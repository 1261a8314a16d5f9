import Tracing
import TracefoldModel

/// LangfuseAttributes speaks OTLP's model (so the encoding tests compare
/// with the Python SDK's capture directly); spans take swift-distributed-
/// tracing attributes. Every value Langfuse writes is a string, a bool, a
/// number or a string array, which both sides hold alike.
extension SpanAttributes {
    mutating func set(_ attributes: [TracefoldModel.Attribute]) {
        for attribute in attributes { set(attribute.key, value: SpanAttribute(attribute.value)) }
    }
}

extension SpanAttribute {
    init?(_ value: AttributeValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int64(i)
        case .double(let d): self = .double(d)
        case .array(let items):
            let strings = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
            guard strings.count == items.count else { return nil }
            self = .stringArray(strings)
        case .empty, .bytes, .kvlist: return nil
        }
    }
}
