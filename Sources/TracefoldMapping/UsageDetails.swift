import TracefoldModel

/// An observation's `usageDetails`: token counts by usage type, and `total`.
///
/// The types nearly every generation reports (`input`, `output`, and the
/// `total` the mapper fills in) are plain fields, as `CostDetails`' are:
/// the mapper reads them from every span with a token count, and a
/// dictionary per span (made at run time through the generic dictionary
/// code, filled with hashed keys, then sorted to be written) was about 3%
/// of the collector's CPU on the bench load, whose spans all report input
/// tokens. Counts keep their JSON form (an integer stays an integer).
/// Every other type (cached, reasoning, audio tokens; whatever a client's
/// `usage_details` names) is in `other`. A type is in one place only.
///
/// It reads like the dictionary it renders as: `usage["input"]`, a
/// dictionary literal, and equality of the two views.
public struct UsageDetails: Sendable, Hashable, ExpressibleByDictionaryLiteral {
    public var input: JSONValue?
    public var output: JSONValue?
    public var total: JSONValue?
    public var other: [String: JSONValue]

    public init(input: JSONValue? = nil, output: JSONValue? = nil, total: JSONValue? = nil, other: [String: JSONValue] = [:]) {
        self.input = input
        self.output = output
        self.total = total
        self.other = other
    }

    /// From the dictionary form (a client's `usage_details`, the trace
    /// state's): the usual types move to their fields.
    public init(_ dictionary: [String: JSONValue]) {
        self.init(other: dictionary)
        guard !dictionary.isEmpty else { return }
        input = other.removeValue(forKey: "input")
        output = other.removeValue(forKey: "output")
        total = other.removeValue(forKey: "total")
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    public subscript(type: String) -> JSONValue? {
        switch type {
        case "input": input
        case "output": output
        case "total": total
        default: other[type]
        }
    }

    public var count: Int {
        other.count + (input == nil ? 0 : 1) + (output == nil ? 0 : 1) + (total == nil ? 0 : 1)
    }

    public var isEmpty: Bool { input == nil && output == nil && total == nil && other.isEmpty }

    /// The dictionary form.
    public var dictionary: [String: JSONValue] {
        var d = other
        if let input { d["input"] = input }
        if let output { d["output"] = output }
        if let total { d["total"] = total }
        return d
    }

    /// Each type and count, the fields first.
    public func forEach(_ body: (String, JSONValue) -> Void) {
        if let input { body("input", input) }
        if let output { body("output", output) }
        if let total { body("total", total) }
        for (type, count) in other { body(type, count) }
    }

    /// The JSON object, keys ascending as `write(.object)` writes them, so
    /// the bytes are the dictionary form's.
    public func write(into w: inout JSONWriter) {
        guard other.isEmpty else { return w.write(.object(dictionary)) }
        w.beginObject()
        // "input" < "output" < "total".
        if let input { w.key("input"); w.write(input) }
        if let output { w.key("output"); w.write(output) }
        if let total { w.key("total"); w.write(total) }
        w.endObject()
    }

    public static func == (a: UsageDetails, b: UsageDetails) -> Bool {
        if a.other.isEmpty && b.other.isEmpty { return a.input == b.input && a.output == b.output && a.total == b.total }
        return a.dictionary == b.dictionary
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(dictionary) }
}
