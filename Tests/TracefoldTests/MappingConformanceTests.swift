import TracefoldFold
@testable import TracefoldMapping
import TracefoldModel
import XCTest

/// reference/langfuse.md §(e) cases 5–26, OTLP path, with SPEC.md's choices.
final class MappingConformanceTests: XCTestCase {
    typealias C = Conformance

    // 5
    func testIdsAndTimes() {
        var span = C.S("x", id: 1, 0)
        span.spanID = SpanID(hex: "dfe387fea7ef3b02")!
        span.startTimeUnixNano = 1_714_490_930_424_123_456
        span.endTimeUnixNano = 0
        let f = C.fold([span])
        let o = f.observations["dfe387fea7ef3b02"]!
        XCTAssertEqual(o["id"], .string("dfe387fea7ef3b02"))
        XCTAssertEqual(o["traceId"], .string("2cce18f7a1b2c3d4e5f60718293a8391"))
        XCTAssertEqual(o["parentObservationId"], .null)
        XCTAssertEqual(o["startTime"], .string("2024-04-30T15:28:50.424Z"))
        XCTAssertEqual(o["endTime"], .string("2024-04-30T15:28:50.424Z"))
        XCTAssertEqual(o["startTimeUnixNano"], .string("1714490930424123456"))
        XCTAssertEqual(o["endTimeUnixNano"], .string("1714490930424123456"))
    }

    // 6
    func testErrorStatusAndLevelAliases() {
        let boom = SpanStatus(code: .error, message: "boom")
        var o = C.fold([C.S("tool", id: 1, 10, 20, status: boom, ["langfuse.observation.type": .string("tool")])]).obs(1)
        XCTAssertEqual(o["type"], .string("TOOL"))
        XCTAssertEqual(o["level"], .string("ERROR"))
        XCTAssertEqual(o["statusMessage"], .string("boom"))
        for (alias, level) in [("WARNING", "WARNING"), ("warn", "WARNING"), ("fatal", "ERROR"), ("info", "DEFAULT"), ("trace", "DEBUG")] {
            o = C.fold([C.S("tool", id: 1, 10, 20, status: boom, ["langfuse.observation.level": .string(alias)])]).obs(1)
            XCTAssertEqual(o["level"], .string(level), alias)
        }
        o = C.fold([C.S("tool", id: 1, 10, 20, status: boom, ["langfuse.observation.status_message": .string("x")])]).obs(1)
        XCTAssertEqual(o["statusMessage"], .string("x"))
        o = C.fold([C.S("ok", id: 1, 10, 20)]).obs(1)
        XCTAssertEqual(o["level"], .string("DEFAULT"))
        XCTAssertEqual(o["statusMessage"], .null)
    }

    // 7
    func testRootOnly() {
        var resource = C.r0
        resource.attributes.append(Attribute("langfuse.environment", .string("staging")))
        let f = C.fold([C.S("root-fn", id: 1, 0, 30, [
            "langfuse.observation.type": .string("span"),
            "langfuse.observation.input": .string(#"{"args": ["q"], "kwargs": {}}"#),
            "langfuse.observation.output": .string("done"),
        ])], resource: resource)
        let t = f.trace
        XCTAssertEqual(t["id"], .string(C.trace.hex))
        XCTAssertEqual(t["name"], .string("root-fn"))
        XCTAssertEqual(t["timestamp"], .string(ISOTime.format(unixNano: C.T * 1_000_000)))
        XCTAssertEqual(t["environment"], .string("staging"))
        XCTAssertEqual(t["input"], json(#"{"args":["q"],"kwargs":{}}"#))
        XCTAssertEqual(t["output"], .string("done"))
        XCTAssertEqual(t["tags"], .array([]))
        XCTAssertEqual(t["public"], .bool(false))
        XCTAssertEqual(t["userId"], .null)
        XCTAssertEqual(t["sessionId"], .null)
        XCTAssertEqual(t["version"], .null)
        XCTAssertEqual(t["latency"], .double(0.03))
        let m = t["metadata"]!.objectValue!
        XCTAssertEqual(m["resourceAttributes"], json(#"{"telemetry.sdk.language":"python","service.name":"svc","langfuse.environment":"staging"}"#))
        XCTAssertEqual(m["scope"], json(#"{"name":"langfuse-sdk","version":"5.0.4","attributes":{"public_key":"pk"}}"#))
        XCTAssertNil(m["attributes"])
        XCTAssertEqual(f.obs(1)["environment"], .string("staging"))
    }

    // 8
    func testPropagatedTraceAttributesOnEverySpan() {
        let propagated: [String: AttributeValue] = [
            "user.id": .string("u1"), "session.id": .string("s1"), "langfuse.trace.name": .string("my-trace"),
            "langfuse.trace.tags": .array([.string("t1"), .string("t2")]), "langfuse.version": .string("v9"),
            "langfuse.trace.metadata.tenant": .string("\"acme\""), "langfuse.trace.metadata.count": .string("5"),
            "langfuse.trace.metadata.obj": .string(#"{"k":"v"}"#),
        ]
        let f = C.fold([C.S("child-a", id: 2, parent: 1, 5, 10, propagated), C.S("child-b", id: 3, parent: 1, 12, 20, propagated), C.S("root", id: 1, 0, 30, propagated)])
        let t = f.trace
        XCTAssertEqual(t["name"], .string("my-trace"))
        XCTAssertEqual(t["userId"], .string("u1"))
        XCTAssertEqual(t["sessionId"], .string("s1"))
        XCTAssertEqual(t["tags"], json(#"["t1","t2"]"#))
        XCTAssertEqual(t["version"], .string("v9"))
        XCTAssertEqual(t["metadata"]?["tenant"], .string("acme"))
        XCTAssertEqual(t["metadata"]?["count"], .int(5))
        XCTAssertEqual(t["metadata"]?["obj"], json(#"{"k":"v"}"#))
        XCTAssertEqual(t["observations"], .array([1, 2, 3].map { .string(C.id($0).hex) }))
        for n: UInt64 in [1, 2, 3] { XCTAssertEqual(f.obs(n)["version"], .string("v9")) }
    }

    // 9
    func testChildrenFirstThenRoot() {
        let a = [C.S("c1", id: 2, parent: 1, 10, 15), C.S("c2", id: 3, parent: 1, 20, 25)]
        let afterA = C.fold(a).trace
        XCTAssertEqual(afterA["name"], .null)
        XCTAssertEqual(afterA["timestamp"], .string(ISOTime.format(unixNano: (C.T + 10) * 1_000_000)))
        XCTAssertEqual(afterA["environment"], .string("default"))
        let afterB = C.fold(a + [C.S("root", id: 1, 0, 30, ["langfuse.trace.name": .string("N")])]).trace
        XCTAssertEqual(afterB["name"], .string("N"))
        XCTAssertEqual(afterB["timestamp"], .string(ISOTime.format(unixNano: C.T * 1_000_000)), "min start over all spans")
    }

    // 10
    func testNestedObserveIO() {
        let f = C.fold([
            C.S("root", id: 1, 0, 30),
            C.S("child", id: 2, parent: 1, 5, 10, ["langfuse.observation.input": .string(#"{"args": [1], "kwargs": {}}"#), "langfuse.observation.output": .string("3")]),
            C.S("fails", id: 3, parent: 1, 11, 12, status: SpanStatus(code: .error, message: "division by zero"), ["langfuse.observation.level": .string("ERROR"), "langfuse.observation.status_message": .string("division by zero")]),
        ])
        let o = f.obs(2)
        XCTAssertEqual(o["input"], json(#"{"args":[1],"kwargs":{}}"#))
        XCTAssertEqual(o["output"], .int(3))
        XCTAssertEqual(o["type"], .string("SPAN"))
        XCTAssertEqual(o["parentObservationId"], .string(C.id(1).hex))
        XCTAssertEqual(f.obs(3)["level"], .string("ERROR"))
        XCTAssertEqual(f.obs(3)["statusMessage"], .string("division by zero"))
        XCTAssertEqual(f.trace["level"], .string("ERROR"), "the worst observation level")
    }

    // 11
    func testPerKeyEncodingsAreDecodedAtIngest() {
        let o = C.fold([C.S("s", id: 1, 0, 1, [
            "langfuse.observation.metadata.step": .string("\"child\""), "langfuse.observation.metadata.n": .string("3"),
            "langfuse.observation.metadata.nested": .string(#"{"a":1}"#), "langfuse.observation.metadata.raw": .string("child"),
            "langfuse.observation.metadata.i": .int(3), "langfuse.observation.metadata.v3": .string("123"),
        ])]).obs(1)
        let m = o["metadata"]!
        XCTAssertEqual(m["step"], .string("child"))
        XCTAssertEqual(m["n"], .int(3))
        XCTAssertEqual(m["nested"], json(#"{"a":1}"#))
        XCTAssertEqual(m["raw"], .string("child"))
        XCTAssertEqual(m["i"], .int(3))
        XCTAssertEqual(m["v3"], .int(123), "a v3 raw string \"123\" reads as the number 123")
    }

    // 12
    func testBlobPlusPrefixedKeys() {
        var f = C.fold([C.S("s", id: 1, 0, 1, ["langfuse.observation.metadata": .string(#"{"a":1,"b":2}"#), "langfuse.observation.metadata.b": .string("3")])])
        XCTAssertEqual(f.obs(1)["metadata"]?["a"], .int(1))
        XCTAssertEqual(f.obs(1)["metadata"]?["b"], .int(3))
        f = C.fold([C.S("s", id: 1, 0, 1, ["langfuse.observation.metadata": .string("\"plain\"")])])
        XCTAssertEqual(Set(f.obs(1)["metadata"]!.objectValue!.keys), ["resourceAttributes", "scope"], "a non-object blob is dropped")
        XCTAssertEqual(f.trace["metadataEntries"]?.arrayValue?.first { $0["kind"] == .string("tracefold.warnings") }?["values"]?.objectValue?.count, 1)
        f = C.fold([C.S("s", id: 1, 0, 1, ["langfuse.trace.metadata.a.b": .string("1")])])
        XCTAssertEqual(f.trace["metadata"]?["a.b"], .int(1))
        XCTAssertNil(f.trace["metadata"]?["a"])
    }

    /// Every source of a span's user metadata, side by side with keys that
    /// look like them (the mapper sorts a span's attributes in one walk).
    /// R25-R30: `langfuse.metadata` is the observation's blob when its own
    /// is absent; `langfuse.metadata.<k>` and `ai.telemetry.metadata.<k>`
    /// are observation metadata, except the telemetry keys that are trace
    /// fields; an empty key and a prefix whose dot a combining mark follows
    /// are no metadata; AI and HTTP keys go to their extractors only.
    func testEveryMetadataSourceInOneSpan() {
        let f = C.fold([C.S("s", id: 1, 0, 1, [
            "langfuse.metadata": .string(#"{"blob":1,"over":1}"#),
            "langfuse.metadata.over": .string("2"),
            "langfuse.observation.metadata.own": .string("3"),
            "ai.telemetry.metadata.vercel": .string("4"),
            "ai.telemetry.metadata.userId": .string("u-1"),
            "ai.telemetry.metadata.tags": .string("t"),
            "langfuse.trace.metadata.t": .string("5"),
            "langfuse.trace.metadata.": .string("6"),
            "langfuse.observation.metadata.\u{301}x": .string("7"),
            "gen_ai.request.model": .string("m"),
            "gen_ai.requested": .string("not ai"),
            "url.full": .string("https://x"),
            "urls": .string("not http"),
            "ai.other": .string("8"),
        ])])
        let obs = f.obs(1)["metadata"]?.objectValue ?? [:]
        XCTAssertEqual(obs["blob"], .int(1))
        XCTAssertEqual(obs["over"], .int(2), "a prefixed key wins over the blob's")
        XCTAssertEqual(obs["own"], .int(3))
        XCTAssertEqual(obs["vercel"], .int(4))
        XCTAssertNil(obs["userId"])
        XCTAssertNil(obs["tags"])
        XCTAssertNil(obs["t"])
        XCTAssertNil(obs["\u{301}x"])
        XCTAssertNil(obs[""])
        XCTAssertEqual(f.trace["metadata"]?["t"], .int(5))
        XCTAssertNil(f.trace["metadata"]?[""])
        XCTAssertEqual(f.trace["userId"], .string("u-1"))
        func entry(_ kind: String) -> JSONValue? {
            f.obs(1)["metadataEntries"]?.arrayValue?.first { $0["kind"] == .string(kind) }?["values"]
        }
        XCTAssertEqual(entry("tracefold.ai"), .object(["gen_ai.request.model": .string("m")]))
        XCTAssertEqual(entry("tracefold.http"), .object(["url.full": .string("https://x")]))
        XCTAssertEqual(entry("userland.default")?.objectValue?.keys.sorted(), ["blob", "over", "own", "vercel"])
    }

    /// A userland key that names a system key: the system value is the one
    /// in the record (as when the record's metadata was a dictionary with
    /// the system keys set last), the other keys keep their order, and an
    /// observation that is the root gives the trace the same.
    func testASystemMetadataKeyWinsOverAUserlandKeyOfTheSameName() {
        let f = C.fold([C.S("s", id: 1, 0, 1, [
            "langfuse.observation.metadata.scope": .string("\"mine\""), "langfuse.observation.metadata.zz": .string("1"),
            "langfuse.observation.metadata.aa": .string("2"), "langfuse.observation.metadata.resourceAttributesX": .string("3"),
        ])])
        let m = f.obs(1)["metadata"]!.objectValue!
        XCTAssertEqual(m["scope"], json(#"{"attributes":{"public_key":"pk"},"name":"langfuse-sdk","version":"5.0.4"}"#))
        XCTAssertEqual(m["resourceAttributes"], json(#"{"service.name":"svc","telemetry.sdk.language":"python"}"#))
        XCTAssertEqual(Set(m.keys), ["aa", "resourceAttributes", "resourceAttributesX", "scope", "zz"])
        XCTAssertEqual(f.trace["metadata"]?["scope"], m["scope"])
        XCTAssertEqual(f.trace["metadata"]?["zz"], .int(1))
    }

    // 13
    func testUpdateSpanMergeOnOneSpan() {
        // After span.update({a:1,n:{x:1}}) and span.update({b:2,n:{y:2}}) the wire carries the last value per key.
        let o = C.fold([C.S("s", id: 1, 0, 1, [
            "langfuse.observation.metadata.a": .string("1"), "langfuse.observation.metadata.b": .string("2"),
            "langfuse.observation.metadata.n": .string(#"{"y":2}"#),
        ])]).obs(1)
        XCTAssertEqual(o["metadata"]?["a"], .int(1))
        XCTAssertEqual(o["metadata"]?["b"], .int(2))
        XCTAssertEqual(o["metadata"]?["n"], json(#"{"y":2}"#))
    }

    // 14
    func testUpdateTraceMergeAcrossSpansIsOrderedBySpanStart() {
        let root = C.S("root", id: 1, 0, 30, ["langfuse.trace.metadata.a": .string("1"), "langfuse.trace.metadata.keep": .string("\"x\"")])
        let child = C.S("child", id: 2, parent: 1, 5, 10, ["langfuse.trace.metadata.a": .string("9"), "langfuse.trace.metadata.b": .string("2")])
        for order in [[root, child], [child, root]] {
            let m = C.fold(order).trace["metadata"]!
            XCTAssertEqual(m["a"], .int(9))
            XCTAssertEqual(m["b"], .int(2))
            XCTAssertEqual(m["keep"], .string("x"))
        }
    }

    // 15
    func testTraceAndObservationMetadataAreSeparate() {
        let attrs: [String: AttributeValue] = ["langfuse.observation.metadata.o": .string("1"), "langfuse.trace.metadata.t": .string("2")]
        let child = C.fold([C.S("root", id: 1, 0, 30), C.S("c", id: 2, parent: 1, 1, 2, attrs)])
        XCTAssertEqual(child.obs(2)["metadata"]?["o"], .int(1))
        XCTAssertNil(child.obs(2)["metadata"]?["t"], "observation metadata does not carry trace keys (legacy profile)")
        XCTAssertEqual(child.trace["metadata"]?["t"], .int(2))
        XCTAssertNil(child.trace["metadata"]?["o"])
        let root = C.fold([C.S("root", id: 1, 0, 30, attrs)])
        XCTAssertEqual(root.trace["metadata"]?["o"], .int(1), "a root's observation metadata is copied into the trace")
        XCTAssertEqual(root.trace["metadata"]?["t"], .int(2))
    }

    // 16
    func testThirdPartyScope() {
        let scope = InstrumentationScope(name: "openinference.instrumentation.openai", version: "1")
        let o = C.fold([C.S("ChatCompletion", id: 1, 0, 5, [
            "openinference.span.kind": .string("LLM"), "llm.model_name": .string("gpt-4o"), "input.value": .string("hi"),
            "output.value": .string("yo"), "llm.token_count.prompt": .int(7), "llm.token_count.completion": .int(3), "custom.flag": .bool(true),
        ])], scope: scope).obs(1)
        XCTAssertEqual(o["type"], .string("GENERATION"))
        XCTAssertEqual(o["model"], .string("gpt-4o"))
        XCTAssertEqual(o["input"], .string("hi"))
        XCTAssertEqual(o["output"], .string("yo"))
        XCTAssertEqual(o["usageDetails"], json(#"{"input":7,"output":3,"total":10}"#))
        let attributes = o["metadata"]!["attributes"]!
        XCTAssertEqual(attributes["custom.flag"], .bool(true), "typed, per SPEC §2.4")
        XCTAssertEqual(attributes["openinference.span.kind"], .string("LLM"))
        XCTAssertEqual(attributes["llm.token_count.prompt"], .int(7))
        XCTAssertNil(attributes["input.value"])
        XCTAssertNil(attributes["output.value"])
    }

    // 17
    func testTagsSortedUnionAndParsing() {
        let f = C.fold([
            C.S("root", id: 1, 0, 30, ["langfuse.trace.tags": .array([.string("b"), .string("a")])]),
            C.S("child", id: 2, parent: 1, 1, 2, ["langfuse.trace.tags": .array([.string("c"), .string("a")])]),
        ])
        XCTAssertEqual(f.trace["tags"], json(#"["a","b","c"]"#))
        XCTAssertEqual(SpanMapperProbe.tags(.string("x,y")), ["x", "y"])
        XCTAssertEqual(SpanMapperProbe.tags(.string(#"["x"]"#)), ["x"])
        XCTAssertEqual(SpanMapperProbe.tags(.string("x")), ["x"])
    }

    // 18
    func testPublicIsStickyOr() {
        let f = C.fold([C.S("root", id: 1, 0, 30, ["langfuse.trace.public": .bool(true)]), C.S("child", id: 2, parent: 1, 40, 50, ["user.id": .string("u")])])
        XCTAssertEqual(f.trace["public"], .bool(true))
        XCTAssertEqual(C.fold([C.S("root", id: 1, 0, 30, ["langfuse.trace.public": .string("true")])]).trace["public"], .bool(true))
    }

    // 19
    func testTraceIOPrecedence() {
        let f = C.fold([
            C.S("root", id: 1, 0, 30, ["langfuse.observation.input": .string("A"), "langfuse.trace.input": .string("B"), "langfuse.observation.output": .string("R")]),
            C.S("child", id: 2, parent: 1, 5, 10, ["langfuse.trace.output": .string("C")]),
        ])
        XCTAssertEqual(f.trace["input"], .string("B"))
        XCTAssertEqual(f.obs(1)["input"], .string("A"))
        XCTAssertEqual(f.trace["output"], .string("C"))
        let plain = C.fold([C.S("root", id: 1, 0, 30, ["langfuse.observation.input": .string("A"), "langfuse.observation.output": .string("Z")])])
        XCTAssertEqual(plain.trace["input"], .string("A"))
        XCTAssertEqual(plain.trace["output"], .string("Z"))
    }

    // 20
    func testAsRootCountsOnlyWithoutATrueRoot() {
        let late = C.S("late-worker", id: 2, parent: 99, 100, 110, ["langfuse.internal.as_root": .bool(true), "langfuse.observation.input": .string("job")])
        let withRoot = C.fold([C.S("first", id: 1, 0, 30), late])
        XCTAssertEqual(withRoot.obs(2)["parentObservationId"], .string(C.id(99).hex))
        XCTAssertEqual(withRoot.trace["name"], .string("first"), "as_root never displaces a true root")
        let alone = C.fold([late])
        XCTAssertEqual(alone.trace["name"], .string("late-worker"))
        XCTAssertEqual(alone.trace["input"], .string("job"))
        let named = C.fold([C.S("root", id: 1, 0, 30, ["langfuse.trace.name": .string("explicit")]), late])
        XCTAssertEqual(named.trace["name"], .string("explicit"))
    }

    // 21
    func testEnvironmentNormalisation() {
        func env(_ span: [String: AttributeValue], resource: [Attribute] = []) -> JSONValue? {
            C.fold([C.S("s", id: 1, 0, 1, span)], resource: Resource(attributes: resource)).obs(1)["environment"]
        }
        XCTAssertEqual(env(["langfuse.environment": .string("Production")]), .string("production"))
        XCTAssertEqual(env([:], resource: [Attribute("langfuse.environment", .string("staging"))]), .string("staging"))
        XCTAssertEqual(env(["langfuse.environment": .string("langfuse-prod")]), .string("prod"))
        XCTAssertEqual(env(["langfuse.environment": .string("prod env")]), .string("default"))
        XCTAssertEqual(env([:], resource: [Attribute("deployment.environment.name", .string("qa"))]), .string("qa"))
        XCTAssertEqual(env([:]), .string("default"))
        // The root's environment wins over a later span's.
        let f = C.fold([C.S("root", id: 1, 0, 30, ["langfuse.environment": .string("prod")]), C.S("c", id: 2, parent: 1, 40, 50, ["langfuse.environment": .string("dev")])])
        XCTAssertEqual(f.trace["environment"], .string("prod"))
    }

    /// The bytes an environment may keep and its 40-character bound, at
    /// and past each edge, whichever way it is normalised.
    func testEnvironmentNormalisationAtItsBounds() {
        let forty = String(repeating: "a", count: 39) + "z"
        XCTAssertEqual(SpanMapper.normaliseEnvironment(forty), forty)
        XCTAssertEqual(SpanMapper.normaliseEnvironment(forty + "9"), forty, "cut to 40")
        XCTAssertEqual(SpanMapper.normaliseEnvironment("a-b_c-0-9"), "a-b_c-0-9")
        XCTAssertEqual(SpanMapper.normaliseEnvironment("a.b"), "default")
        XCTAssertEqual(SpanMapper.normaliseEnvironment("é"), "default")
        XCTAssertEqual(SpanMapper.normaliseEnvironment("Ab"), "ab")
        XCTAssertEqual(SpanMapper.normaliseEnvironment("langfusex"), "langfusex")
        XCTAssertEqual(SpanMapper.normaliseEnvironment("langfuse_langfuse-x"), "x")
        XCTAssertEqual(SpanMapper.normaliseEnvironment("langfuse-"), "default")
        XCTAssertEqual(SpanMapper.normaliseEnvironment(""), "default")
    }

    // 22
    func testUserAndSessionFallbacks() {
        var t = C.fold([C.S("s", id: 1, 0, 1, ["langfuse.session.id": .string("a"), "session.id": .string("b"), "gen_ai.conversation.id": .string("c")])]).trace
        XCTAssertEqual(t["sessionId"], .string("a"))
        t = C.fold([C.S("s", id: 1, 0, 1, ["gen_ai.conversation.id": .string("c")])]).trace
        XCTAssertEqual(t["sessionId"], .string("c"))
        t = C.fold([C.S("s", id: 1, 0, 1, ["langfuse.trace.metadata.langfuse_user_id": .string("\"u\"")])]).trace
        XCTAssertEqual(t["userId"], .string("u"))
    }

    // 23
    func testVersionAndRelease() {
        let f = C.fold([C.S("s", id: 1, 0, 1, ["langfuse.release": .string("r")])],
                       resource: Resource(attributes: [Attribute("service.version", .string("1.2")), Attribute("langfuse.release", .string("q"))]))
        XCTAssertEqual(f.obs(1)["version"], .string("1.2"))
        XCTAssertEqual(f.trace["version"], .string("1.2"))
        XCTAssertEqual(f.obs(1)["release"], .string("r"))
        XCTAssertEqual(f.trace["release"], .string("r"))
    }

    // 24: model parameters from OTel GenAI and OpenInference attributes,
    // the model name excluded; keys that share a prefix's first bytes but
    // not the prefix, and keys that do not, stay out.
    func testModelParametersFromAttributePrefixes() {
        let gen: [String: AttributeValue] = [
            "langfuse.observation.type": .string("generation"),
            "gen_ai.request.model": .string("gpt-4o"), "gen_ai.request.temperature": .double(0.2), "gen_ai.request.max_tokens": .int(100),
            "llm.invocation_parameters.top_p": .double(0.9), "gen_ai.usage.input_tokens": .int(7), "llama.seed": .int(1),
            "user.id": .string("u"), "g": .string("short"),
        ]
        let f = C.fold([C.S("gen", id: 1, 0, 5, gen)])
        XCTAssertEqual(f.obs(1)["modelParameters"], json(#"{"max_tokens":100,"temperature":0.2,"top_p":0.9}"#))
        XCTAssertEqual(f.obs(1)["model"], .string("gpt-4o"))
        let none = C.fold([C.S("gen", id: 1, 0, 5, ["gen_ai.usage.input_tokens": .int(7), "llama.seed": .int(1)])])
        XCTAssertEqual(none.obs(1)["modelParameters"], .null)
    }

    // 24
    func testGenerationMapping() {
        let gen: [String: AttributeValue] = [
            "langfuse.observation.type": .string("generation"), "langfuse.observation.model.name": .string("gpt-4o"),
            "langfuse.observation.model.parameters": .string(#"{"temperature": 0.1, "stop": ["x"]}"#),
            "langfuse.observation.usage_details": .string(#"{"input": 10, "output": 5}"#),
            "langfuse.observation.cost_details": .string(#"{"input": 0.001, "output": 0.002}"#),
            "langfuse.observation.completion_start_time": .string("\"2025-01-01T00:00:01Z\""),
            "langfuse.observation.prompt.name": .string("p"), "langfuse.observation.prompt.version": .int(3),
        ]
        let f = C.fold([C.S("gen", id: 1, 0, 5, gen)])
        let o = f.obs(1)
        XCTAssertEqual(o["type"], .string("GENERATION"))
        XCTAssertEqual(o["model"], .string("gpt-4o"))
        XCTAssertEqual(o["modelParameters"], json(#"{"temperature":0.1,"stop":"[\"x\"]"}"#))
        XCTAssertEqual(o["usageDetails"], json(#"{"input":10,"output":5,"total":15}"#))
        XCTAssertEqual(o["costDetails"], json(#"{"input":0.001,"output":0.002,"total":0.003}"#))
        XCTAssertEqual(o["completionStartTime"], .string("2025-01-01T00:00:01.000Z"))
        XCTAssertEqual(o["promptName"], .string("p"))
        XCTAssertEqual(o["promptVersion"], .int(3))
        XCTAssertEqual(f.trace["totalCost"], .double(0.003))
        var tool = gen
        tool["langfuse.observation.type"] = .string("tool")
        XCTAssertEqual(C.fold([C.S("t", id: 1, 0, 5, tool)]).obs(1)["promptName"], .null)
        var badUsage = gen
        badUsage["langfuse.observation.usage_details"] = .string("[1,2]")
        XCTAssertEqual(C.fold([C.S("g", id: 1, 0, 5, badUsage)]).obs(1)["usageDetails"], json("{}"))
    }

    // 25
    func testTypeInferenceWithoutALangfuseType() {
        func type(_ a: [String: AttributeValue]) -> JSONValue? { C.fold([C.S("s", id: 1, 0, 1, a)]).obs(1)["type"] }
        XCTAssertEqual(type(["gen_ai.operation.name": .string("chat")]), .string("GENERATION"))
        XCTAssertEqual(type(["gen_ai.operation.name": .string("execute_tool")]), .string("TOOL"))
        XCTAssertEqual(type(["gen_ai.operation.name": .string("invoke_agent")]), .string("AGENT"))
        XCTAssertEqual(type(["gen_ai.operation.name": .string("embeddings")]), .string("EMBEDDING"))
        let m = C.fold([C.S("s", id: 1, 0, 1, ["gen_ai.request.model": .string("m")])]).obs(1)
        XCTAssertEqual(m["type"], .string("GENERATION"))
        XCTAssertEqual(m["model"], .string("m"))
        XCTAssertEqual(type(["langfuse.observation.type": .string("span"), "openinference.span.kind": .string("LLM")]), .string("SPAN"))
        XCTAssertEqual(type(["langfuse.observation.type": .string("foo")]), .string("SPAN"))
        let tool = C.fold([C.S("span-name", id: 1, 0, 1, ["gen_ai.tool.name": .string("search")])]).obs(1)
        XCTAssertEqual(tool["type"], .string("TOOL"))
        XCTAssertEqual(tool["name"], .string("search"))
    }

    // 26
    func testEvent() {
        let f = C.fold([C.S("root", id: 1, 0, 30), C.S("evt", id: 2, parent: 1, 7, 7, ["langfuse.observation.type": .string("event"), "langfuse.observation.input": .string(#"{"e": 1}"#)])])
        let o = f.obs(2)
        XCTAssertEqual(o["type"], .string("EVENT"))
        XCTAssertEqual(o["startTime"], o["endTime"])
        XCTAssertEqual(o["parentObservationId"], .string(C.id(1).hex))
        XCTAssertEqual(o["input"], json(#"{"e":1}"#))
    }

    // 24 (R24): framework fallbacks for input and output.
    func testFrameworkInputOutputFallbacks() {
        func io(_ a: [String: AttributeValue], scope: String = "custom", events: [SpanEvent] = []) -> (JSONValue?, JSONValue?, JSONValue?) {
            let o = C.fold([C.S("s", id: 1, 0, 1, a, events: events)], scope: InstrumentationScope(name: scope)).obs(1)
            return (o["input"], o["output"], o["metadata"]?["attributes"])
        }
        var r = io(["traceloop.entity.input": .string(#"{"q":1}"#), "traceloop.entity.output": .string("ok"), "input.value": .string("ignored")])
        XCTAssertEqual(r.0, json(#"{"q":1}"#))
        XCTAssertEqual(r.1, .string("ok"))
        XCTAssertNil(r.2?["traceloop.entity.input"])
        XCTAssertEqual(r.2?["input.value"], .string("ignored"), "only the keys used are consumed")

        r = io(["gen_ai.prompt.0.role": .string("user"), "gen_ai.prompt.0.content": .string("hi"),
                "gen_ai.prompt.1.role": .string("assistant"), "gen_ai.prompt.1.content": .string("yo"),
                "gen_ai.completion.0.role": .string("assistant"), "gen_ai.completion.0.content": .string("done"),
                "gen_ai.prompt.__proto__.x": .string("blocked")])
        XCTAssertEqual(r.0, json(#"[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]"#))
        XCTAssertEqual(r.1, json(#"[{"role":"assistant","content":"done"}]"#))
        XCTAssertNil(r.2?["gen_ai.prompt.0.role"])

        r = io(["gen_ai.input.messages": .string(#"[{"role":"user","parts":[{"type":"text","content":"q"}]}]"#),
                "gen_ai.system_instructions": .string(#"[{"type":"text","content":"be brief"}]"#),
                "gen_ai.output.messages": .string(#"[{"role":"assistant"}]"#)])
        XCTAssertEqual(r.0?.arrayValue?.first?["role"], .string("system"))
        XCTAssertEqual(r.0?.arrayValue?.count, 2)
        XCTAssertEqual(r.1, json(#"[{"role":"assistant"}]"#))

        let events = [
            SpanEvent(timeUnixNano: 1, name: "gen_ai.system.message", attributes: [Attribute("content", .string("sys"))]),
            SpanEvent(timeUnixNano: 2, name: "gen_ai.user.message", attributes: [Attribute("content", .string("hello"))]),
            SpanEvent(timeUnixNano: 3, name: "gen_ai.choice", attributes: [Attribute("index", .int(0)), Attribute("message", .string(#"{"content":"hey"}"#))]),
        ]
        r = io([:], events: events)
        XCTAssertEqual(r.0, json(#"[{"content":"sys","role":"system"},{"content":"hello","role":"user"}]"#))
        XCTAssertEqual(r.1, json(#"{"index":0,"message":{"content":"hey"}}"#))

        r = io(["ai.prompt.messages": .string(#"[{"role":"user","content":"v"}]"#), "ai.response.text": .string("answer")], scope: "ai")
        XCTAssertEqual(r.0, json(#"[{"role":"user","content":"v"}]"#))
        XCTAssertEqual(r.1, .string("answer"))
        r = io(["genkit:input": .string(#"{"x":1}"#), "genkit:output": .string("g")], scope: "genkit-tracer")
        XCTAssertEqual(r.0, json(#"{"x":1}"#))
        r = io(["langfuse.observation.input": .string("wins"), "input.value": .string("loses")])
        XCTAssertEqual(r.0, .string("wins"))
    }

    func testISOTimeRoundTrip() {
        XCTAssertEqual(ISOTime.format(unixNano: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(ISOTime.parse("2025-01-01T00:00:01Z"), 1_735_689_601_000_000_000)
        XCTAssertEqual(ISOTime.parse("2025-01-01T02:00:01.5+02:00"), 1_735_689_601_500_000_000)
        XCTAssertEqual(ISOTime.format(unixNano: ISOTime.parse("2024-02-29T23:59:59.999999999Z")!), "2024-02-29T23:59:59.999Z")
        XCTAssertNil(ISOTime.parse("yesterday"))
    }

    /// A key repeated in one span reads as its last value, with a few
    /// attributes (scanned) and with many (looked up in a dictionary), at
    /// the limit between the two and one past it.
    func testARepeatedAttributeReadsAsItsLastValue() {
        for count in [2, AttributeTable.scanLimit, AttributeTable.scanLimit + 1, 200] {
            var span = Conformance.S("s", id: 1, 0, 1)
            span.attributes = [Attribute("langfuse.observation.level", .string("ERROR"))]
            span.attributes += (0..<(count - 2)).map { Attribute("filler.\($0)", .int(Int64($0))) }
            span.attributes.append(Attribute("langfuse.observation.level", .string("DEBUG")))
            XCTAssertEqual(span.attributes.count, count)
            XCTAssertEqual(Conformance.fold([span]).obs(1)["level"], .string("DEBUG"), "\(count) attributes")
        }
    }

    /// A scanned table skips keys whose length no attribute has (a bit per
    /// length modulo 64): keys 64 bytes apart share a bit and must still be
    /// told apart, and a key at every length up to 130 is found.
    func testAttributeLookupsByLengthAtAndPastTheMasksWidth() {
        let key = { (n: Int) in String(repeating: "k", count: n) }
        for n in [1, 63, 64, 65, 127, 128, 130] {
            let table = AttributeTable([Attribute(key(n), .int(Int64(n)))])
            XCTAssertEqual(table[key(n)], .int(Int64(n)), "a \(n)-byte key")
            XCTAssertNil(table[key(n + 64)], "\(n + 64) bytes shares the bit of \(n)")
            XCTAssertNil(table[key(n + 1)])
            XCTAssertNil(table[String(repeating: "j", count: n)], "same length, other key")
        }
    }

    /// The in-place writers the stored observation records render with give
    /// what `format` and `String(_:)` give, at the ends of the range.
    func testTimesWrittenInPlace() {
        for t: UInt64 in [0, 9, 10, 999_999, 1_000_000, 1_700_000_000_123_456_789, UInt64.max] {
            var w = JSONWriter()
            w.writeISOTime(unixNano: t)
            w.writeDecimalString(t)
            XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), "\"\(ISOTime.format(unixNano: t))\"\"\(t)\"")
        }
    }
}

/// Access to the tag parser through a span, as clients reach it.
enum SpanMapperProbe {
    static func tags(_ v: AttributeValue) -> [String] {
        let f = Conformance.fold([Conformance.S("s", id: 1, 0, 1, ["langfuse.trace.tags": v])])
        return f.trace["tags"]!.arrayValue!.compactMap(\.stringValue)
    }

    /// The mapper's byte-wise prefix test answers as `hasPrefix` does,
    /// including where bytes and characters differ: a combining mark right
    /// after the prefix makes its last character another one.
    func testASCIIPrefixAgreesWithHasPrefix() {
        let prefixes = ["langfuse.trace.metadata.", "http.", "_tracefold.", "gen_ai.request."]
        let keys = [
            "langfuse.trace.metadata.tenant", "langfuse.trace.metadata.", "langfuse.trace.metadata", "langfuse.trace.metadata.\u{301}x",
            "langfuse.trace.metadata.\u{301}", "langfuse.trace.metadata.é", "langfuse.trace.metadatA.x", "http.", "http.method", "https.x",
            "http\u{301}.x", "_tracefold.request", "_tracefold", "gen_ai.request.model", "gen_ai.request.\u{200D}", "", "h", "é.http.",
            String(decoding: [0x68, 0x74, 0x74, 0x70, 0x2E, 0xCC, 0x81], as: UTF8.self),
        ]
        for p in prefixes {
            for k in keys {
                XCTAssertEqual(k.hasASCIIPrefix(p), k.hasPrefix(p), "\(k.debugDescription) has prefix \(p)")
            }
        }
        // The cases the bytes decide differently from characters.
        XCTAssertFalse("langfuse.trace.metadata.\u{301}x".hasASCIIPrefix("langfuse.trace.metadata."))
        XCTAssertTrue("http.method".hasASCIIPrefix("http."))
    }
}
