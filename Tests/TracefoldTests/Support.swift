import Foundation
import OTLP
import TracefoldModel
import XCTest

/// Reads protobuf wire format in tests, to check response bodies field by
/// field without trusting our own encoder.
struct WireReader {
    var bytes: [UInt8]
    var i = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func varint() -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = bytes[i]
            i += 1
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    /// field number → raw values (varints as UInt64, length-delimited as bytes).
    mutating func fields() -> [Int: [Any]] {
        var out = [Int: [Any]]()
        while i < bytes.count {
            let tag = varint()
            let field = Int(tag >> 3)
            switch tag & 7 {
            case 0: out[field, default: []].append(varint())
            case 2:
                let n = Int(varint())
                out[field, default: []].append(Array(bytes[i..<(i + n)]))
                i += n
            case 1: out[field, default: []].append(Array(bytes[i..<(i + 8)])); i += 8
            case 5: out[field, default: []].append(Array(bytes[i..<(i + 4)])); i += 4
            default: XCTFail("unexpected wire type"); return out
            }
        }
        return out
    }
}

enum Fixtures {
    static let traceID = TraceID(hex: "5b8efff798038103d269b633813fc60c")!
    static let spanID = SpanID(hex: "eee19b7ec3c1b174")!

    static func span(_ n: UInt64, trace: TraceID = traceID, name: String = "span") -> Span {
        Span(
            traceID: trace, spanID: SpanID(0x1000 + n), name: "\(name)-\(n)", kind: .server,
            startTimeUnixNano: 1_700_000_000_000_000_000 + n, endTimeUnixNano: 1_700_000_001_000_000_000 + n,
            attributes: [Attribute("n", .int(Int64(n)))]
        )
    }

    static func batch(_ spans: [Span]) -> SpanBatch {
        SpanBatch(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [Attribute("service.name", .string("test"))]),
                scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "tests", version: "1"), spans: spans)]
            )
        ])
    }

    /// A span with every field set, including nested AnyValues.
    static var fullSpan: Span {
        let nested: AttributeValue = .kvlist([
            Attribute("inner", .array([.int(1), .array([.string("deep"), .bool(false)]), .kvlist([Attribute("k", .double(2.5))])])),
            Attribute("empty", .empty),
        ])
        return Span(
            traceID: traceID, spanID: spanID, parentSpanID: SpanID(hex: "0102030405060708")!,
            traceState: "vendor=value", flags: 0x301, name: "full", kind: .consumer,
            startTimeUnixNano: 1_544_712_660_000_000_000, endTimeUnixNano: 1_544_712_661_000_000_000,
            attributes: [
                Attribute("s", .string("héllo \"quoted\"")), Attribute("b", .bool(true)), Attribute("i", .int(-42)),
                Attribute("big", .int(Int64.max)), Attribute("d", .double(3.25)), Attribute("bytes", .bytes([0, 1, 254, 255])),
                Attribute("arr", .array([.string("a"), .int(2)])), Attribute("kv", nested),
            ],
            droppedAttributesCount: 3,
            events: [SpanEvent(timeUnixNano: 1_544_712_660_500_000_000, name: "ev", attributes: [Attribute("e", .string("v"))], droppedAttributesCount: 1)],
            droppedEventsCount: 4,
            links: [SpanLink(traceID: traceID.bytes, spanID: [9, 9, 9, 9, 9, 9, 9, 9], traceState: "l=1", attributes: [Attribute("la", .int(7))], droppedAttributesCount: 2, flags: 1)],
            droppedLinksCount: 5,
            status: SpanStatus(code: .error, message: "boom")
        )
    }

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "tracefold-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
