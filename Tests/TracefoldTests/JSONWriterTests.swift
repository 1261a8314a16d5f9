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

    /// Bytes as a string of lowercase hex digits.
    func testHexString() {
        var w = JSONWriter()
        [UInt8]([0x00, 0x0F, 0xA0, 0xFF]).withUnsafeBytes { w.writeHexString($0) }
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), #""000fa0ff""#)
    }
}
