import Foundation
import TracefoldModel
import XCTest

final class JSONWriterTests: XCTestCase {
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
