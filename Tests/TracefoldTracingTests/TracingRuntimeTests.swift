import Foundation
import Instrumentation
import Tracing
import TracefoldModel
import XCTest

@testable import TracefoldTracing

/// Nesting, propagation and the Inngest-style metadata builders, on spans
/// captured from a `TracefoldTracer`.
final class TracingRuntimeTests: XCTestCase {
    func capture(_ body: () async throws -> Void) async rethrows -> CapturingExporter {
        let exporter = CapturingExporter()
        try await withTracer(TracefoldTracer(exporter: exporter)) { try await body() }
        return exporter
    }

    func string(_ span: FinishedSpan, _ key: String) -> String? {
        if case .string(let s)? = span.attributes.get(key) { return s }
        return nil
    }

    func testChildTasksAndTaskGroupsNestUnderTheObservation() async throws {
        let exporter = await capture {
            await observe("parent") { _ in
                await withTaskGroup(of: Void.self) { group in
                    for i in 0..<4 {
                        group.addTask { await observe("worker-\(i)") { _ in try? await Task.sleep(for: .milliseconds(1)) } }
                    }
                }
                await Task { await observe("unstructured-child") { _ in } }.value
            }
            await observe("sibling-root") { _ in }
        }
        let parent = try exporter.span(named: "parent")
        for name in ["worker-0", "worker-1", "worker-2", "worker-3", "unstructured-child"] {
            let child = try exporter.span(named: name)
            XCTAssertEqual(child.parentID, parent.spanID, name)
            XCTAssertEqual(child.traceID, parent.traceID, name)
        }
        let sibling = try exporter.span(named: "sibling-root")
        XCTAssertNil(sibling.parentID)
        XCTAssertNotEqual(sibling.traceID, parent.traceID, "a new root starts a new trace")
        XCTAssertEqual(parent.attributes.get("langfuse.internal.is_app_root"), .bool(true))
        XCTAssertNil(try exporter.span(named: "worker-0").attributes.get("langfuse.internal.is_app_root"))
    }

    func testAsyncThrowingObservationRecordsTheErrorAndRethrows() async throws {
        let exporter = await capture {
            do {
                try await observe("fails") { _ -> Int in
                    try await Task.sleep(for: .milliseconds(1))
                    throw Boom()
                }
                XCTFail("not rethrown")
            } catch {
                XCTAssertTrue(error is Boom)
            }
        }
        let span = try exporter.span(named: "fails")
        XCTAssertEqual(string(span, "langfuse.observation.level"), "ERROR")
        XCTAssertEqual(string(span, "langfuse.observation.status_message"), "boom")
        XCTAssertEqual(span.status, SpanStatus(code: .error, message: "boom"))
        XCTAssertNil(span.attributes.get("langfuse.observation.output"))
    }

    func testOutputIsOptOutAndOnlyForEncodable() async throws {
        struct Opaque {}
        let exporter = await capture {
            await observe("kept") { _ in 42 }
            await observe("opted-out", captureOutput: false) { _ in 42 }
            _ = await observe("not-encodable") { _ in Opaque() }
        }
        XCTAssertEqual(string(try exporter.span(named: "kept"), "langfuse.observation.output"), "42")
        XCTAssertNil(try exporter.span(named: "opted-out").attributes.get("langfuse.observation.output"))
        XCTAssertNil(try exporter.span(named: "not-encodable").attributes.get("langfuse.observation.output"))
    }

    func testNestedPropagationUnionsTagsMergesMetadataAndReachesOtherLibrariesSpans() async throws {
        let long = String(repeating: "x", count: 201)
        let exporter = await capture {
            await observe("root") { _ in
                await propagateAttributes(userId: "u1", tags: ["a", "b"], metadata: ["tenant": "acme", "tier": "free"]) {
                    await propagateAttributes(sessionId: long, tags: ["b", "c"], metadata: ["tier": "pro"]) {
                        await observe("inner") { _ in }
                        // A span of another library, started with plain
                        // swift-distributed-tracing, gets them too.
                        withSpan("http-client") { _ in }
                    }
                    await observe("outer") { _ in }
                }
            }
        }
        let inner = try exporter.span(named: "inner")
        XCTAssertEqual(string(inner, "user.id"), "u1")
        XCTAssertEqual(inner.attributes.get("langfuse.trace.tags"), .stringArray(["a", "b", "c"]))
        XCTAssertEqual(string(inner, "langfuse.trace.metadata.tenant"), "\"acme\"")
        XCTAssertEqual(string(inner, "langfuse.trace.metadata.tier"), "\"pro\"")
        XCTAssertNil(inner.attributes.get("session.id"), "a value over 200 characters is dropped")
        let foreign = try exporter.span(named: "http-client")
        XCTAssertEqual(string(foreign, "user.id"), "u1")
        XCTAssertEqual(foreign.attributes.get("langfuse.trace.tags"), .stringArray(["a", "b", "c"]))
        let outer = try exporter.span(named: "outer")
        XCTAssertEqual(outer.attributes.get("langfuse.trace.tags"), .stringArray(["a", "b"]), "the inner scope ended")
        XCTAssertEqual(string(outer, "langfuse.trace.metadata.tier"), "\"free\"")
        XCTAssertEqual(string(try exporter.span(named: "root"), "user.id"), "u1", "the span current when the scope opened")
    }

    func testPropagationLimitIs200CharactersAtTheLimitAndOnePast() async throws {
        let at = String(repeating: "é", count: 200)  // characters, not bytes
        let past = String(repeating: "é", count: 201)
        // A metadata value counts once JSON-encoded: 198 characters + 2 quotes.
        let metadataAt = String(repeating: "m", count: 198)
        let metadataPast = String(repeating: "m", count: 199)
        let exporter = await capture {
            await propagateAttributes(
                userId: at, sessionId: past, tags: [at, past], metadata: ["at": .string(metadataAt), "past": .string(metadataPast)]
            ) {
                await observe("limited") { _ in }
            }
        }
        let span = try exporter.span(named: "limited")
        XCTAssertEqual(string(span, "user.id"), at)
        XCTAssertNil(span.attributes.get("session.id"))
        XCTAssertEqual(span.attributes.get("langfuse.trace.tags"), .stringArray([at]))
        XCTAssertEqual(string(span, "langfuse.trace.metadata.at"), "\"\(metadataAt)\"")
        XCTAssertNil(span.attributes.get("langfuse.trace.metadata.past"))
    }

    func events(_ span: FinishedSpan) -> [[String: String]] {
        span.events.filter { $0.name == "tracefold.metadata" }.map { event in
            var out = [String: String]()
            event.attributes.forEach { key, value in if case .string(let s) = value { out[key] = s } }
            return out
        }
    }

    func testMetadataBuildersEmitTracefoldMetadataEvents() async throws {
        struct Billing: Encodable {
            var plan: String
            var seats: Int
        }
        let exporter = await capture {
            await observe("step") { _ in
                metadata("m1").update(["b": 2, "a": "x"], kind: "billing")
                metadata("m2").trace().update(["region": "eu"])
                metadata("m3").span("00F067AA0BA902B7").update(["score": 0.5], kind: "quality")
                metadata("m4").observation().update(encoding: Billing(plan: "pro", seats: 3))
                try? metadata("m5").do { batch in
                    batch.update(["usd": 0.25], kind: "billing")
                    batch.update(["tokens": 812], kind: "usage")
                }
                try? metadata("m6").do { batch in
                    batch.update(["lost": true])
                    throw Boom()
                }
                metadata("m7").span("not-a-span-id").update(["x": 1])
                metadata("m8").update(encoding: [1, 2, 3])
            }
        }
        let got = events(try exporter.span(named: "step"))
        XCTAssertEqual(
            got,
            [
                [
                    "tracefold.metadata.id": "m1", "tracefold.metadata.kind": "billing", "tracefold.metadata.scope": "observation",
                    "tracefold.metadata.values": #"{"a":"x","b":2}"#,
                ],
                [
                    "tracefold.metadata.id": "m2", "tracefold.metadata.kind": "default", "tracefold.metadata.scope": "trace",
                    "tracefold.metadata.values": #"{"region":"eu"}"#,
                ],
                [
                    "tracefold.metadata.id": "m3", "tracefold.metadata.kind": "quality", "tracefold.metadata.scope": "extended_trace",
                    "tracefold.metadata.span_id": "00f067aa0ba902b7", "tracefold.metadata.values": #"{"score":0.5}"#,
                ],
                [
                    "tracefold.metadata.id": "m4", "tracefold.metadata.kind": "default", "tracefold.metadata.scope": "observation",
                    "tracefold.metadata.values": #"{"plan":"pro","seats":3}"#,
                ],
                [
                    "tracefold.metadata.id": "m5", "tracefold.metadata.kind": "billing", "tracefold.metadata.scope": "observation",
                    "tracefold.metadata.values": #"{"usd":0.25}"#,
                ],
                [
                    "tracefold.metadata.id": "m5", "tracefold.metadata.kind": "usage", "tracefold.metadata.scope": "observation",
                    "tracefold.metadata.values": #"{"tokens":812}"#,
                ],
            ],
            "m6 threw, m7 has no valid span id and m8 is not an object: none is sent"
        )
        let batch = try exporter.span(named: "step").events.filter { $0.name == "tracefold.metadata" }.suffix(2)
        XCTAssertEqual(Set(batch.map(\.nanosecondsSinceEpoch)).count, 1, "a .do batch lands at one instant")
    }

    func testTraceparentRoundTripMakesTheRemoteParentTheParent() async throws {
        let tracer = TracefoldTracer(exporter: CapturingExporter())
        var context = InstrumentationContext.topLevel
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        tracer.extract(["traceparent": header], into: &context, using: DictionaryExtractor())
        XCTAssertEqual(context.tracefoldSpan?.traceID.hex, "4bf92f3577b34da6a3ce929d0e0e4736")
        let span = tracer.startSpan("server", context: context, ofKind: .server)
        var carrier = [String: String]()
        tracer.inject(span.context, into: &carrier, using: DictionaryInjector())
        XCTAssertEqual(carrier["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-\(span.ids.spanID.hex)-01")
        span.end()
        XCTAssertEqual(span.attributes.get("langfuse.internal.is_app_root"), .bool(true), "its parent is not exported from here")

        var bad = InstrumentationContext.topLevel
        for header in ["00-00000000000000000000000000000000-00f067aa0ba902b7-01", "garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-zz-01"] {
            tracer.extract(["traceparent": header], into: &bad, using: DictionaryExtractor())
            XCTAssertNil(bad.tracefoldSpan, header)
        }
    }

    func testEndedSpansIgnoreUpdatesAndEndOnce() async throws {
        let exporter = CapturingExporter()
        let tracer = TracefoldTracer(exporter: exporter)
        let span = tracer.startSpan("once", context: .topLevel)
        span.end()
        span.attributes["late"] = "x"
        span.end()
        XCTAssertEqual(exporter.ended.count, 1)
        XCTAssertNil(exporter.ended[0].attributes.get("late"))
        XCTAssertNil(tracer.activeSpan(identifiedBy: span.context), "an ended span is no longer active")
    }

    func testEncodableKeepsDeclarationOrderAndDates() throws {
        struct Doc: Encodable {
            var zeta = 1
            var alpha = "a"
            var when = Date(timeIntervalSince1970: 1_735_689_601.5)
            var nested = ["k": [true]]
            var optional: Int? = nil
        }
        XCTAssertEqual(
            PythonJSON.string(try MetadataValue(encoding: Doc()), style: .metadata),
            #"{"zeta":1,"alpha":"a","when":"2025-01-01T00:00:01.500000Z","nested":{"k":[true]}}"#
        )
    }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
