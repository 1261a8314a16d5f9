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
