import Foundation
import TracefoldModel
import XCTest

final class JSONWriterTests: XCTestCase {
    /// The parser builds each object and array from its own members once
    /// it closes: nested ones, inside objects and arrays still open, get
    /// theirs and no others; of duplicate keys the last wins at every
    /// level; empty ones stay empty; and a document cut short is an error.
    func testNestedObjectsAndArraysGetTheirOwnMembers() throws {
        let text = #"{"a":[1,{"b":2,"b":3,"e":{}},[4,[5,6],[]],7],"c":{"d":[],"a":{"x":"y"}},"a":[8,{"b":9}],"f":null}"#
        let expected: JSONValue = .object([
            "a": .array([.int(8), .object(["b": .int(9)])]),
            "c": .object(["d": .array([]), "a": .object(["x": .string("y")])]),
            "f": .null,
        ])
        XCTAssertEqual(try JSONParser.parse(text), expected)
        let first = #"[{"b":2,"b":3,"e":{}},[4,[5,6],[]],7]"#
        XCTAssertEqual(
            try JSONParser.parse(first),
            .array([.object(["b": .int(3), "e": .object([:])]), .array([.int(4), .array([.int(5), .int(6)]), .array([])]), .int(7)])
        )
        XCTAssertThrowsError(try JSONParser.parse(#"{"a":[1,{"b":2}"#))
        XCTAssertThrowsError(try JSONParser.parse(#"[1,{"b":2,}]"#))
    }

    /// An id is written as the JSON string of its `hex`: lowercase, every
    /// leading zero kept, the trace id's high half first.
    func testIdsAreWrittenAsTheirHex() throws {
        let ids = [TraceID(high: 0, low: 1), TraceID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210), TraceID(high: .max, low: 0)]
        for id in ids {
            var w = JSONWriter()
            w.writeHex(id)
            XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), "\"\(id.hex)\"")
            XCTAssertEqual(try JSONParser.parse(w.bytes), .string(id.hex))
        }
        var w = JSONWriter()
        w.writeHex(SpanID(0x00ab_0000_0000_00ff))
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), "\"00ab0000000000ff\"")
    }

    /// Control characters are escaped with lowercase hex, quotes and
    /// backslashes with a backslash; everything else is written raw.
    func testEscapes() {
        var w = JSONWriter()
        w.writeString("a\u{1}\u{1F}\"\\\n\té/")
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), #""a\u0001\u001f\"\\\n\té/""#)
    }

    /// Every byte JSON escapes, at every offset of strings longer and
    /// shorter than the eight bytes the writer scans at a time, among bytes
    /// it does not escape (ASCII and UTF-8 sequences, whose bytes are over
    /// 0x7F): the output is the same as a byte-by-byte escape, and JSON
    /// parses it back to the string.
    func testEscapesAtEveryOffsetOfLongAndShortStrings() throws {
        let escaped: [UInt8] = Array(0..<0x20) + [UInt8(ascii: "\""), UInt8(ascii: "\\")]
        let plain = Array("abc é€😀 ~".utf8) + [0x21, 0x23, 0x5B, 0x5D, 0x7F]
        for length in [1, 7, 8, 9, 16, 17, 40] {
            for offset in 0..<length {
                for c in escaped {
                    var bytes = (0..<length).map { plain[($0 * 7 + length) % plain.count] }
                    bytes[offset] = c
                    let text = String(decoding: bytes, as: UTF8.self)
                    var w = JSONWriter()
                    w.writeString(text)
                    var expected = JSONWriter()
                    expected.writeRaw("\"")
                    for scalar in text.unicodeScalars {
                        switch scalar {
                        case "\"": expected.writeRaw("\\\"")
                        case "\\": expected.writeRaw("\\\\")
                        case "\n": expected.writeRaw("\\n")
                        case "\r": expected.writeRaw("\\r")
                        case "\t": expected.writeRaw("\\t")
                        case "\u{8}": expected.writeRaw("\\b")
                        case "\u{C}": expected.writeRaw("\\f")
                        case _ where scalar.value < 0x20: expected.writeRaw(String(format: "\\u%04x", scalar.value))
                        default: expected.writeRaw(String(scalar))
                        }
                    }
                    expected.writeRaw("\"")
                    XCTAssertEqual(w.bytes, expected.bytes, "byte \(c) at \(offset) of \(length)")
                    XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(w.bytes), options: .fragmentsAllowed) as? String, text)
                }
            }
        }
    }

    /// Bytes as a string of lowercase hex digits.
    func testHexString() {
        var w = JSONWriter()
        [UInt8]([0x00, 0x0F, 0xA0, 0xFF]).withUnsafeBytes { w.writeHexString($0) }
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), #""000fa0ff""#)
    }
}
