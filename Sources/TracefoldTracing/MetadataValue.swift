/// A metadata, input or output value as the Langfuse SDKs carry it: JSON
/// with the object keys in the order they were written (Python dicts keep
/// insertion order, and the wire format shows it).
public indirect enum MetadataValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([MetadataValue])
    case object([Field])

    public struct Field: Sendable, Hashable {
        public var key: String
        public var value: MetadataValue
        public init(_ key: String, _ value: MetadataValue) {
            self.key = key
            self.value = value
        }
    }
}

extension MetadataValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: MetadataValue...) { self = .array(elements) }
    /// Literal order is kept, as a Python dict keeps it.
    public init(dictionaryLiteral elements: (String, MetadataValue)...) { self = .object(elements.map { Field($0.0, $0.1) }) }
    public init(nilLiteral: ()) { self = .null }
}

/// So a MetadataValue can sit inside an app's own Encodable types (and be
/// an `@Observed` function's result): objects keep their field order with
/// encoders that keep insertion order, as MetadataValueEncoder does.
extension MetadataValue: Encodable {
    struct FieldKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let fields):
            var c = encoder.container(keyedBy: FieldKey.self)
            for field in fields { try c.encode(field.value, forKey: FieldKey(field.key)) }
        case .null, .bool, .int, .double, .string:
            var c = encoder.singleValueContainer()
            switch self {
            case .bool(let b): try c.encode(b)
            case .int(let n): try c.encode(n)
            case .double(let d): try c.encode(d)
            case .string(let s): try c.encode(s)
            default: try c.encodeNil()
            }
        }
    }
}
