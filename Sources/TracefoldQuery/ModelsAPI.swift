import Foundation
import Hummingbird
import TracefoldMapping
import TracefoldModel
import TracefoldStore

/// Langfuse's `/api/public/models` (issue 22), in the shapes the SDK's
/// `api.models` client parses: the definitions that price generations
/// reporting usage without cost. Built-in and configured definitions are
/// read-only; ones made here are stored and price the next generation.
public struct ModelsAPI: Sendable {
    let catalog: ModelCatalog

    public init(catalog: ModelCatalog) { self.catalog = catalog }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/api/public/models") { request, _ in try await QueryAPI.offload { try self.list(request) } }
        router.get("/api/public/models/:id") { _, context in
            let id = QueryAPI.pathID(context)
            return try await QueryAPI.offload {
                guard let d = try catalog.definition(id: id) else { return Self.notFound(id) }
                return QueryAPI.json(.ok, Self.json(d))
            }
        }
        router.post("/api/public/models") { request, _ in
            try await QueryAPI.withJSONBody(request) { body, receivedAt in
                let definition: ModelDefinition
                do {
                    definition = try Self.definition(body, id: "tf-" + UUID().uuidString.lowercased(), createdAt: receivedAt)
                } catch let e as QueryError {
                    return e.response
                }
                try await QueryAPI.offload { try catalog.add(definition) }
                return QueryAPI.json(.ok, Self.json(definition))
            }
        }
        router.delete("/api/public/models/:id") { _, context in
            let id = QueryAPI.pathID(context)
            return try await QueryAPI.offload {
                switch try catalog.delete(id: id) {
                case nil: return Response(status: .noContent)
                case .builtIn?:
                    return QueryAPI.error(.badRequest, "InvalidRequestError", "model \"\(id)\" is built in and read-only; define one for the same model to override it")
                case .configured?:
                    return QueryAPI.error(.badRequest, "InvalidRequestError", "model \"\(id)\" is defined in collector.yaml (processors.fold.models); change it there")
                case .notFound?: return Self.notFound(id)
                }
            }
        }
    }

    static func notFound(_ id: String) -> Response { QueryAPI.error(.notFound, "Model not found", "no model with id \"\(id)\"") }

    func list(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        do {
            let (page, limit) = try q.page()
            let all = try catalog.all()
            let start = min(all.count, (page - 1).multipliedReportingOverflow(by: limit).overflow ? all.count : (page - 1) * limit)
            let items = all[start..<min(all.count, start + limit)].map(Self.json)
            return QueryAPI.json(.ok, .object(["data": .array(Array(items)), "meta": QueryAPI.meta(page: page, limit: limit, total: all.count)]))
        } catch let e as QueryError {
            return e.response
        }
    }

    /// Langfuse's `Model`: flat prices for input, output and total, the
    /// prices by usage type, and one default pricing tier holding them.
    static func json(_ d: ModelDefinition) -> JSONValue {
        let prices = JSONValue.object(d.prices.mapValues(JSONValue.double))
        return .object([
            "id": .string(d.id), "modelName": .string(d.modelName), "matchPattern": .string(d.matchPattern),
            "startDate": d.startUnixNano.map { .string(ISOTime.format(unixNano: $0)) } ?? .null, "unit": .string(d.unit),
            "inputPrice": d.prices["input"].map(JSONValue.double) ?? .null, "outputPrice": d.prices["output"].map(JSONValue.double) ?? .null,
            "totalPrice": d.prices["total"].map(JSONValue.double) ?? .null, "tokenizerId": d.tokenizerID.map(JSONValue.string) ?? .null,
            "tokenizerConfig": .null, "isLangfuseManaged": .bool(d.isBuiltIn), "createdAt": .string(ISOTime.format(unixNano: d.createdAtUnixNano)),
            "prices": .object(d.prices.mapValues { .object(["price": .double($0)]) }),
            "pricingTiers": .array([.object([
                "id": .string(d.id + "_tier_default"), "name": .string("Standard"), "isDefault": .bool(true), "priority": .int(0),
                "conditions": .array([]), "prices": prices,
            ])]),
        ])
    }

    /// A `CreateModelRequest`, checked as Langfuse checks it: flat prices or
    /// one default pricing tier, not both; a total price alone.
    static func definition(_ body: JSONValue, id: String, createdAt: UInt64) throws -> ModelDefinition {
        guard case .object(let o) = body else { throw QueryError("the body must be a model object") }
        guard let name = o["modelName"]?.stringValue, !name.isEmpty else { throw QueryError("modelName is required") }
        guard let pattern = o["matchPattern"]?.stringValue, !pattern.isEmpty else { throw QueryError("matchPattern is required") }
        guard ModelDefinition.compile(pattern) != nil else { throw QueryError("matchPattern is not a regular expression: \"\(pattern)\"") }
        var start: UInt64?
        if let s = o["startDate"], s != .null {
            guard let text = s.stringValue, let t = ISOTime.parse(text) else { throw QueryError("startDate must be an ISO 8601 date-time") }
            start = t
        }
        let unit = o["unit"]?.stringValue?.uppercased() ?? "TOKENS"
        guard ModelDefinition.units.contains(unit) else { throw QueryError("unit must be one of \(ModelDefinition.units.joined(separator: ", "))") }
        func price(_ key: String, _ v: JSONValue?) throws -> Double? {
            guard let v, v != .null else { return nil }
            guard let d = v.numberValue, d.isFinite, d >= 0 else { throw QueryError("\(key) must be a number of USD per unit, at least 0") }
            return d
        }
        var prices = [String: Double]()
        let flat = try [("input", price("inputPrice", o["inputPrice"])), ("output", price("outputPrice", o["outputPrice"])), ("total", price("totalPrice", o["totalPrice"]))]
        for case let (type, p?) in flat { prices[type] = p }
        if prices["total"] != nil && (prices["input"] != nil || prices["output"] != nil) {
            throw QueryError("totalPrice cannot be set with inputPrice or outputPrice")
        }
        if let tiers = o["pricingTiers"], tiers != .null {
            guard prices.isEmpty else { throw QueryError("pricingTiers cannot be sent with inputPrice, outputPrice or totalPrice") }
            guard case .array(let list) = tiers, list.count == 1, list[0]["isDefault"] == .bool(true),
                (list[0]["conditions"]?.arrayValue ?? []).isEmpty, case .object(let tierPrices)? = list[0]["prices"]
            else { throw QueryError("pricingTiers must hold exactly one default tier without conditions: tracefold has no conditional tiers") }
            for (type, v) in tierPrices { prices[type] = try price("pricingTiers[0].prices.\(type)", v) }
        }
        guard !prices.isEmpty else { throw QueryError("a model needs prices: inputPrice/outputPrice/totalPrice or pricingTiers") }
        return ModelDefinition(
            id: id, modelName: name, matchPattern: pattern, startUnixNano: start, unit: unit, prices: prices,
            tokenizerID: o["tokenizerId"]?.stringValue, createdAtUnixNano: createdAt
        )
    }
}
