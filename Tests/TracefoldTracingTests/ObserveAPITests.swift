import Foundation
import Tracing
import TracefoldModel
import XCTest

@testable import TracefoldTracing

/// Keeps what the tracer ends, in order, instead of sending it.
final class CapturingExporter: SpanExporting, @unchecked Sendable {
    private let lock = NSLock()
    private var spans: [FinishedSpan] = []

    func export(_ span: FinishedSpan) { lock.withLock { spans.append(span) } }
    func flush() async {}
    func shutdown() async {}
    var ended: [FinishedSpan] { lock.withLock { spans } }

    func span(named name: String, file: StaticString = #filePath, line: UInt = #line) throws -> FinishedSpan {
        try XCTUnwrap(ended.first { $0.name == name }, "no span \(name) among \(ended.map(\.name))", file: file, line: line)
    }
}

struct Boom: Error, CustomStringConvertible {
    var description: String { "boom" }
}

// The Python capture's calls (tests/python/langfuse_capture.py), written
// with the Swift API. @Observed functions at file scope, as an app has them.
@Observed("child")
func propagatedChild() {}

@Observed("propagate")
func propagateScenario() {
    propagateAttributes(
        userId: "u1", sessionId: "s1", tags: ["t1", "t2"], traceName: "my-trace", version: "v9",
        metadata: ["tenant": "acme", "count": 5, "obj": ["k": "v"], "uni": "café ☕", "ratio": 0.25, "flag": true, "list": [1, "a"]]
    ) {
        propagatedChild()
    }
}

@Observed("observation-metadata")
func observationMetadata() {
    updateCurrentObservation(metadata: ["a": 1, "n": ["x": 1], "s": "x", "quote": "he said \"hi\"\n\t/"])
    updateCurrentObservation(metadata: ["b": 2, "n": ["y": 2]])
}

@Observed("io")
func io(_ x: Int, _ y: String, key: [Int]) -> MetadataValue {
    ["answer": "42", "uni": "é", "nested": [1.5, nil, true]]
}

@Observed("string-io")
func stringIO(_ text: String) -> String { "plain output" }

@Observed("generation", as: .generation)
func generation() {
    updateCurrentGeneration(
        model: "gpt-4o", modelParameters: ["temperature": 0.1, "max_tokens": 10], usageDetails: ["input": 10, "output": 5],
        costDetails: ["input": 0.001, "output": 0.002], completionStartTime: Date(timeIntervalSince1970: 1_735_689_601)
    )
}

@Observed("error", as: .tool)
func failing() throws { throw Boom() }

@Observed("event-parent")
func eventParent() { event("evt", input: ["e": 1]) }

@Observed("public")
func publicTrace() { setCurrentTraceAsPublic() }

@Observed("numbers")
func numbers() {
    updateCurrentObservation(metadata: [
        "big": .int(1 << 60), "safe": .int((1 << 53) - 1), "neg": -7, "nan": .double(.nan), "inf": .double(.infinity), "small": 1e-7,
        "whole": 3.0, "large": 1e21,
    ])
}

/// The same logical calls as the Python SDK, through observe /
/// @Observed / propagateAttributes / update…, give the same span attributes,
/// status and duration as langfuse 5.0.4 sent (the committed capture).
final class ObserveAPITests: XCTestCase {
    /// Written by the SDK or the process rather than by the call.
    static let ambient: Set<String> = ["langfuse.environment", "langfuse.release", "langfuse.internal.is_app_root", "langfuse.internal.as_root"]

    func run(_ body: () throws -> Void) rethrows -> CapturingExporter {
        let exporter = CapturingExporter()
        try withTracer(TracefoldTracer(exporter: exporter)) { try body() }
        return exporter
    }

    func captured(_ name: String) throws -> JSONValue {
        let all = try JSONParser.parse(Array(try Data(contentsOf: LangfuseEncodingTests.fixture)))
        return try XCTUnwrap(all[name], "no captured span \(name)")
    }

    /// A span as the capture holds it: OTLP/JSON attributes, status, and
    /// whether it has zero duration.
    func asCaptured(_ span: FinishedSpan) -> JSONValue {
        var attributes = [String: JSONValue]()
        for a in BatchSender.attributes(span.attributes) where !Self.ambient.contains(a.key) { attributes[a.key] = otlpJSON(a.value) }
        let code: Int64 = span.status.map { $0.code == .error ? 2 : 1 } ?? 0
        return .object([
            "attributes": .object(attributes),
            "status": .object(["code": .int(code), "message": .string(span.status?.message ?? "")]),
            "zeroDuration": .bool(span.start == span.end),
        ])
    }

    func assertMatchesCapture(_ exporter: CapturingExporter, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(asCaptured(try exporter.span(named: name, file: file, line: line)), try captured(name), name, file: file, line: line)
    }

    func testPropagatedTraceAttributesOnTheCurrentSpanAndItsChildren() throws {
        let exporter = run { propagateScenario() }
        try assertMatchesCapture(exporter, "child")
        try assertMatchesCapture(exporter, "propagate")
        XCTAssertEqual(try exporter.span(named: "child").parentID, try exporter.span(named: "propagate").spanID)
    }

    func testObservationMetadataAccumulatesPerTopLevelKey() throws {
        try assertMatchesCapture(run { observationMetadata() }, "observation-metadata")
    }

    func testArgumentsAndResultBecomeInputAndOutput() throws {
        let exporter = run {
            _ = io(1, "x", key: [1, 2])
            _ = stringIO("plain input")
        }
        try assertMatchesCapture(exporter, "io")
        try assertMatchesCapture(exporter, "string-io")
    }

    func testGenerationFields() throws {
        try assertMatchesCapture(run { generation() }, "generation")
    }

    func testErrorIsLevelErrorAndRethrown() throws {
        let exporter = try run { XCTAssertThrowsError(try failing()) { XCTAssertTrue($0 is Boom) } }
        try assertMatchesCapture(exporter, "error")
    }

    func testEventIsAZeroDurationChild() throws {
        let exporter = run { eventParent() }
        try assertMatchesCapture(exporter, "evt")
        try assertMatchesCapture(exporter, "event-parent")
        XCTAssertEqual(try exporter.span(named: "evt").parentID, try exporter.span(named: "event-parent").spanID)
    }

    func testPublicTraceAndNumbers() throws {
        try assertMatchesCapture(run { publicTrace() }, "public")
        try assertMatchesCapture(run { numbers() }, "numbers")
    }
}
