import Foundation
import TracefoldModel

/// A model definition (Langfuse's models, issue 22): which generations it
/// prices (`matchPattern`, a case-insensitive regular expression on the
/// generation's model, from `startDate` on) and the price in USD of one
/// unit of each usage type. A usage type without a price costs nothing.
public struct ModelDefinition: Sendable, Equatable {
    public var id: String
    public var modelName: String
    public var matchPattern: String
    /// Applies to generations that start at or after this; nil: always.
    public var startUnixNano: UInt64?
    public var unit: String
    /// USD per unit, by usage type (`input`, `output`, `input_cached_tokens`, …).
    public var prices: [String: Double]
    public var tokenizerID: String?
    /// Shipped with tracefold (Langfuse's `isLangfuseManaged`): read-only,
    /// and a user definition for the same model wins over it.
    public var isBuiltIn: Bool
    public var createdAtUnixNano: UInt64

    public init(
        id: String, modelName: String, matchPattern: String, startUnixNano: UInt64? = nil, unit: String = "TOKENS",
        prices: [String: Double], tokenizerID: String? = nil, isBuiltIn: Bool = false, createdAtUnixNano: UInt64 = 0
    ) {
        self.id = id
        self.modelName = modelName
        self.matchPattern = matchPattern
        self.startUnixNano = startUnixNano
        self.unit = unit
        self.prices = prices
        self.tokenizerID = tokenizerID
        self.isBuiltIn = isBuiltIn
        self.createdAtUnixNano = createdAtUnixNano
    }

    /// The pattern as a regular expression, case-insensitive as Langfuse's
    /// patterns are (they also start with `(?i)`); nil if it does not compile.
    public static func compile(_ pattern: String) -> NSRegularExpression? {
        try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive])
    }

    /// The usage units Langfuse's definitions name.
    public static let units = ["TOKENS", "CHARACTERS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS"]
}

/// What pricing decided for one span, kept with the stored span
/// (`_tracefold.cost` on its resource, `stamp`) so that a trace rebuilt from
/// the store, or caught up by another process, gets the same cost whatever
/// definitions are in force then: a definition added later prices only the
/// generations folded after it. It holds the prices, not the costs: the
/// costs follow from them and the span's usage, and one decision (and its
/// stamp text) serves every span its definition prices.
public final class CostDecision: Sendable {
    /// The definition that matched; nil when none did.
    public let modelID: String?
    /// Its prices, USD per unit by usage type.
    public let prices: [String: Double]
    /// The stamp with every price. A span's stamp (`stamp(used:)`) keeps only
    /// the prices its costs used, which is all a replay of it needs.
    public let stamp: String

    /// The usual types' prices apart, so that a span's lookup is a field
    /// read, not a hash of the type's name.
    private let inputPrice: Double?
    private let outputPrice: Double?
    private let otherPrices: [String: Double]
    /// Priced per total unit only (older embedding models): what it costs.
    private let totalOnlyPrice: Double?
    /// The priced types in a fixed order: bit i of a span's `used` mask is
    /// the i-th.
    private let pricedTypes: [String]
    private let bits: [String: UInt64]
    private let inputBit: UInt64
    private let outputBit: UInt64
    private let totalBit: UInt64
    /// Every span stamp, by mask, made up front for a definition of up to
    /// `tabulatedTypes` types: stamping a span is then an array read.
    private let stamps: [String]
    static let tabulatedTypes = 6

    /// `tabulate`: make every span stamp up front (a definition's decision
    /// stamps many spans; one read back from a stamp stamps none).
    init(modelID: String?, prices: [String: Double], tabulate: Bool) {
        self.modelID = modelID
        self.prices = prices
        inputPrice = prices["input"]
        outputPrice = prices["output"]
        otherPrices = prices.filter { $0.key != "input" && $0.key != "output" && $0.key != "total" }
        totalOnlyPrice = prices.count == 1 ? prices["total"] : nil
        // Past 64 types (no definition has that many) every span gets the
        // whole stamp.
        let types = prices.keys.sorted()
        pricedTypes = types.count <= 64 ? types : []
        let bits = Dictionary(uniqueKeysWithValues: pricedTypes.enumerated().map { ($1, UInt64(1) << UInt64($0)) })
        inputBit = bits["input"] ?? 0
        outputBit = bits["output"] ?? 0
        totalBit = bits["total"] ?? 0
        self.bits = bits
        stamp = Self.stamp(modelID: modelID, prices: prices)
        stamps = tabulate && types.count <= Self.tabulatedTypes
            ? (0..<(1 << types.count)).map { Self.stamp(modelID: modelID, prices: Self.prices(prices, types, mask: UInt64($0))) }
            : []
    }

    public convenience init(modelID: String?, prices: [String: Double]) {
        self.init(modelID: modelID, prices: prices, tabulate: true)
    }

    private static func stamp(modelID: String?, prices: [String: Double]) -> String {
        JSONWriter.serialize(.object(["modelId": modelID.map(JSONValue.string) ?? .null, "prices": .object(prices.mapValues(JSONValue.double))]))
    }

    private static func prices(_ prices: [String: Double], _ types: [String], mask: UInt64) -> [String: Double] {
        var used = [String: Double]()
        for (i, type) in types.enumerated() where mask & (UInt64(1) << UInt64(i)) != 0 { used[type] = prices[type] }
        return used
    }

    /// The stamp for a span whose costs used the prices in `used` (what
    /// `price` returned): the definition and those prices.
    public func stamp(used: UInt64) -> String {
        if used < stamps.count { return stamps[Int(used)] }
        guard !pricedTypes.isEmpty, used != (pricedTypes.count == 64 ? ~0 : (UInt64(1) << UInt64(pricedTypes.count)) - 1) else { return stamp }
        return Self.stamp(modelID: modelID, prices: Self.prices(prices, pricedTypes, mask: used))
    }

    public static let attributeKey = "_tracefold.cost"

    /// Products of token counts and per-token prices to 12 decimal places,
    /// as totals are: 0.00025, not 0.00025000000000000006.
    static func rounded(_ x: Double) -> Double { (x * 1e12).rounded() / 1e12 }
    static let unmatched = CostDecision(modelID: nil, prices: [:])

    public convenience init?(stamp: String) {
        guard let v = try? JSONParser.parse(stamp), case .object(let prices)? = v["prices"] else { return nil }
        self.init(modelID: v["modelId"]?.stringValue, prices: prices.compactMapValues(\.numberValue), tabulate: false)
    }

    /// The generation's `costDetails`: the client's costs, each usage type
    /// it left without one priced, and `total` (the client's, or the sum).
    /// A price per total unit only (older embedding models) prices the total.
    /// With them, the prices used (`used`, for `stamp(used:)`): a stored
    /// span's stamp names only those, enough for a replay to price it the
    /// same (a stamp with every price cost about 70 bytes more per span).
    /// This runs for every span with a model and usage: the usual types are
    /// priced into fields, with no dictionary built and no type name hashed.
    public func price(usage: [String: JSONValue], clientCost: [String: JSONValue]) -> (details: CostDetails, used: UInt64) {
        price(usage: UsageDetails(usage), clientCost: clientCost)
    }

    public func price(usage: UsageDetails, clientCost: [String: JSONValue]) -> (details: CostDetails, used: UInt64) {
        var out = CostDetails(other: clientCost)
        var used: UInt64 = 0
        var added = false
        usage.forEach { type, amount in
            guard type != "total", clientCost.isEmpty || clientCost[type] == nil, let n = amount.numberValue else { return }
            switch type {
            case "input":
                guard let price = inputPrice else { return }
                out.input = Self.rounded(n * price)
                used |= inputBit
            case "output":
                guard let price = outputPrice else { return }
                out.output = Self.rounded(n * price)
                used |= outputBit
            default:
                guard !otherPrices.isEmpty, let price = otherPrices[type] else { return }
                out.other[type] = .double(Self.rounded(n * price))
                used |= bits[type] ?? 0
            }
            added = true
        }
        guard added else {
            if clientCost.isEmpty, let price = totalOnlyPrice, let n = usage["total"]?.numberValue {
                return (CostDetails(total: Self.rounded(n * price)), totalBit)
            }
            return (CostDetails(SpanMapper.withTotal(clientCost)), 0)
        }
        // The total: the client's, or the sum of every type, as `withTotal`
        // sums them.
        if clientCost.isEmpty || clientCost["total"] == nil {
            var sum = (out.input ?? 0) + (out.output ?? 0)
            for v in out.other.values { sum += v.numberValue ?? 0 }
            out.total = Self.rounded(sum)
        }
        return (out, used)
    }
}


/// The definitions in force, and which of them match a model string. The
/// pattern match runs once per distinct model string (and again only after
/// the definitions change), not once per span.
public final class ModelPricer: @unchecked Sendable {
    private let lock = NSLock()
    /// In precedence order: user definitions before built-ins, then the
    /// latest start first, then by id.
    private var definitions: [(ModelDefinition, NSRegularExpression, CostDecision)] = []
    /// Per model string, the matching definitions' start dates and
    /// decisions in precedence order: what a span's lookup reads, without
    /// copying a definition.
    private var matches: [String: [(start: UInt64, index: Int, decision: CostDecision)]] = [:]
    /// Distinct model strings remembered; past it the cache starts over.
    static let cacheLimit = 10_000

    public init(_ definitions: [ModelDefinition] = []) { replace(definitions) }

    /// Puts `definitions` in force; ones whose pattern does not compile are
    /// skipped (config and API validate patterns before they get here).
    public func replace(_ definitions: [ModelDefinition]) {
        let compiled = definitions.compactMap { d in
            ModelDefinition.compile(d.matchPattern).map { (d, $0, CostDecision(modelID: d.id, prices: d.prices)) }
        }.sorted { a, b in
            if a.0.isBuiltIn != b.0.isBuiltIn { return !a.0.isBuiltIn }
            if (a.0.startUnixNano ?? 0) != (b.0.startUnixNano ?? 0) { return (a.0.startUnixNano ?? 0) > (b.0.startUnixNano ?? 0) }
            return a.0.id < b.0.id
        }
        lock.withLock {
            self.definitions = compiled
            matches = [:]
        }
    }

    public var all: [ModelDefinition] { lock.withLock { definitions.map(\.0) } }

    /// Model strings whose matches are remembered.
    var cachedModels: Int { lock.withLock { matches.count } }

    /// The definition that prices `model` for a generation that started at
    /// `start`: the first in precedence order whose pattern matches and
    /// whose start date has come.
    public func definition(for model: String, at start: UInt64) -> ModelDefinition? {
        lock.withLock { match(model, at: start).map { definitions[$0.index].0 } }
    }

    /// The index in `definitions` and the decision of the definition that
    /// prices `model` at `start`.
    private func match(_ model: String, at start: UInt64) -> (index: Int, decision: CostDecision)? {
        if let cached = matches[model] {
            for c in cached where c.start <= start { return (c.index, c.decision) }
            return nil
        }
        let range = NSRange(model.startIndex..., in: model)
        let candidates = definitions.indices.filter { definitions[$0].1.firstMatch(in: model, range: range) != nil }.map {
            (start: definitions[$0].0.startUnixNano ?? 0, index: $0, decision: definitions[$0].2)
        }
        if matches.count >= Self.cacheLimit { matches = [:] }
        matches[model] = candidates
        for c in candidates where c.start <= start { return (c.index, c.decision) }
        return nil
    }

    /// What pricing decides for a generation: nil when there is nothing to
    /// price (no model, no usage).
    public func decide(model: String?, hasUsage: Bool, start: UInt64) -> CostDecision? {
        guard let model, hasUsage else { return nil }
        return lock.withLock { match(model, at: start)?.decision } ?? .unmatched
    }
}

extension ModelDefinition {
    /// The definitions that ship with tracefold (`pricing/models.json`).
    public static let builtIns: [ModelDefinition] = {
        guard case .array(let models)? = (try? JSONParser.parse(builtInJSON))?["models"] else { return [] }
        return models.compactMap { m in
            m["id"]?.stringValue.flatMap { id in
                ModelDefinition(
                    json: m, id: id, isBuiltIn: true, createdAtUnixNano: m["asOf"]?.stringValue.flatMap { ISOTime.parse($0 + "T00:00:00Z") } ?? 0
                )
            }
        }
    }()

    /// A definition in the stored form (`modelName`, `matchPattern`,
    /// `startDate`, `unit`, `prices` by usage type, `tokenizerId`), which
    /// `pricing/models.json` uses too.
    public init?(json m: JSONValue, id: String, isBuiltIn: Bool, createdAtUnixNano: UInt64) {
        guard let name = m["modelName"]?.stringValue, let pattern = m["matchPattern"]?.stringValue, case .object(let prices)? = m["prices"] else {
            return nil
        }
        self.init(
            id: id, modelName: name, matchPattern: pattern, startUnixNano: m["startDate"]?.stringValue.flatMap(ISOTime.parse),
            unit: m["unit"]?.stringValue ?? "TOKENS", prices: prices.compactMapValues(\.numberValue), tokenizerID: m["tokenizerId"]?.stringValue,
            isBuiltIn: isBuiltIn, createdAtUnixNano: createdAtUnixNano
        )
    }

    /// The stored form.
    public var storedJSON: JSONValue {
        .object([
            "modelName": .string(modelName), "matchPattern": .string(matchPattern),
            "startDate": startUnixNano.map { .string(ISOTime.format(unixNano: $0)) } ?? .null, "unit": .string(unit),
            "prices": .object(prices.mapValues(JSONValue.double)), "tokenizerId": tokenizerID.map(JSONValue.string) ?? .null,
        ])
    }
}
