import TracefoldModel

extension AttributeValue {
    /// The attribute as a typed JSON value: kvlists become objects, bytes
    /// become base64 strings, an empty AnyValue becomes null.
    public var json: JSONValue {
        switch self {
        case .empty: .null
        case .string(let s): .string(s)
        case .bool(let b): .bool(b)
        case .int(let i): .int(i)
        case .double(let d): .double(d)
        case .bytes(let b): .string(Base64.encode(b))
        case .array(let items): .array(items.map(\.json))
        case .kvlist(let kvs):
            .object(Dictionary(kvs.map { ($0.key, $0.value.json) }, uniquingKeysWith: { _, last in last }))
        }
    }

    /// SPEC §2.3: a string that parses as JSON becomes that value (v5 sends
    /// every metadata value JSON-encoded, so `"\"acme\""` is `"acme"` and `"5"`
    /// is 5); any other string stays a string; native types keep their type.
    public var decodedJSON: JSONValue {
        if case .string(let s) = self { return JSONDecoding.decodeIfJSON(s) }
        return json
    }

    /// `decodedJSON`'s canonical text, made without the value for a string
    /// (`JSONText.decoding`).
    public var decodedJSONText: JSONText {
        if case .string(let s) = self { return JSONText.decoding(s) }
        return JSONText(json)
    }

    /// `json`'s canonical text; a string is quoted without a value made.
    public var jsonText: JSONText {
        if case .string(let s) = self { return JSONText.string(s) }
        return JSONText(json)
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// A scalar written as text, for fields that Langfuse stringifies.
    public var text: String? {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): JSONWriter.serialize(.double(d))
        case .bool(let b): b ? "true" : "false"
        case .empty: nil
        default: JSONWriter.serialize(json)
        }
    }
}

public enum JSONDecoding {
    public static func decodeIfJSON(_ s: String) -> JSONValue {
        // Only text that can start a JSON value is tried; most strings fail here at no cost.
        guard JSONParser.mayStartValue(s.utf8) else { return .string(s) }
        return (try? JSONParser.parse(s)) ?? .string(s)
    }

    /// The canonical compact size of one value (SPEC §4.5).
    public static func canonicalSize(_ value: JSONValue) -> Int {
        var w = JSONWriter(reservingCapacity: 64)
        w.write(value)
        return w.bytes.count
    }

    /// Σ over top-level keys of key bytes + canonical value bytes (SPEC §4.5).
    public static func updateSize(_ values: [String: JSONValue]) -> Int {
        values.reduce(0) { $0 + $1.key.utf8.count + canonicalSize($1.value) }
    }

    /// `updateSize` of values kept as their canonical text: a byte count.
    public static func updateSize(text values: [String: JSONText]) -> Int {
        values.reduce(0) { $0 + $1.key.utf8.count + $1.value.count }
    }
}
