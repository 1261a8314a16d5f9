import TracefoldModel

/// What `CostDetails` and `UsageDetails` share: the usual types (`input`,
/// `output` and `total`) are fields, every other type is in `other`, and
/// the value reads and renders as the dictionary of all of them. A type
/// is in one place only.
public protocol TypedDetails {
    /// The other types, as sent or inferred.
    var other: [String: JSONValue] { get }
    /// The usual types' values as JSON, in key order ("input" < "output"
    /// < "total").
    var usual: (input: JSONValue?, output: JSONValue?, total: JSONValue?) { get }
}

extension TypedDetails {
    public var count: Int {
        let u = usual
        return other.count + (u.input == nil ? 0 : 1) + (u.output == nil ? 0 : 1) + (u.total == nil ? 0 : 1)
    }

    public var isEmpty: Bool { count == 0 }

    /// The dictionary form.
    public var dictionary: [String: JSONValue] {
        var d = other
        let u = usual
        if let input = u.input { d["input"] = input }
        if let output = u.output { d["output"] = output }
        if let total = u.total { d["total"] = total }
        return d
    }

    /// Each type and value, the fields first.
    public func forEach(_ body: (String, JSONValue) -> Void) {
        let u = usual
        if let input = u.input { body("input", input) }
        if let output = u.output { body("output", output) }
        if let total = u.total { body("total", total) }
        for (type, value) in other { body(type, value) }
    }

    /// The JSON object, keys ascending as `write(.object)` writes them, so
    /// the bytes are the dictionary form's.
    public func write(into w: inout JSONWriter) {
        guard other.isEmpty else { return w.write(.object(dictionary)) }
        let u = usual
        w.beginObject()
        if let input = u.input { w.key("input"); w.write(input) }
        if let output = u.output { w.key("output"); w.write(output) }
        if let total = u.total { w.key("total"); w.write(total) }
        w.endObject()
    }

    /// Equality of the dictionary forms, without making them when both
    /// are fields only.
    func sameTypes(as b: Self) -> Bool {
        guard other.isEmpty && b.other.isEmpty else { return dictionary == b.dictionary }
        let (x, y) = (usual, b.usual)
        return x.input == y.input && x.output == y.output && x.total == y.total
    }
}
