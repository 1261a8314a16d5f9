import Foundation
import TracefoldMapping
import TracefoldModel
import XCTest

/// `JSONText.decoding` must give the bytes the parse-and-write path gives
/// (`JSONDecoding.decodeIfJSON` written by `JSONWriter`) for every string,
/// and take its one-pass path for the shapes SDKs send.
final class JSONTextTests: XCTestCase {
    private func expected(_ s: String) -> String {
        var w = JSONWriter()
        w.write(JSONDecoding.decodeIfJSON(s))
        return String(decoding: w.bytes, as: UTF8.self)
    }

    private func decoded(_ s: String) -> String { String(decoding: JSONText.decoding(s).bytes, as: UTF8.self) }

    /// Whether the one-pass scan decided `s` (the parser was not needed).
    private func scanned(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { utf8 in
            var w = JSONWriter()
            return w.writeCanonical(utf8)
        }
    }

    /// What a Python SDK sends (`json.dumps` with its spaces, keys in
    /// insertion order, non-ASCII as \u escapes), and the other escapes,
    /// numbers and duplicate keys: one pass, and the canonical bytes.
    func testSDKShapedDocumentsAreCanonicalisedInOnePass() {
        let cases: [(String, String)] = [
            (
                #"{"messages": [{"role": "user", "content": "Caf\u00e9 \ud83d\ude00\nline\/2 \"q\" \\"}], "temperature": 0.70, "n": 1}"#,
                #"{"messages":[{"content":"Café 😀\nline/2 \"q\" \\","role":"user"}],"n":1,"temperature":0.7}"#
            ),
            (#"{"b":1,"a":2,"b":3}"#, #"{"a":2,"b":3}"#),
            (#"{"a":{"z":1,"y":{"q":[3,2,{"k":1,"j":2}]}},"a":-0}"#, #"{"a":0}"#),
            (#"[1e2, -1.5E-3, 12345678901234567890, -9223372036854775808, 2.0, 1E400]"#, #"[100,-0.0015,1.2345678901234567e+19,-9223372036854775808,2,"Infinity"]"#),
            (#"  "just a string \u0001 \ud800 x"  "#, #""just a string \u0001 � x""#),
            (#"{"":[],"a":{},"é":1}"#.replacingOccurrences(of: "é", with: "e\\u0301"), #"{"":[],"a":{},"e\u0301":1}"#),
            ("true", "true"),
            ("null", "null"),
        ]
        for (input, canonical) in cases.prefix(5) {
            XCTAssertEqual(decoded(input), canonical, input)
            XCTAssertEqual(decoded(input), expected(input), input)
            XCTAssertTrue(scanned(input), input)
        }
        for (input, _) in cases.suffix(3) {
            XCTAssertEqual(decoded(input), expected(input), input)
        }
    }

    /// What the scan leaves to the parser gives the parser's bytes: keys
    /// with an escape or a non-ASCII byte (ordered as `String` orders them),
    /// invalid UTF-8 (repaired), raw control characters, nesting past the
    /// cap, and text that is not JSON (then it is a string).
    func testWhatTheScanLeavesToTheParserComesOutAsTheParserHasIt() {
        let left: [String] = [
            #"{"é":1,"z":2,"e":3}"#,
            #"{"a\"b":1,"a":2}"#,
            "{\"a\":\"x\u{1}y\"}",
            String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
            #"{"a":1,}"#, "[1,2", "tru", "01", "-", "{\"a\" 1}", "\"abc", "[1]x", "{\"a\":1}}",
        ]
        for input in left {
            XCTAssertFalse(scanned(input), input)
            XCTAssertEqual(decoded(input), expected(input), input)
        }
        XCTAssertTrue(scanned(String(repeating: "[", count: 512) + String(repeating: "]", count: 512)))
        // Invalid UTF-8 inside a JSON string is repaired as the parser does.
        let bytes: [UInt8] = Array(#"{"a":""#.utf8) + [0xC3, 0x28, 0xED, 0xA0, 0x80] + Array(#""}"#.utf8)
        bytes.withUnsafeBufferPointer { buf in
            var w = JSONWriter()
            XCTAssertFalse(w.writeCanonical(buf))
        }
        XCTAssertEqual(String(decoding: JSONText.decoding(String(decoding: bytes, as: UTF8.self)).bytes, as: UTF8.self),
                       expected(String(decoding: bytes, as: UTF8.self)))
        // Text that does not start like JSON is a string, whatever follows.
        XCTAssertEqual(decoded("hello {\"a\":1}"), #""hello {\"a\":1}""#)
        XCTAssertEqual(decoded(""), #""""#)
        XCTAssertEqual(decoded("   "), #""   ""#)
    }

    /// Objects past the insertion sort's 16 members, with duplicates, and
    /// strings with what the scan stops at (an escape, a quote, a byte over
    /// 0x7F) at every offset of its eight-byte runs.
    func testBigObjectsAndEveryOffsetOfAStringsRuns() {
        var rng = SplitMix64(seed: 42)
        for size in [15, 16, 17, 40, 300] {
            let keys = (0..<size).map { "k\($0 % (size - 3))" }.shuffled(using: &rng)
            let input = "{" + keys.enumerated().map { "\"\($0.element)\": \($0.offset)" }.joined(separator: ", ") + "}"
            XCTAssertTrue(scanned(input), input)
            XCTAssertEqual(decoded(input), expected(input), input)
        }
        for special in [#"\n"#, "é", #"\""#, #"\u00e9"#, #"\/"#, "\u{1F600}"] {
            for offset in 0..<20 {
                let input = "[\"" + String(repeating: "a", count: offset) + special + String(repeating: "b", count: 11) + "\"]"
                XCTAssertTrue(scanned(input), input)
                XCTAssertEqual(decoded(input), expected(input), input)
            }
        }
        // Invalid UTF-8 inside a run is seen (and left to the parser, which
        // repairs it), at every offset.
        for offset in 0..<20 {
            let bytes = Array("[\"".utf8) + Array(repeating: UInt8(ascii: "a"), count: offset) + [0xC3, 0x28, 0xFF] + Array(repeating: UInt8(ascii: "b"), count: 11) + Array("\"]".utf8)
            bytes.withUnsafeBufferPointer { buf in
                var w = JSONWriter()
                XCTAssertFalse(w.writeCanonical(buf), "offset \(offset)")
            }
            let text = String(decoding: bytes, as: UTF8.self)
            XCTAssertEqual(decoded(text), expected(text))
        }
    }

    /// Reordering is bounded by a copy budget (four times the input plus
    /// 4 KiB): nested objects whose keys all need reordering are taken in
    /// one pass while the copies fit, and past the budget they are left to
    /// the parser, with the same bytes either way.
    func testReorderingPastTheCopyBudgetIsLeftToTheParser() {
        func nested(_ depth: Int) -> String {
            var s = "1"
            for _ in 0..<depth { s = #"{"b":"# + s + #","a":0}"# }
            return s
        }
        // Each level copies what it holds: depth 20 copies about 2 KiB of a
        // 0.2 KiB input (within 4 KiB), depth 200 about 240 KiB of 2 KiB.
        let within = nested(20)
        XCTAssertTrue(scanned(within))
        XCTAssertEqual(decoded(within), expected(within))
        let past = nested(200)
        XCTAssertFalse(scanned(past))
        XCTAssertEqual(decoded(past), expected(past))
    }

    /// Random documents, written with random whitespace, key order,
    /// duplicate keys and escapes: the same bytes as parse-and-write, and
    /// the one pass decides most of them (or the comparison would compare
    /// nothing of it).
    func testRandomDocumentsGiveTheParseAndWriteBytes() {
        var rng = SplitMix64(seed: 0x7E57_1D0C)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        func ws() -> String { ["", "", " ", "\n  ", "\t", "\r\n"][pick(6)] }
        let pieces = ["a", "b", "é", "\u{1F600}", "\n", "\"", "\\", "/", "\u{7}", "\u{7F}", "x y", "0", "\u{301}"]
        func stringLiteral(ascii: Bool) -> String {
            var out = "\""
            for _ in 0..<pick(5) {
                let p = ascii ? ["a", "b", "c", "key", "_", "0", " "][pick(7)] : pieces[pick(pieces.count)]
                for scalar in p.unicodeScalars {
                    switch (scalar, pick(4)) {
                    case ("\"", _): out += "\\\""
                    case ("\\", _): out += "\\\\"
                    case (_, 0) where !ascii, (_, _) where scalar.value < 0x20:
                        // As \u escapes, surrogate pairs for the astral ones.
                        for unit in String(scalar).utf16 { out += String(format: pick(2) == 0 ? "\\u%04x" : "\\u%04X", unit) }
                    case ("/", 1): out += "\\/"
                    default: out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }
        func number() -> String {
            ["0", "-0", "7", "-12", "3.25", "1e3", "-2.5E-2", "123456789012345678", "9223372036854775807", "9223372036854775808",
             "-9223372036854775809", "0.1", "1.0", "6.02e23"][pick(14)]
        }
        func document(_ depth: Int) -> String {
            switch depth > 3 ? pick(4) : pick(7) {
            case 0: return stringLiteral(ascii: false)
            case 1: return number()
            case 2: return ["true", "false", "null"][pick(3)]
            case 3: return stringLiteral(ascii: pick(2) == 0)
            case 4, 5:
                let keys = (0..<pick(6)).map { _ in stringLiteral(ascii: true) }
                // Some keys twice, at random places.
                let withDuplicates = keys + keys.filter { _ in pick(3) == 0 }
                let members = withDuplicates.shuffled(using: &rng).map { ws() + $0 + ws() + ":" + ws() + document(depth + 1) + ws() }
                return "{" + members.joined(separator: ",") + ws() + "}"
            default:
                return "[" + ws() + (0..<pick(5)).map { _ in ws() + document(depth + 1) + ws() }.joined(separator: ",") + "]"
            }
        }
        var onePass = 0
        for n in 0..<3_000 {
            let input = ws() + document(0) + ws()
            XCTAssertEqual(decoded(input), expected(input), "document \(n): \(input)")
            if scanned(input) { onePass += 1 }
        }
        XCTAssertGreaterThan(onePass, 2_500)
    }

    /// A metadata value's text: a string is quoted as the writer quotes
    /// it, whether it takes the no-writer path (nothing to escape, looked
    /// for eight bytes at a time) or not; two texts are equal only when
    /// their bytes are, and a JSON string reads back as the string.
    func testStringsQuoteAsTheWriterDoesAndTextsCompareByBytes() {
        func written(_ s: String) -> String {
            var w = JSONWriter()
            w.writeString(s)
            return String(decoding: w.bytes, as: UTF8.self)
        }
        var cases = ["", "eu-west-1", "acme-3", "é", "tab\there", "quote\"", "back\\slash", "\u{1}", "👩‍👩‍👧‍👦"]
        for n in [12, 13, 14, 15, 63, 64, 65, 200] {
            cases.append(String(repeating: "a", count: n))
            cases.append(String(repeating: "a", count: n - 1) + "\"")
            cases.append("\n" + String(repeating: "a", count: n - 1))
        }
        // A byte to escape in each place of a word, and just past it.
        for i in 0..<17 { cases.append(String(repeating: "a", count: i) + "\u{1f}" + String(repeating: "b", count: 16 - i)) }
        for s in cases {
            let text = JSONText.string(s)
            XCTAssertEqual(text.text, written(s), s)
            XCTAssertEqual(text, JSONText(.string(s)), s)
            XCTAssertEqual(text.hashValue, JSONText(.string(s)).hashValue, s)
            XCTAssertEqual(text.count, written(s).utf8.count, s)
            XCTAssertEqual(text.stringValue, s)
            XCTAssertEqual(JSONText.decoding(s).text, expected(s), s)
        }
        // Values the SDK sends already canonical are kept as they are; the
        // rest, and what only looks like them, are written out.
        let literals = [#""pro""#, "3", "-3", "-0", "0", "007", "1e5", "1.50", "true", "false", "null", "nul", "truex", #""a\"b""#,
                        "\"tab\tin\"", "\"aaaaaaaa\tbbbbbbbb\"", "\"aaaaaaaa\\\"bbb\"", "\"\u{301}x\"", "123456789012345678", "1234567890123456789", "-", #"""#, #""""#, " 3", "3 "]
        for s in literals { XCTAssertEqual(JSONText.decoding(s).text, expected(s), s) }
        XCTAssertEqual(JSONText(canonical: Array("\"\u{301}x\"".utf8)).stringValue, "\u{301}x")
        // "é" precomposed and decomposed are equal as Swift strings, not as JSON bytes.
        XCTAssertEqual("\u{e9}", "e\u{301}")
        XCTAssertNotEqual(JSONText.string("\u{e9}"), JSONText.string("e\u{301}"))
        XCTAssertEqual(Set([JSONText.string("\u{e9}"), JSONText.string("e\u{301}")]).count, 2)
        XCTAssertNil(JSONText.int(3).stringValue)
        XCTAssertEqual(JSONText.int(-3).text, "-3")
        XCTAssertEqual(JSONText.bool(false), JSONText(.bool(false)))
        XCTAssertTrue(JSONText.null.isNull)
        XCTAssertFalse(JSONText.string("null").isNull)
        XCTAssertEqual(JSONText(canonical: Array(#"{"a":[1,"x"]}"#.utf8)).value, .object(["a": .array([.int(1), .string("x")])]))
    }
}

extension SplitMix64: RandomNumberGenerator {}
