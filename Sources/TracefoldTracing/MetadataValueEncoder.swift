import Foundation

extension MetadataValue {
    /// The value an `Encodable` encodes to, with its keys in the order it
    /// encodes them (a struct's declaration order), as Python's dicts keep
    /// theirs. Foundation's JSONEncoder cannot promise that order, so this is
    /// a small Encoder of its own. A `Date` becomes its ISO-8601 string, as
    /// Langfuse's serializer writes datetimes.
    public init<T: Encodable>(encoding value: T) throws {
        self = try MetadataValueEncoder.encode(value)
    }
}

enum MetadataValueEncoder {
    static func encode<T: Encodable>(_ value: T) throws -> MetadataValue {
        if let special = special(value) { return special }
        let box = Box(codingPath: [])
        try value.encode(to: box)
        return box.value.resolved
    }

    private static func special(_ value: Any) -> MetadataValue? {
        switch value {
        case let v as MetadataValue: return v
        case let d as Date: return .string(LangfuseAttributes.isoTime(d))
        case let u as URL: return .string(u.absoluteString)
        case let d as Decimal: return .double(NSDecimalNumber(decimal: d).doubleValue)
        default: return nil
        }
    }

    /// The tree under construction: containers are classes so nested
    /// encoders can fill them after they were handed out.
    final class Node {
        enum Kind {
            case unset
            case single(MetadataValue)
            case object([(String, Node)])
            case array([Node])
        }
        var kind: Kind = .unset

        var resolved: MetadataValue {
            switch kind {
            case .unset: .null
            case .single(let v): v
            case .object(let fields):
                // Last write of a key wins, at its first position.
                .object(
                    fields.reduce(into: [MetadataValue.Field]()) { out, pair in
                        if let i = out.firstIndex(where: { $0.key == pair.0 }) {
                            out[i].value = pair.1.resolved
                        } else {
                            out.append(.init(pair.0, pair.1.resolved))
                        }
                    })
            case .array(let items): .array(items.map(\.resolved))
            }
        }
    }

    final class Box: Encoder {
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        let node: Node

        init(codingPath: [any CodingKey], node: Node = Node()) {
            self.codingPath = codingPath
            self.node = node
        }

        var value: Node { node }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if case .object = node.kind {} else { node.kind = .object([]) }
            return KeyedEncodingContainer(Keyed<Key>(node: node, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if case .array = node.kind {} else { node.kind = .array([]) }
            return Unkeyed(node: node, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(node: node, codingPath: codingPath) }
    }

    static func child(_ value: some Encodable, codingPath: [any CodingKey]) throws -> Node {
        if let special = special(value) {
            let node = Node()
            node.kind = .single(special)
            return node
        }
        let box = Box(codingPath: codingPath)
        try value.encode(to: box)
        return box.node
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        private func put(_ key: Key, _ child: Node) {
            if case .object(var fields) = node.kind {
                fields.append((key.stringValue, child))
                node.kind = .object(fields)
            }
        }
        private func put(_ key: Key, _ value: MetadataValue) {
            let child = Node()
            child.kind = .single(value)
            put(key, child)
        }

        mutating func encodeNil(forKey key: Key) throws { put(key, .null) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(key, .bool(value)) }
        mutating func encode(_ value: String, forKey key: Key) throws { put(key, .string(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(key, .double(value)) }
        mutating func encode(_ value: Float, forKey key: Key) throws { put(key, .double(Double(value))) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { put(key, .int(value)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { try encode(UInt64(value), forKey: key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { put(key, .int(Int64(value))) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws {
            put(key, Int64(exactly: value).map(MetadataValue.int) ?? .double(Double(value)))
        }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            put(key, try MetadataValueEncoder.child(value, codingPath: codingPath + [key]))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let child = Node()
            child.kind = .object([])
            put(key, child)
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child, codingPath: codingPath + [key]))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let child = Node()
            child.kind = .array([])
            put(key, child)
            return Unkeyed(node: child, codingPath: codingPath + [key])
        }
        mutating func superEncoder() -> any Encoder { Box(codingPath: codingPath, node: node) }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            let child = Node()
            put(key, child)
            return Box(codingPath: codingPath + [key], node: child)
        }
    }

    struct IndexKey: CodingKey {
        var stringValue: String { String(intValue ?? 0) }
        var intValue: Int?
        init(_ index: Int) { intValue = index }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int {
            if case .array(let items) = node.kind { return items.count }
            return 0
        }

        private func append(_ child: Node) {
            if case .array(var items) = node.kind {
                items.append(child)
                node.kind = .array(items)
            }
        }
        private func append(_ value: MetadataValue) {
            let child = Node()
            child.kind = .single(value)
            append(child)
        }

        mutating func encodeNil() throws { append(.null) }
        mutating func encode(_ value: Bool) throws { append(.bool(value)) }
        mutating func encode(_ value: String) throws { append(.string(value)) }
        mutating func encode(_ value: Double) throws { append(.double(value)) }
        mutating func encode(_ value: Int) throws { append(.int(Int64(value))) }
        mutating func encode(_ value: Int64) throws { append(.int(value)) }
        mutating func encode(_ value: Float) throws { append(.double(Double(value))) }
        mutating func encode(_ value: UInt64) throws { append(Int64(exactly: value).map(MetadataValue.int) ?? .double(Double(value))) }
        mutating func encode(_ value: Int8) throws { append(.int(Int64(value))) }
        mutating func encode(_ value: Int16) throws { append(.int(Int64(value))) }
        mutating func encode(_ value: Int32) throws { append(.int(Int64(value))) }
        mutating func encode(_ value: UInt) throws { try encode(UInt64(value)) }
        mutating func encode(_ value: UInt8) throws { append(.int(Int64(value))) }
        mutating func encode(_ value: UInt16) throws { append(.int(Int64(value))) }
        mutating func encode(_ value: UInt32) throws { append(.int(Int64(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            append(try MetadataValueEncoder.child(value, codingPath: codingPath + [IndexKey(count)]))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let child = Node()
            child.kind = .object([])
            append(child)
            return KeyedEncodingContainer(Keyed<NestedKey>(node: child, codingPath: codingPath + [IndexKey(count)]))
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let child = Node()
            child.kind = .array([])
            append(child)
            return Unkeyed(node: child, codingPath: codingPath + [IndexKey(count)])
        }
        mutating func superEncoder() -> any Encoder {
            let child = Node()
            append(child)
            return Box(codingPath: codingPath, node: child)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        mutating func encodeNil() throws { node.kind = .single(.null) }
        mutating func encode(_ value: Bool) throws { node.kind = .single(.bool(value)) }
        mutating func encode(_ value: String) throws { node.kind = .single(.string(value)) }
        mutating func encode(_ value: Double) throws { node.kind = .single(.double(value)) }
        mutating func encode(_ value: Float) throws { node.kind = .single(.double(Double(value))) }
        mutating func encode(_ value: Int) throws { node.kind = .single(.int(Int64(value))) }
        mutating func encode(_ value: Int64) throws { node.kind = .single(.int(value)) }
        mutating func encode(_ value: Int8) throws { node.kind = .single(.int(Int64(value))) }
        mutating func encode(_ value: Int16) throws { node.kind = .single(.int(Int64(value))) }
        mutating func encode(_ value: Int32) throws { node.kind = .single(.int(Int64(value))) }
        mutating func encode(_ value: UInt) throws { try encode(UInt64(value)) }
        mutating func encode(_ value: UInt8) throws { node.kind = .single(.int(Int64(value))) }
        mutating func encode(_ value: UInt16) throws { node.kind = .single(.int(Int64(value))) }
        mutating func encode(_ value: UInt32) throws { node.kind = .single(.int(Int64(value))) }
        mutating func encode(_ value: UInt64) throws {
            node.kind = .single(Int64(exactly: value).map(MetadataValue.int) ?? .double(Double(value)))
        }
        mutating func encode<T: Encodable>(_ value: T) throws {
            node.kind = try MetadataValueEncoder.child(value, codingPath: codingPath).kind
        }
    }
}
