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
public struct UsageDetails: Sendable, Hashable, ExpressibleByDictionaryLiteral, TypedDetails {
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

    public var usual: (input: JSONValue?, output: JSONValue?, total: JSONValue?) { (input, output, total) }

    public static func == (a: UsageDetails, b: UsageDetails) -> Bool { a.sameTypes(as: b) }

    public func hash(into hasher: inout Hasher) { hasher.combine(dictionary) }
}
