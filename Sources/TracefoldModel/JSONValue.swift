/// A parsed JSON document. Integers that fit in Int64 stay integers, so that
/// `"5"`-style metadata and int64 OTLP fields keep their exact value.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}

public struct JSONParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes. In an object with duplicate
/// keys the last one wins (SPEC §4.4). Nesting is capped so that hostile input
/// cannot exhaust the stack.
public struct JSONParser {
    public static let defaultMaxDepth = 512

    public static func parse<C: Collection>(_ bytes: C, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue
    where C.Element == UInt8 {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buf in
            Result { () throws(JSONParseError) -> JSONValue in
                var p = JSONParser(buf, maxDepth: maxDepth)
                return try p.parseDocument()
            }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try parse(copy, maxDepth: maxDepth)
    }

    public static func parse(_ string: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        try parse(Array(string.utf8), maxDepth: maxDepth)
    }

    private let buf: UnsafeBufferPointer<UInt8>
    private var i = 0
    private let maxDepth: Int
    private var depth = 0
    /// The members of the objects and the elements of the arrays being
    /// parsed, innermost last. Each object or array is made from its own
    /// stretch once it closes, at its final size: growing it member by
    /// member rehashed a dictionary at every doubling (a third of the
    /// parse of a span's input on the bench load).
    private var members: [(key: String, value: JSONValue)] = []
    private var elements: [JSONValue] = []

    private init(_ buf: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.buf = buf
        self.maxDepth = maxDepth
    }

    /// Whether UTF-8 text, after its leading whitespace, starts like a JSON
    /// value: only such text is worth parsing as JSON.
    /// Inlinable: it runs on every string attribute the mapper decodes,
    /// which a generic call across modules would slow.
    @inlinable
    public static func mayStartValue<C: Collection>(_ utf8: C) -> Bool where C.Element == UInt8 {
        switch utf8.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) ?? 0 {
        case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "\""), UInt8(ascii: "-"), UInt8(ascii: "t"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            false
        }
    }

    private mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        let v = try parseValue()
        skipWhitespace()
        guard i == buf.count else { throw fail("trailing characters") }
        return v
    }

    private func fail(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: i) }

    private mutating func skipWhitespace() {
        while i < buf.count {
            switch buf[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard i < buf.count else { throw fail("unexpected end of input") }
        switch buf[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    private mutating func expect(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= buf.count else { throw fail("unexpected end of input") }
        let p = word.utf8Start
        for k in 0..<n where buf[i + k] != p[k] { throw fail("invalid literal") }
        i += n
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > maxDepth { throw fail("nesting deeper than \(maxDepth)") }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        skipWhitespace()
        if i < buf.count, buf[i] == UInt8(ascii: "}") { i += 1; return .object([:]) }
        let base = members.count
        while true {
            skipWhitespace()
            guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            guard i < buf.count else { throw fail("unexpected end of input") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "}") { i += 1; break }
            throw fail("expected ',' or '}'")
        }
        var object = [String: JSONValue]()
        object.reserveCapacity(members.count - base)
        // In order, so that of duplicate keys the last one wins.
        for k in base..<members.count { object[members[k].key] = members[k].value }
        members.removeLast(members.count - base)
        return .object(object)
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        skipWhitespace()
        if i < buf.count, buf[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
        let base = elements.count
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard i < buf.count else { throw fail("unexpected end of input") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "]") { i += 1; break }
            throw fail("expected ',' or ']'")
        }
        let array = Array(elements[base...])
        elements.removeLast(elements.count - base)
        return .array(array)
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < buf.count {
            let c = buf[i]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in string") }
            i += 1
        }
        var out = Array(buf[start..<i])
        while i < buf.count {
            let c = buf[i]
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                i += 1
                guard i < buf.count else { throw fail("unexpected end of input") }
                let e = buf[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try parseHex4()
                    if (0xD800..<0xDC00).contains(scalar), i + 6 <= buf.count,
                        buf[i] == UInt8(ascii: "\\"), buf[i + 1] == UInt8(ascii: "u")
                    {
                        let save = i
                        i += 2
                        let low = try parseHex4()
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            i = save
                        }
                    }
                    // A lone surrogate becomes U+FFFD, as String(decoding:) would.
                    let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("invalid escape")
                }
            default:
                if c < 0x20 { throw fail("control character in string") }
                out.append(c)
                i += 1
            }
        }
        throw fail("unterminated string")
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= buf.count else { throw fail("short \\u escape") }
        guard let v = JSONLexer.hex4(buf, at: i) else {
            while JSONLexer.hexDigit(buf[i]) != nil { i += 1 }
            throw fail("invalid \\u escape")
        }
        i += 4
        return v
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = i
        let number = JSONLexer.number(buf, from: start)
        i = number.end
        guard number.ok else { throw fail("invalid number") }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
        if number.isInteger, let v = Int64(text) { return .int(v) }
        guard let d = Double(text) else { throw fail("invalid number") }
        return .double(d)
    }
}

/// The grammar's pieces that `JSONParser` and the one-pass canonical
/// writer (`JSONWriter.writeCanonical`) both read.
enum JSONLexer {
    static func hexDigit(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// The four hex digits at `i` (which has four bytes after it), nil
    /// when one is not a hex digit.
    static func hex4(_ buf: UnsafeBufferPointer<UInt8>, at i: Int) -> UInt32? {
        var v: UInt32 = 0
        for k in i..<(i + 4) {
            guard let d = hexDigit(buf[k]) else { return nil }
            v = v << 4 | d
        }
        return v
    }

    /// The number starting at `start` (a `-` or a digit): where it ends,
    /// whether it is an integer (no fraction, no exponent), and whether it
    /// is one at all (if not, `end` is where the grammar fails).
    static func number(_ buf: UnsafeBufferPointer<UInt8>, from start: Int) -> (end: Int, isInteger: Bool, ok: Bool) {
        var i = start
        var isInteger = true
        func isDigit(_ k: Int) -> Bool { k < buf.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(buf[k]) }
        if buf[i] == UInt8(ascii: "-") { i += 1 }
        guard isDigit(i) else { return (i, false, false) }
        if buf[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while isDigit(i) { i += 1 }
        }
        if i < buf.count, buf[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            let digits = i
            while isDigit(i) { i += 1 }
            guard i > digits else { return (i, false, false) }
        }
        if i < buf.count, buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < buf.count, buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { i += 1 }
            let digits = i
            while isDigit(i) { i += 1 }
            guard i > digits else { return (i, false, false) }
        }
        return (i, isInteger, true)
    }
}

/// Compact JSON output. This is the canonical form of SPEC §4.5: no
/// whitespace, `/` not escaped, non-ASCII written raw, integral doubles
/// written without `.0`. Object keys are sorted so that equal values always
/// serialise to equal bytes.
public struct JSONWriter {
    public internal(set) var bytes: [UInt8] = []

    public init(reservingCapacity capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// `body` writing JSON after the end of `buffer`, in `buffer` itself:
    /// for a format that keeps JSON among bytes of its own, without a
    /// second buffer to write it into and copy it from.
    public static func appending(to buffer: inout [UInt8], _ body: (inout JSONWriter) -> Void) {
        var w = JSONWriter(reservingCapacity: 0)
        swap(&w.bytes, &buffer)
        defer { swap(&w.bytes, &buffer) }
        body(&w)
    }

    public static func serialize(_ value: JSONValue) -> String {
        var w = JSONWriter()
        w.write(value)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    public mutating func write(_ value: JSONValue) {
        switch value {
        case .null: writeRaw("null")
        case .bool(let b): writeRaw(b ? "true" : "false")
        case .int(let v): writeInt(v)
        case .double(let d): writeDouble(d)
        case .string(let s): writeString(s)
        case .array(let a):
            bytes.append(UInt8(ascii: "["))
            for (k, v) in a.enumerated() {
                if k > 0 { bytes.append(UInt8(ascii: ",")) }
                write(v)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let o):
            bytes.append(UInt8(ascii: "{"))
            // String's `<` (it has an ASCII fast path); a UTF-8 view
            // comparison was far slower on a span of 10^6 attributes.
            if o.count <= 32 {
                // Sorting the pairs, not the keys, saves a hash lookup per key.
                o.withPairsSortedByKey { pairs in
                    for (k, pair) in pairs.enumerated() {
                        if k > 0 { bytes.append(UInt8(ascii: ",")) }
                        writeString(pair.key)
                        bytes.append(UInt8(ascii: ":"))
                        write(pair.value)
                    }
                }
            } else {
                // A big object sorts positions, not its pairs: a sort moves
                // each element many times, and a pair is a string and a
                // value to copy (in a debug build, through generic tuple
                // metadata: 10^6 attributes took most of a minute).
                let keys = Array(o.keys)
                let values = Array(o.values)
                let order = keys.indices.sorted { keys[$0] < keys[$1] }
                for (k, i) in order.enumerated() {
                    if k > 0 { bytes.append(UInt8(ascii: ",")) }
                    writeString(keys[i])
                    bytes.append(UInt8(ascii: ":"))
                    write(values[i])
                }
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    // A record written field by field, with no dictionary to build, sort
    // and free: the caller names the keys in ascending order, the order
    // `write(.object)` sorts them into, so the bytes are the same.

    public mutating func beginObject() { bytes.append(UInt8(ascii: "{")) }

    public mutating func endObject() { bytes.append(UInt8(ascii: "}")) }

    /// `"key":`, after a comma unless it opens the object.
    /// Written in one append: byte by byte, the punctuation around the
    /// name was most of the cost of the records' keys (1.7% of the CPU).
    public mutating func key(_ key: StaticString) {
        let comma = bytes.last != UInt8(ascii: "{")
        key.withUTF8Buffer { name in
            let n = name.count
            append(count: n + (comma ? 4 : 3)) { out in
                var i = 0
                if comma {
                    out[0] = UInt8(ascii: ",")
                    i = 1
                }
                out[i] = UInt8(ascii: "\"")
                for k in 0..<n { out[i + 1 + k] = name[k] }
                out[i + n + 1] = UInt8(ascii: "\"")
                out[i + n + 2] = UInt8(ascii: ":")
            }
        }
    }

    /// `"key":` for a key known only at run time.
    public mutating func key(_ key: String) {
        if bytes.last != UInt8(ascii: "{") { bytes.append(UInt8(ascii: ",")) }
        writeString(key)
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func beginArray() { bytes.append(UInt8(ascii: "[")) }

    public mutating func endArray() { bytes.append(UInt8(ascii: "]")) }

    /// Before each array element: a comma unless it opens the array.
    public mutating func nextElement() {
        if bytes.last != UInt8(ascii: "[") { bytes.append(UInt8(ascii: ",")) }
    }

    /// JSON another writer has already written.
    public mutating func writeJSON(_ json: [UInt8]) { bytes.append(contentsOf: json) }

    public mutating func field(_ name: StaticString, _ value: JSONValue) {
        key(name)
        write(value)
    }

    /// A string field, null when absent.
    public mutating func field(_ name: StaticString, string: String?) {
        key(name)
        if let string { writeString(string) } else { writeRaw("null") }
    }

    public mutating func writeRaw(_ s: String) { bytes.appendUTF8(s) }

    public mutating func writeRaw(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }

    /// `raw` as a JSON string of lowercase hex digits, which need no escaping.
    public mutating func writeHexString(_ raw: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "\""))
        append(count: raw.count * 2) { out in
            var i = 0
            for b in raw {
                out[i] = HexCoding.digits[Int(b >> 4)]
                out[i + 1] = HexCoding.digits[Int(b & 0xF)]
                i += 2
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// `count` bytes written in place by `fill`, which must write them all.
    /// Filled in a temporary buffer (on the stack when small) and appended
    /// with one copy: appending `repeatElement(0, count:)` first went
    /// element by element through the generic sequence copy.
    public mutating func append(count: Int, _ fill: (UnsafeMutableBufferPointer<UInt8>) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { buffer in
            fill(buffer)
            bytes.append(contentsOf: UnsafeBufferPointer(buffer))
        }
    }

    /// An unsigned integer as a JSON string of its decimal digits (how the
    /// records write nanosecond times, which JSON numbers cannot hold).
    public mutating func writeDecimalString(_ v: UInt64) {
        var digits = 1
        var rest = v / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        bytes.append(UInt8(ascii: "\""))
        append(count: digits) { out in
            var v = v
            for i in stride(from: digits - 1, through: 0, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Empties the buffer and keeps its memory for the next use.
    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    public mutating func writeInt(_ v: Int64) { bytes.append(contentsOf: String(v).utf8) }

    public mutating func writeUInt(_ v: UInt64) { bytes.append(contentsOf: String(v).utf8) }

    /// JSON has no NaN or infinities; like proto3 JSON they become strings.
    public mutating func writeDouble(_ d: Double) {
        if d.isNaN { writeRaw("\"NaN\""); return }
        if d.isInfinite { writeRaw(d < 0 ? "\"-Infinity\"" : "\"Infinity\""); return }
        if d == d.rounded(), abs(d) < 9.007_199_254_740_992e15 {
            writeInt(Int64(d))
            return
        }
        // `description` is Swift's shortest round-trip form; a short one is
        // a small string, so no allocation (interpolation built a buffer).
        var text = d.description
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    public mutating func writeString(_ s: String) {
        s.withUTF8Bytes { writeString(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// UTF-8 text as a JSON string.
    public mutating func writeString(utf8: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "\""))
        guard let base = utf8.baseAddress else {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        // Copy each run that needs no escape in one append, and look for
        // the end of a run eight bytes at a time: most text has no byte to
        // escape, and a 10 MB value was a loop of 10^7 steps.
        let n = utf8.count
        var runStart = 0
        var i = 0
        while i < n {
            if i + 8 <= n, !Self.needsEscape(base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                i += 8
                continue
            }
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            if Self.escapes(c) {
                if runStart < i { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart..<i])) }
                writeEscaped(c)
                runStart = i + 1
            }
            i += 1
        }
        if runStart < n { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: utf8[runStart...])) }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Whether `writeString` would escape any byte of `utf8`, looked at
    /// eight bytes at a time, as it does.
    static func hasByteToEscape(_ utf8: UnsafeRawBufferPointer) -> Bool {
        guard let base = utf8.baseAddress else { return false }
        let n = utf8.count
        var i = 0
        while i + 8 <= n {
            if needsEscape(base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return true }
            i += 8
        }
        while i < n {
            if escapes(base.load(fromByteOffset: i, as: UInt8.self)) { return true }
            i += 1
        }
        return false
    }

    /// Whether any of a word's eight bytes is a control character, `"` or
    /// `\` (the bytes JSON escapes), by the bit tricks for "has a byte less
    /// than n" and "has a zero byte"; exact, with no false negatives.
    @inline(__always)
    static func needsEscape(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let below0x20 = (w &- ones &* 0x20) & ~w & highs
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let hasQuote = (quote &- ones) & ~quote & highs
        let hasBackslash = (backslash &- ones) & ~backslash & highs
        return (below0x20 | hasQuote | hasBackslash) != 0
    }

    /// Whether `writeString` escapes the byte.
    static func escapes(_ c: UInt8) -> Bool { c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") }

    mutating func writeEscaped(_ c: UInt8) {
        bytes.append(0x5C)
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(c)
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        default:
            bytes.append(contentsOf: Array("u00".utf8))
            bytes.append(HexCoding.digits[Int(c >> 4)])
            bytes.append(HexCoding.digits[Int(c & 0xF)])
        }
    }
}

extension JSONValue {
    /// A JSON number as a Double; nil for anything else.
    public var numberValue: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
}
