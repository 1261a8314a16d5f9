import TracefoldModel

/// An observation's `costDetails`: USD by usage type, and `total`.
///
/// The costs pricing infers for the usual types (`input`, `output`, and the
/// `total` it sums) are plain fields, not dictionary entries: inference runs
/// for every generation with a model and usage, and building, carrying and
/// sorting a dictionary per span was most of what it cost (issue 22). What
/// the client sent stays exactly as sent (an integer stays an integer) in
/// `other`, with any inferred type beyond the usual ones. A type is in one
/// place only.
///
/// It reads like the dictionary it renders as: `details["input"]`, a
/// dictionary literal, and equality of the two views.
public struct CostDetails: Sendable, Hashable, ExpressibleByDictionaryLiteral, TypedDetails {
    public var input: Double?
    public var output: Double?
    public var total: Double?
    /// The client's costs as it sent them, and inferred costs of other types.
    public var other: [String: JSONValue]

    public init(input: Double? = nil, output: Double? = nil, total: Double? = nil, other: [String: JSONValue] = [:]) {
        self.input = input
        self.output = output
        self.total = total
        self.other = other
    }

    /// From the dictionary form (the trace state's, a test's). A double for
    /// a usual type moves to its field, which renders it the same way.
    public init(_ dictionary: [String: JSONValue]) {
        self.init(other: dictionary)
        guard !dictionary.isEmpty else { return }
        if case .double(let v)? = other["input"] { input = v; other["input"] = nil }
        if case .double(let v)? = other["output"] { output = v; other["output"] = nil }
        if case .double(let v)? = other["total"] { total = v; other["total"] = nil }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    public subscript(type: String) -> JSONValue? {
        switch type {
        case "input": if let input { return .double(input) }
        case "output": if let output { return .double(output) }
        case "total": if let total { return .double(total) }
        default: break
        }
        return other[type]
    }

    /// The total as a number, whether inferred or the client's.
    public var totalValue: Double? { total ?? other["total"]?.numberValue }

    public var usual: (input: JSONValue?, output: JSONValue?, total: JSONValue?) {
        (input.map(JSONValue.double), output.map(JSONValue.double), total.map(JSONValue.double))
    }

    public static func == (a: CostDetails, b: CostDetails) -> Bool { a.sameTypes(as: b) }

    public func hash(into hasher: inout Hasher) { hasher.combine(dictionary) }
}
