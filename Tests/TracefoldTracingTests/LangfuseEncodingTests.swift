import Foundation
import TracefoldModel
import TracefoldTracing
import XCTest

/// An attribute value in OTLP/JSON shape, as tracefold's spans_jsonl
/// exporter wrote the capture.
func otlpJSON(_ v: AttributeValue) -> JSONValue {
    switch v {
    case .string(let s): .object(["stringValue": .string(s)])
    case .bool(let b): .object(["boolValue": .bool(b)])
    case .int(let n): .object(["intValue": .string(String(n))])
    case .double(let d): .object(["doubleValue": .double(d)])
    case .array(let items): .object(["arrayValue": .object(["values": .array(items.map(otlpJSON))])])
    default: .null
    }
}

/// TracefoldTracing writes exactly what langfuse 5.0.4 writes for the same
/// logical calls. The expected attributes are captured from the real SDK by
/// tests/python/test_langfuse_capture.py, which also fails if the committed
/// fixture stops matching what the SDK sends.
final class LangfuseEncodingTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/langfuse-v5-attributes.json")

    /// The captured attributes of one span, by span name.
    func captured(_ name: String) throws -> JSONValue {
        let all = try JSONParser.parse(Array(try Data(contentsOf: Self.fixture)))
        return try XCTUnwrap(all[name]?["attributes"], "no captured span \(name)")
    }

    func otlp(_ attributes: [Attribute]) -> JSONValue {
        var out = [String: JSONValue]()
        // Later writes of a key replace earlier ones, as OTel attributes do.
        for a in attributes { out[a.key] = otlpJSON(a.value) }
        return .object(out)
    }

    let noArgs = LangfuseAttributes.observeInput(args: [])
    func span(_ type: String = "span", input: AttributeValue? = nil) -> [Attribute] {
        [LangfuseAttributes.observationType(type), Attribute("langfuse.observation.input", input ?? noArgs)]
    }

    func testPropagatedTraceAttributes() throws {
        let propagated = LangfuseAttributes.trace(
            userId: "u1", sessionId: "s1", tags: ["t1", "t2"], traceName: "my-trace", version: "v9",
            metadata: ["tenant": "acme", "count": 5, "obj": ["k": "v"], "uni": "café ☕", "ratio": 0.25, "flag": true, "list": [1, "a"]]
        )
        XCTAssertEqual(otlp(span() + propagated), try captured("child"))
        XCTAssertEqual(otlp(span() + propagated), try captured("propagate"), "the span current when the scope opens gets them too")
    }

    func testObservationMetadataAccumulatesPerTopLevelKey() throws {
        let first = LangfuseAttributes.metadata(["a": 1, "n": ["x": 1], "s": "x", "quote": "he said \"hi\"\n\t/"], scope: .observation)
        let second = LangfuseAttributes.metadata(["b": 2, "n": ["y": 2]], scope: .observation)
        XCTAssertEqual(otlp(span() + first + second), try captured("observation-metadata"))
    }

    func testMetadataNumbersFollowV5() throws {
        let values: MetadataValue = [
            "big": .int(1 << 60), "safe": .int((1 << 53) - 1), "neg": -7, "nan": .double(.nan), "inf": .double(.infinity),
            "small": 1e-7, "whole": 3.0, "large": 1e21,
        ]
        XCTAssertEqual(otlp(span() + LangfuseAttributes.metadata(values, scope: .observation)), try captured("numbers"))
    }

    func testInputAndOutput() throws {
        let input = LangfuseAttributes.observeInput(args: [1, "x"], kwargs: [.init("key", [1, 2])])
        let output = LangfuseAttributes.io(["answer": "42", "uni": "é", "nested": [1.5, nil, true]])
        XCTAssertEqual(otlp(span(input: input) + [Attribute("langfuse.observation.output", output)]), try captured("io"))
        let plain = span(input: LangfuseAttributes.observeInput(args: ["plain input"]))
            + [Attribute("langfuse.observation.output", LangfuseAttributes.io("plain output"))]
        XCTAssertEqual(otlp(plain), try captured("string-io"), "a string output is sent verbatim")
    }

    func testGenerationFields() throws {
        let fields = LangfuseAttributes.generation(
            model: "gpt-4o", modelParameters: ["temperature": 0.1, "max_tokens": 10], usageDetails: ["input": 10, "output": 5],
            costDetails: ["input": 0.001, "output": 0.002], completionStartTime: Date(timeIntervalSince1970: 1_735_689_601)
        )
        XCTAssertEqual(otlp(span("generation") + fields), try captured("generation"))
    }

    func testErrorEventAndPublic() throws {
        XCTAssertEqual(otlp(span("tool") + LangfuseAttributes.level("ERROR", statusMessage: "boom")), try captured("error"))
        XCTAssertEqual(otlp(span("event", input: LangfuseAttributes.io(["e": 1]))), try captured("evt"))
        XCTAssertEqual(otlp(span() + [LangfuseAttributes.publicTrace]), try captured("public"))
    }

    func testPythonFloatReprAndEscapes() {
        XCTAssertEqual(PythonJSON.string([1e16, 1e15, 0.0001, 0.00001, -0.0, 1.5e-7, 123.456], style: .standard),
                       "[1e+16, 1000000000000000.0, 0.0001, 1e-05, -0.0, 1.5e-07, 123.456]")
        XCTAssertEqual(PythonJSON.string("é😀\u{7f}\u{01}", style: .standard), #""\u00e9\ud83d\ude00\#u{7f}\u0001""#)
        XCTAssertEqual(PythonJSON.string("é😀", style: .metadata), "\"é😀\"")
        XCTAssertEqual(PythonJSON.string(.double(-.infinity), style: .metadata), "\"-Infinity\"")
        XCTAssertEqual(PythonJSON.string(.int(-(1 << 53)), style: .metadata), "\"-9007199254740992\"")
        XCTAssertEqual(PythonJSON.string(.int(-(1 << 53)), style: .standard), "-9007199254740992")
    }
}
