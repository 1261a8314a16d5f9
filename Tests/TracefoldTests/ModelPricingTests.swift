import Foundation
import Logging
import TracefoldConfig
@testable import TracefoldFold
@testable import TracefoldMapping
import TracefoldModel
import TracefoldStore
import XCTest

/// Issue 22: model definitions, and cost inferred from usage when a
/// generation reports none.
final class ModelPricingTests: XCTestCase {
    typealias C = Conformance

    static let custom = ModelDefinition(id: "m-custom", modelName: "acme-llm", matchPattern: "(?i)^acme-llm$", prices: ["input": 0.001, "output": 0.002])

    /// A generation of `model` with these attributes besides.
    static func generation(_ model: String, id: UInt64 = 2, start: UInt64 = 5, _ attrs: [String: AttributeValue]) -> Span {
        C.S("gen", id: id, parent: 1, start, start + 10, ["langfuse.observation.type": .string("generation"), "gen_ai.request.model": .string(model)].merging(attrs) { $1 })
    }

    func map(_ span: Span, _ pricer: ModelPricer) -> Observation {
        SpanMapper(pricer: pricer).map(span, resource: C.r0, scope: C.sdk).observation
    }

    func testUsageWithoutCostIsPricedPerTypeWithTheDefinitionsID() {
        let pricer = ModelPricer(ModelDefinition.builtIns + [Self.custom])
        let o = map(Self.generation("gpt-4o", ["gen_ai.usage.input_tokens": .int(1000), "gen_ai.usage.output_tokens": .int(200)]), pricer)
        XCTAssertEqual(o.modelID, "tf-gpt-4o")
        XCTAssertEqual(o.costDetails["input"]?.numberValue, 0.0025)
        XCTAssertEqual(o.costDetails["output"]?.numberValue, 0.002)
        XCTAssertEqual(o.costDetails["total"]?.numberValue, 0.0045)
        // Provider prefixes and letter case, as Langfuse's patterns allow.
        XCTAssertEqual(map(Self.generation("OpenAI/GPT-4o", ["gen_ai.usage.input_tokens": .int(1)]), pricer).modelID, "tf-gpt-4o")
        XCTAssertEqual(map(Self.generation("acme-llm", ["gen_ai.usage.input_tokens": .int(3)]), pricer).costDetails, ["input": .double(0.003), "total": .double(0.003)])
    }

    func testAClientCostWinsAndOnlyTheTypesItLeftOutArePriced() {
        let pricer = ModelPricer([Self.custom])
        let partial = map(Self.generation("acme-llm", [
            "langfuse.observation.usage_details": .string(#"{"input":10,"output":20}"#), "langfuse.observation.cost_details": .string(#"{"input":5}"#),
        ]), pricer)
        XCTAssertEqual(partial.costDetails["input"], .int(5), "the client's")
        XCTAssertEqual(partial.costDetails["output"]?.numberValue, 0.04, "inferred")
        XCTAssertEqual(partial.costDetails["total"]?.numberValue, 5.04)
        let total = map(Self.generation("acme-llm", ["langfuse.observation.usage_details": .string(#"{"input":10}"#), "gen_ai.usage.cost": .double(0.5)]), pricer)
        XCTAssertEqual(total.costDetails["total"], .double(0.5), "a client-sent total stands")
        XCTAssertEqual(total.costDetails["input"]?.numberValue, 0.01)
        let full = map(Self.generation("acme-llm", ["langfuse.observation.usage_details": .string(#"{"input":10}"#), "langfuse.observation.cost_details": .string(#"{"input":1}"#)]), pricer)
        XCTAssertEqual(full.costDetails, ["input": .int(1), "total": .int(1)], "nothing left to price")
        XCTAssertEqual(full.modelID, "m-custom")
    }

    func testUnknownModelsNoUsageAndUnpricedTypesCostNothing() {
        let pricer = ModelPricer(ModelDefinition.builtIns)
        let unknown = map(Self.generation("my-own-model", ["gen_ai.usage.input_tokens": .int(1000)]), pricer)
        XCTAssertEqual(unknown.costDetails, [:])
        XCTAssertNil(unknown.modelID)
        XCTAssertEqual(map(Self.generation("gpt-4o", [:]), pricer).costDetails, [:], "no usage, nothing to price")
        let audio = map(Self.generation("gpt-4o", ["gen_ai.usage.output_tokens": .int(10), "gen_ai.usage.output_tokens_details.audio_tokens": .int(4)]), pricer)
        XCTAssertNil(audio.costDetails["output_audio_tokens"], "gpt-4o's definition prices no audio tokens")
        XCTAssertEqual(audio.costDetails["output"]?.numberValue, 0.00006)
    }

    func testTheDefinitionInForceAtTheGenerationsStartPricesIt() {
        let t = C.T * 1_000_000
        let old = ModelDefinition(id: "old", modelName: "acme-llm", matchPattern: "^acme-llm$", prices: ["input": 1])
        let new = ModelDefinition(id: "new", modelName: "acme-llm", matchPattern: "^acme-llm$", startUnixNano: t + 100_000_000, prices: ["input": 2])
        let pricer = ModelPricer([new, old])
        let before = map(Self.generation("acme-llm", start: 50, ["gen_ai.usage.input_tokens": .int(1)]), pricer)
        let after = map(Self.generation("acme-llm", start: 100, ["gen_ai.usage.input_tokens": .int(1)]), pricer)
        XCTAssertEqual(before.modelID, "old")
        XCTAssertEqual(before.costDetails["input"]?.numberValue, 1)
        XCTAssertEqual(after.modelID, "new", "from its start date on")
        XCTAssertEqual(after.costDetails["input"]?.numberValue, 2)
        // A user definition wins over a built-in for the same model.
        let mine = ModelDefinition(id: "mine", modelName: "gpt-4o", matchPattern: "(?i)^gpt-4o$", prices: ["input": 1])
        XCTAssertEqual(map(Self.generation("gpt-4o", ["gen_ai.usage.input_tokens": .int(1)]), ModelPricer(ModelDefinition.builtIns + [mine])).modelID, "mine")
    }

    func testAFoldedSpanKeepsItsPricingWhenItsTraceIsRebuilt() throws {
        try StoreBackend.eachStore { backend, store, _ in
            let pricer = ModelPricer([Self.custom])
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 1, hotTraces: 1, logger: Logger(label: "test"), pricer: pricer)
            _ = try folder.consume(Fixtures.batch([C.S("root", id: 1, 0, 30), Self.generation("acme-llm", ["gen_ai.usage.input_tokens": .int(10)])]))
            // Prices change, the trace is evicted, and a late span rebuilds it.
            pricer.replace([ModelDefinition(id: "m-later", modelName: "acme-llm", matchPattern: "^acme-llm$", prices: ["input": 100])])
            _ = try folder.consume(Fixtures.batch([C.S("other", id: 9, 0, 1, trace: QueryAPITests.other)]))
            _ = try folder.consume(Fixtures.batch([C.S("late", id: 3, parent: 1, 20, 25), Self.generation("acme-llm", id: 4, ["gen_ai.usage.input_tokens": .int(10)])]))
            let first = try XCTUnwrap(store.observation(C.id(2)).map { try JSONParser.parse($0) })
            XCTAssertEqual(first["modelId"], .string("m-custom"), "\(backend)")
            XCTAssertEqual(first["costDetails"]?["input"]?.numberValue, 0.01, "\(backend)")
            let later = try XCTUnwrap(store.observation(C.id(4)).map { try JSONParser.parse($0) })
            XCTAssertEqual(later["modelId"], .string("m-later"), "\(backend): folded after the change")
            let trace = try XCTUnwrap(store.traceRecord(C.trace).map { try JSONParser.parse($0) })
            XCTAssertEqual(trace["totalCost"]?.numberValue, 1000.01, "\(backend): the rebuilt trace sums the kept and the new costs")
        }
    }

    /// The stored span keeps only the prices its costs used: all a replay
    /// needs, and about 70 bytes a span less than every price.
    func testASpansStampHoldsOnlyThePricesItsCostsUsed() throws {
        let decision = CostDecision(modelID: "m", prices: ["input": 0.001, "output": 0.002, "input_cached_tokens": 0.0005])
        let cases: [(usage: [String: JSONValue], client: [String: JSONValue], stamp: String)] = [
            (["input": .int(10), "total": .int(10)], [:], #"{"modelId":"m","prices":{"input":0.001}}"#),
            (["input": .int(10), "output": .int(5), "input_cached_tokens": .int(4)], [:], decision.stamp),
            (["input": .int(10), "output": .int(5)], ["input": .int(1)], #"{"modelId":"m","prices":{"output":0.002}}"#),
            (["input": .int(10)], ["input": .int(1)], #"{"modelId":"m","prices":{}}"#),
        ]
        for c in cases {
            let priced = decision.price(usage: c.usage, clientCost: c.client)
            let stamp = decision.stamp(used: priced.used)
            XCTAssertEqual(stamp, c.stamp, "\(c.usage) \(c.client)")
            let read = try XCTUnwrap(CostDecision(stamp: stamp))
            let replayed = read.price(usage: c.usage, clientCost: c.client)
            XCTAssertEqual(replayed.details, priced.details, "a replay from the stamp prices it the same")
            XCTAssertEqual(read.stamp(used: replayed.used), stamp, "untabulated, the same stamp")
        }
        XCTAssertEqual(decision.stamp, #"{"modelId":"m","prices":{"input":0.001,"input_cached_tokens":0.0005,"output":0.002}}"#)
        // At `tabulatedTypes` types the stamps are made up front.
        let six = CostDecision(modelID: "s", prices: Dictionary(uniqueKeysWithValues: (1...5).map { ("t\($0)", 0.5) } + [("input", 0.25)]))
        XCTAssertEqual(six.stamp(used: six.price(usage: ["input": .int(4)], clientCost: [:]).used), #"{"modelId":"s","prices":{"input":0.25}}"#)
        // Past `tabulatedTypes` types the stamp is made when asked.
        let many = CostDecision(modelID: "w", prices: Dictionary(uniqueKeysWithValues: (1...7).map { ("t\($0)", 0.5) } + [("input", 0.25)]))
        XCTAssertEqual(many.stamp(used: many.price(usage: ["input": .int(4)], clientCost: [:]).used), #"{"modelId":"w","prices":{"input":0.25}}"#)
        // A definition priced per total unit only keeps that price.
        let embedding = CostDecision(modelID: "e", prices: ["total": 0.0001])
        let total = embedding.price(usage: ["total": .int(20)], clientCost: [:])
        XCTAssertEqual(total.details, ["total": .double(0.002)])
        XCTAssertEqual(embedding.stamp(used: total.used), #"{"modelId":"e","prices":{"total":0.0001}}"#)
    }

    func testARecordStoredBeforeModelIDRendersItAsNull() throws {
        let span = Self.generation("gpt-4o", ["gen_ai.usage.input_tokens": .int(1)])
        let o = map(span, ModelPricer(ModelDefinition.builtIns))
        var state = TraceState(traceID: C.trace)
        state.add(SpanMapper().map(span, resource: C.r0, scope: C.sdk), limits: MetadataLimits())
        let v1 = try XCTUnwrap(ObservationRecord.json(ObservationRecord.encode(o, metadata: [:], entries: [], state: state, version: 1)))
        let v2 = try XCTUnwrap(ObservationRecord.json(ObservationRecord.encode(o, metadata: [:], entries: [], state: state)))
        XCTAssertEqual(try JSONParser.parse(v1)["modelId"], .null)
        XCTAssertEqual(try JSONParser.parse(v2)["modelId"], .string("tf-gpt-4o"))
        var rest1 = try JSONParser.parse(v1).objectValue ?? [:], rest2 = try JSONParser.parse(v2).objectValue ?? [:]
        rest1["modelId"] = nil
        rest2["modelId"] = nil
        XCTAssertEqual(rest1, rest2)
    }

    func testBuiltInsAreTheRepositorysDataFileAndAllCompile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("pricing/models.json"), encoding: .utf8)
        XCTAssertEqual(file, ModelDefinition.builtInJSON + "\n", "run scripts/embed-model-prices.sh")
        let models = try XCTUnwrap(JSONParser.parse(file)["models"]?.arrayValue)
        XCTAssertEqual(ModelDefinition.builtIns.count, models.count, "every entry parses")
        for m in models {
            XCTAssertNotNil(m["source"]?.stringValue.flatMap(URL.init(string:)), "\(m): where its prices come from")
            XCTAssertNotNil(m["asOf"]?.stringValue.flatMap { ISOTime.parse($0 + "T00:00:00Z") }, "\(m): the date of its prices")
        }
        for d in ModelDefinition.builtIns {
            XCTAssertNotNil(ModelDefinition.compile(d.matchPattern), d.id)
            XCTAssertFalse(d.prices.isEmpty, d.id)
            XCTAssertTrue(d.prices.values.allSatisfy { $0 > 0 && $0 < 0.001 }, "\(d.id): USD per token")
        }
        XCTAssertEqual(Set(ModelDefinition.builtIns.map(\.id)).count, ModelDefinition.builtIns.count)
        let pricer = ModelPricer(ModelDefinition.builtIns)
        for (model, id) in [("gpt-4o-mini", "tf-gpt-4o-mini"), ("claude-3-5-sonnet-20241022", "tf-claude-3-5-sonnet"), ("gemini-2.5-pro", "tf-gemini-2.5-pro"),
                            ("mistral-large-latest", "tf-mistral-large"), ("claude-sonnet-4-5", "tf-claude-sonnet-4")] {
            XCTAssertEqual(pricer.definition(for: model, at: .max)?.id, id, model)
        }
    }

    func testModelsInTheConfigAreValidatedWithLineNumbers() throws {
        let base = "receivers: {otlp: {protocols: {http: {}}}}\nservice: {pipelines: {traces: {receivers: [otlp], processors: [fold]}}}\nprocessors:\n  fold:\n    models:\n"
        let good = base + """
                  - model_name: acme-llm
                    match_pattern: "(?i)^acme-llm$"
                    start_date: 2026-01-01
                    prices: {input: 0.0000025, output: 1e-5}
            """
        let models = try CollectorConfig.parse(yaml: good, environment: [:]).fold?.models
        XCTAssertEqual(models, [ModelPriceConfig(modelName: "acme-llm", matchPattern: "(?i)^acme-llm$", startUnixNano: 1_767_225_600_000_000_000, prices: ["input": 0.0000025, "output": 0.00001])])
        let bad: [(String, String)] = [
            ("  - {model_name: x, match_pattern: \"(\", prices: {input: 1}}", "match_pattern is not a regular expression"),
            ("  - {model_name: x, match_pattern: x, prices: {input: -1}}", "at least 0"),
            ("  - {model_name: x, match_pattern: x, prices: {input: cheap}}", "must be a number"),
            ("  - {model_name: x, match_pattern: x}", "needs prices"),
            ("  - {match_pattern: x, prices: {input: 1}}", "needs model_name"),
            ("  - {model_name: x, match_pattern: x, prices: {input: 1}, start_date: soon}", "start_date"),
            ("  - {model_name: x, match_pattern: x, prices: {input: 1}, unit: GALLONS}", "unit"),
            ("  - {model_name: x, match_pattern: x, prices: {input: 1}, price: 2}", "unknown key \"price\""),
            ("  - {model_name: x, match_pattern: x, prices: {input: 1}}\n      - {model_name: x, match_pattern: y, prices: {input: 2}}", "defined twice"),
        ]
        for (entry, message) in bad {
            XCTAssertThrowsError(try CollectorConfig.parse(yaml: base + "    " + entry, environment: [:]), entry) { e in
                XCTAssertTrue("\(e)".contains(message) && "\(e)".contains(":6") || "\(e)".contains(message) && "\(e)".contains(":5"), "\(e)")
            }
        }
    }

    func testDefinitionsMadeThroughTheAPIAreStoredOnEveryBackend() throws {
        try StoreBackend.eachStore { backend, store, _ in
            let configured = ModelDefinition(id: "config/acme-llm", modelName: "acme-llm", matchPattern: "^acme-llm$", prices: ["input": 1])
            let catalog = try ModelCatalog(store: store, configured: [configured])
            let made = ModelDefinition(
                id: "tf-made", modelName: "made-llm", matchPattern: "(?i)^made-llm$", startUnixNano: 1_000_000_000, prices: ["input": 0.5, "output": 1.5],
                tokenizerID: "openai", createdAtUnixNano: 2_000_000_000
            )
            try catalog.add(made)
            XCTAssertEqual(catalog.pricer.definition(for: "MADE-LLM", at: .max)?.id, "tf-made", "\(backend): in force at once")
            // Another process (or a restart) reads it from the store.
            let other = try ModelCatalog(store: store, configured: [])
            XCTAssertEqual(try other.definition(id: "tf-made"), made, "\(backend)")
            XCTAssertEqual(try other.all().first?.id, "tf-made", "\(backend): user definitions first")
            XCTAssertEqual(try catalog.delete(id: "tf-gpt-4o"), .builtIn)
            XCTAssertEqual(try catalog.delete(id: "config/acme-llm"), .configured)
            XCTAssertEqual(try catalog.delete(id: "nope"), .notFound)
            XCTAssertNil(try catalog.delete(id: "tf-made"), "\(backend)")
            XCTAssertNil(catalog.pricer.definition(for: "made-llm", at: .max), "\(backend)")
            XCTAssertNil(try ModelCatalog(store: store, configured: []).definition(id: "tf-made"), "\(backend)")
        }
    }

    /// The pattern runs once per model string, not once per span.
    func testMatchesAreCachedPerModelString() {
        let pricer = ModelPricer(ModelDefinition.builtIns)
        XCTAssertEqual(pricer.definition(for: "gpt-4o", at: .max)?.id, "tf-gpt-4o")
        pricer.replace([Self.custom])
        XCTAssertNil(pricer.definition(for: "gpt-4o", at: .max), "a change of definitions empties the cache")
        XCTAssertEqual(pricer.definition(for: "ACME-LLM", at: .max)?.id, "m-custom")
        // At the cache's limit it still grows; one past, it starts over, and
        // answers stay the same.
        for i in pricer.cachedModels..<ModelPricer.cacheLimit { _ = pricer.definition(for: "model-\(i)", at: .max) }
        XCTAssertEqual(pricer.cachedModels, ModelPricer.cacheLimit)
        XCTAssertNil(pricer.definition(for: "model-\(ModelPricer.cacheLimit)", at: .max))
        XCTAssertEqual(pricer.cachedModels, 1)
        XCTAssertEqual(pricer.definition(for: "acme-llm", at: .max)?.id, "m-custom")
    }
}
