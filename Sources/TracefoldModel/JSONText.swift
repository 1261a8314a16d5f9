#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON value kept as its canonical compact text (SPEC §4.5): the bytes
/// `JSONWriter.write` gives for it. An observation's input and output are
/// held this way from the mapping to the stored record, because nothing in
/// between looks inside them: parsing a span's input into a `JSONValue`
/// tree, writing the tree back out and freeing it was about 4% of the
/// collector's CPU on the bench load. `JSONText.decoding` makes the text
/// in one pass over the attribute, without the tree, whenever it can.
public struct JSONText: Sendable, Hashable {
    /// The text, held as a `String` because a string of up to 15 UTF-8
    /// bytes lives inline: most metadata values (`"eu-west-1"`, `false`,
    /// `3`) then cost no allocation, where a byte array always took one.
    /// Canonical JSON is valid UTF-8 (what the writer writes comes from
    /// Swift strings, and the parser repairs invalid input), so the bytes
    /// round-trip exactly. Compared and hashed by its bytes, not by
    /// `String`'s Unicode equivalence: two texts are the same value only
    /// when they are the same bytes.
    public let text: String

    /// Bytes that are already canonical JSON (a stored record's, a state's).
    public init(canonical bytes: some Collection<UInt8>) { text = String(decoding: bytes, as: UTF8.self) }

    private init(text: String) { self.text = text }

    public init(_ value: JSONValue) {
        // Integers and literals as `int` and `bool` write them: a writer's
        // buffer was an allocation for each usage count an AI span carries.
        switch value {
        case .int(let i): self = .int(i)
        case .bool(let b): self = .bool(b)
        case .null: self.init(text: "null")
        default: self.init(written: value)
        }
    }

    private init(written value: JSONValue) {
        var w = JSONWriter(reservingCapacity: 64)
        w.write(value)
        self.init(canonical: w.bytes)
    }

    public var bytes: [UInt8] { Array(text.utf8) }

    /// The length in bytes.
    public var count: Int { text.utf8.count }

    /// The value, parsed from the text (canonical text always parses).
    public var value: JSONValue { (try? JSONParser.parse(text)) ?? .null }

    public static func == (a: JSONText, b: JSONText) -> Bool {
        var (x, y) = (a.text, b.text)
        return x.withUTF8 { p in y.withUTF8 { q in p.count == q.count && (p.count == 0 || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0) } }
    }

    public func hash(into hasher: inout Hasher) {
        var t = text
        t.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// `s` as a JSON string. A string with nothing to escape is quoted
    /// as a `String`, inline when short, without a writer's buffer.
    public static func string(_ s: String) -> JSONText {
        var s = s
        let made = s.withUTF8 { quoting($0) }
        return made.text(of: s)
    }

    /// The JSON string of `utf8`: quoted as it is when it has nothing to
    /// escape, else written by the writer.
    private static func quoting(_ utf8: UnsafeBufferPointer<UInt8>) -> Made {
        if !JSONWriter.hasByteToEscape(UnsafeRawBufferPointer(utf8)) { return .quoted }
        var w = JSONWriter(reservingCapacity: utf8.count + 2)
        w.writeString(utf8: UnsafeRawBufferPointer(utf8))
        return .text(JSONText(canonical: w.bytes))
    }

    public static func int(_ i: Int64) -> JSONText { JSONText(text: String(i)) }

    public static func bool(_ b: Bool) -> JSONText { JSONText(text: b ? "true" : "false") }

    public static let null = JSONText(text: "null")

    public var isNull: Bool { text == "null" }

    /// The string, when the text is a JSON string; nil for any other value.
    public var stringValue: String? {
        guard text.utf8.first == UInt8(ascii: "\"") else { return nil }
        // By bytes: a combining mark after the quote joins its character.
        if !text.utf8.contains(UInt8(ascii: "\\")) { return String(decoding: text.utf8.dropFirst().dropLast(), as: UTF8.self) }
        return value.stringValue
    }

    /// The text of an attribute's string as Langfuse reads it: the JSON it
    /// holds when it is a JSON document, otherwise the string itself. The
    /// same bytes as writing `JSONDecoding.decodeIfJSON(s)`.
    public static func decoding(_ s: String) -> JSONText {
        var s = s
        let made: Made = s.withUTF8 { utf8 in
            // Only text that can start a JSON value is tried.
            if JSONParser.mayStartValue(utf8) {
                if isCanonicalLiteral(utf8) { return .itself }
                var w = JSONWriter(reservingCapacity: utf8.count + 16)
                if w.writeCanonical(utf8) { return .text(JSONText(canonical: w.bytes)) }
                // Left to the parser: it decides, and a failed parse is a string.
                if let v = try? JSONParser.parse(utf8) { return .text(JSONText(v)) }
            }
            return quoting(utf8)
        }
        return made.text(of: s)
    }

    /// How a string's text is made: written out, or the string itself
    /// (already canonical) or quoted as it is, with no writer.
    private enum Made {
        case text(JSONText)
        case itself
        case quoted

        func text(of s: String) -> JSONText {
            switch self {
            case .text(let t): t
            case .itself: JSONText(text: s)
            case .quoted: JSONText(text: "\"" + s + "\"")
            }
        }
    }

    /// Whether `utf8` is a JSON value that the canonical writer writes back
    /// byte for byte: `true`, `false`, `null`, an integer of at most 18
    /// digits with no leading zero (and not `-0`), or a string with nothing
    /// escaped in it. Langfuse's SDK sends most metadata values this way
    /// (`"\"pro\""`, `"3"`, `"false"`); they then take no writer and no copy.
    static func isCanonicalLiteral(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = utf8.first, let last = utf8.last else { return false }
        switch first {
        case UInt8(ascii: "\""):
            guard utf8.count >= 2, last == UInt8(ascii: "\"") else { return false }
            return !JSONWriter.hasByteToEscape(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[1..<(utf8.count - 1)])))
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            return utf8.elementsEqual("true".utf8) || utf8.elementsEqual("false".utf8) || utf8.elementsEqual("null".utf8)
        default:
            let digits = first == UInt8(ascii: "-") ? utf8.dropFirst() : utf8[...]
            guard let lead = digits.first, (1...18).contains(digits.count) else { return false }
            if lead == UInt8(ascii: "0") { return digits.count == 1 && first != UInt8(ascii: "-") }
            return digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
    }
}

extension JSONWriter {
    public mutating func write(_ text: JSONText) { bytes.appendUTF8(text.text) }

    /// An object of values already written as text: the bytes
    /// `write(.object(…))` gives for the same values, keys sorted the same
    /// way, without a `JSONValue` tree to build and walk.
    public mutating func writeObject(_ members: [String: JSONText]) {
        bytes.append(UInt8(ascii: "{"))
        for (k, pair) in members.sorted(by: { $0.key < $1.key }).enumerated() {
            if k > 0 { bytes.append(UInt8(ascii: ",")) }
            writeString(pair.key)
            bytes.append(UInt8(ascii: ":"))
            bytes.appendUTF8(pair.value.text)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// Appends the canonical text of the JSON document `input`, the bytes
    /// `write(JSONParser.parse(input))` appends, in one pass without a
    /// `JSONValue` tree: whitespace dropped, escapes rewritten the way
    /// `writeString` writes them, numbers as `write` writes them, and each
    /// object's members put in key order (of duplicate keys the last wins)
    /// once it closes. Returns false, with `bytes` partly written, for what
    /// it leaves to the parser: text that is not JSON, invalid UTF-8 (the
    /// parser repairs it), object keys with an escape or a non-ASCII byte
    /// (their order is `String`'s, not the bytes'), nesting deeper than the
    /// parser's cap, and objects whose reordering would copy more than a
    /// few times the input.
    public mutating func writeCanonical(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
        // A member takes at least four bytes of input (`"":0`), so this
        // many always have room; a temporary allocation, on the stack for
        // the usual few hundred bytes, where a growing array was a heap
        // allocation for every input with an object in it.
        withUnsafeTemporaryAllocation(of: Canonicalizer.Member.self, capacity: input.count / 4 + 1) { members in
            var c = Canonicalizer(input: input, members: members)
            return c.document(into: &self)
        }
    }
}

private struct Canonicalizer {
    let input: UnsafeBufferPointer<UInt8>
    var i = 0
    var depth = 0
    /// The members of the objects being written, innermost last, as
    /// offsets into the output: the key's bytes (between its quotes) and
    /// the whole `"key":value`.
    let members: UnsafeMutableBufferPointer<Member>
    /// How many of `members` are in use.
    var memberCount = 0
    /// Bytes copied to put members in order, bounded so that hostile
    /// nesting falls back to the parser instead of copying quadratically.
    var copied = 0
    let copyBudget: Int

    init(input: UnsafeBufferPointer<UInt8>, members: UnsafeMutableBufferPointer<Member>) {
        self.input = input
        self.members = members
        copyBudget = 4 * input.count + 4096
    }

    mutating func document(into w: inout JSONWriter) -> Bool {
        skipWhitespace()
        guard value(into: &w) else { return false }
        skipWhitespace()
        return i == input.count
    }

    mutating func skipWhitespace() {
        while i < input.count {
            switch input[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    mutating func value(into w: inout JSONWriter) -> Bool {
        guard i < input.count else { return false }
        switch input[i] {
        case UInt8(ascii: "{"): return object(into: &w)
        case UInt8(ascii: "["): return array(into: &w)
        case UInt8(ascii: "\""): return string(into: &w, isKey: false)
        case UInt8(ascii: "t"): return literal("true", into: &w)
        case UInt8(ascii: "f"): return literal("false", into: &w)
        case UInt8(ascii: "n"): return literal("null", into: &w)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number(into: &w)
        default: return false
        }
    }

    mutating func literal(_ word: StaticString, into w: inout JSONWriter) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= input.count else { return false }
        let p = word.utf8Start
        for k in 0..<n where input[i + k] != p[k] { return false }
        w.bytes.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        i += n
        return true
    }

    mutating func enter() -> Bool {
        depth += 1
        return depth <= JSONParser.defaultMaxDepth
    }

    /// Writes the opening bracket of the array or object at `i`; true when
    /// it closes at once (then it is written whole).
    mutating func isEmpty(opening: UInt8, closing: UInt8, into w: inout JSONWriter) -> Bool {
        i += 1
        w.bytes.append(opening)
        skipWhitespace()
        guard i < input.count, input[i] == closing else { return false }
        i += 1
        w.bytes.append(closing)
        return true
    }

    mutating func array(into w: inout JSONWriter) -> Bool {
        guard enter() else { return false }
        defer { depth -= 1 }
        if isEmpty(opening: UInt8(ascii: "["), closing: UInt8(ascii: "]"), into: &w) { return true }
        while true {
            skipWhitespace()
            guard value(into: &w) else { return false }
            skipWhitespace()
            guard i < input.count else { return false }
            if input[i] == UInt8(ascii: ",") {
                i += 1
                w.bytes.append(UInt8(ascii: ","))
                continue
            }
            if input[i] == UInt8(ascii: "]") {
                i += 1
                w.bytes.append(UInt8(ascii: "]"))
                return true
            }
            return false
        }
    }

    mutating func object(into w: inout JSONWriter) -> Bool {
        guard enter() else { return false }
        defer { depth -= 1 }
        let objectStart = w.bytes.count
        if isEmpty(opening: UInt8(ascii: "{"), closing: UInt8(ascii: "}"), into: &w) { return true }
        let base = memberCount
        defer { memberCount = base }
        while true {
            skipWhitespace()
            guard i < input.count, input[i] == UInt8(ascii: "\"") else { return false }
            if memberCount > base { w.bytes.append(UInt8(ascii: ",")) }
            let start = w.bytes.count
            guard string(into: &w, isKey: true) else { return false }
            let keyEnd = w.bytes.count - 1
            skipWhitespace()
            guard i < input.count, input[i] == UInt8(ascii: ":") else { return false }
            i += 1
            w.bytes.append(UInt8(ascii: ":"))
            skipWhitespace()
            guard value(into: &w) else { return false }
            guard memberCount < members.count else { return false }  // cannot happen (see `writeCanonical`)
            members[memberCount] = (start + 1, keyEnd, start, w.bytes.count)
            memberCount += 1
            skipWhitespace()
            guard i < input.count else { return false }
            if input[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if input[i] == UInt8(ascii: "}") {
                i += 1
                break
            }
            return false
        }
        w.bytes.append(UInt8(ascii: "}"))
        return order(from: base, objectStart: objectStart, into: &w)
    }

    /// Puts the members from `base` in key order, keeping the last of equal
    /// keys, unless they already are in strictly ascending order.
    mutating func order(from base: Int, objectStart: Int, into w: inout JSONWriter) -> Bool {
        let ms = members
        let end = memberCount
        let count = end - base
        let ascending = w.bytes.withUnsafeBufferPointer { p in
            (1..<max(1, count)).allSatisfy { Self.keyLess(ms[base + $0 - 1], ms[base + $0], p) }
        }
        if ascending { return true }
        copied += w.bytes.count - objectStart
        guard copied <= copyBudget else { return false }
        // The members in key order, written to a temporary buffer and
        // copied back over the object. Both buffers are temporary
        // allocations, on the stack when small (as an SDK's messages are):
        // arrays kept for the document's other objects still cost a heap
        // allocation and a growth or two for every input mapped.
        let length = w.bytes.count - objectStart
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { sorted in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { scratch in
                var filled = 0
                w.bytes.withUnsafeBufferPointer { p in
                    func less(_ a: Int, _ b: Int) -> Bool { Self.keyLess(ms[a], ms[b], p) }
                    if count <= 16 {
                        // Insertion sort: stable, and the fastest for a few members.
                        for (n, k) in (base..<end).enumerated() {
                            var at = n
                            while at > 0, less(k, sorted[at - 1]) {
                                sorted[at] = sorted[at - 1]
                                at -= 1
                            }
                            sorted[at] = k
                        }
                    } else {
                        for n in 0..<count { sorted[n] = base + n }
                        // Ties by position, so that the order is total (and
                        // stable). A `var` of the same buffer, for `sort`.
                        var sorted = sorted
                        sorted.sort { a, b in less(a, b) || (!less(b, a) && a < b) }
                    }
                    func put(_ byte: UInt8) {
                        scratch[filled] = byte
                        filled += 1
                    }
                    put(UInt8(ascii: "{"))
                    for n in 0..<count {
                        let k = sorted[n]
                        if n + 1 < count, !less(k, sorted[n + 1]) { continue }  // a later duplicate wins
                        if filled > 1 { put(UInt8(ascii: ",")) }
                        let member = UnsafeBufferPointer(rebasing: p[ms[k].start..<ms[k].end])
                        _ = UnsafeMutableBufferPointer(rebasing: scratch[filled...]).initialize(fromContentsOf: member)
                        filled += member.count
                    }
                    put(UInt8(ascii: "}"))
                }
                // Duplicates dropped make the object shorter, never longer.
                w.bytes.replaceSubrange(objectStart..., with: UnsafeBufferPointer(rebasing: scratch[..<filled]))
                return true
            }
        }
    }

    typealias Member = (keyStart: Int, keyEnd: Int, start: Int, end: Int)

    /// Whether `x`'s key sorts before `y`'s: by bytes, which for the plain
    /// ASCII keys this scan takes is `String`'s order.
    static func keyLess(_ x: Member, _ y: Member, _ p: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = min(x.keyEnd - x.keyStart, y.keyEnd - y.keyStart)
        for k in 0..<n {
            let c = p[x.keyStart + k]
            let d = p[y.keyStart + k]
            if c != d { return c < d }
        }
        return x.keyEnd - x.keyStart < y.keyEnd - y.keyStart
    }

    /// A string with the escapes `writeString` writes. A key must be plain
    /// ASCII without escapes (see `writeCanonical`).
    mutating func string(into w: inout JSONWriter, isKey: Bool) -> Bool {
        i += 1
        w.bytes.append(UInt8(ascii: "\""))
        var run = i
        let base = input.baseAddress!
        while i < input.count {
            // Eight plain ASCII bytes at a time (no control character,
            // quote, backslash or byte over 0x7F): most text is such runs.
            if i + 8 <= input.count {
                let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0, !JSONWriter.needsEscape(word) {
                    i += 8
                    continue
                }
            }
            let c = input[i]
            if c >= 0x20, c < 0x80, c != UInt8(ascii: "\""), c != UInt8(ascii: "\\") {
                i += 1
                continue
            }
            if run < i { w.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[run..<i])) }
            if c == UInt8(ascii: "\"") {
                i += 1
                w.bytes.append(c)
                return true
            }
            if c < 0x20 || isKey { return false }
            if c >= 0x80 {
                guard let n = validUTF8Sequence(at: i) else { return false }
                w.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[i..<(i + n)]))
                i += n
            } else {
                guard escape(into: &w) else { return false }
            }
            run = i
        }
        return false
    }

    /// One escape, rewritten as `writeString` would write what it stands for.
    mutating func escape(into w: inout JSONWriter) -> Bool {
        i += 1
        guard i < input.count else { return false }
        let e = input[i]
        i += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"),
            UInt8(ascii: "t"):
            w.bytes.append(UInt8(ascii: "\\"))
            w.bytes.append(e)
        case UInt8(ascii: "/"):
            w.bytes.append(e)
        case UInt8(ascii: "u"):
            guard var scalar = hex4() else { return false }
            // A surrogate pair, as the parser reads it; a lone surrogate
            // becomes U+FFFD.
            if (0xD800..<0xDC00).contains(scalar), i + 6 <= input.count, input[i] == UInt8(ascii: "\\"),
                input[i + 1] == UInt8(ascii: "u")
            {
                let save = i
                i += 2
                guard let low = hex4() else { return false }
                if (0xDC00..<0xE000).contains(low) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    i = save
                }
            }
            let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
            if u.value < 0x80, JSONWriter.escapes(UInt8(u.value)) {
                w.writeEscaped(UInt8(u.value))
            } else {
                w.bytes.append(contentsOf: UTF8.encode(u)!)
            }
        default:
            return false
        }
        return true
    }

    mutating func hex4() -> UInt32? {
        guard i + 4 <= input.count, let v = JSONLexer.hex4(input, at: i) else { return nil }
        i += 4
        return v
    }

    /// The length of the well-formed UTF-8 sequence at `k` (RFC 3629),
    /// nil when it is not one.
    func validUTF8Sequence(at k: Int) -> Int? {
        let b0 = input[k]
        func cont(_ n: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool { k + n < input.count && range.contains(input[k + n]) }
        switch b0 {
        case 0xC2...0xDF: return cont(1) ? 2 : nil
        case 0xE0: return cont(1, 0xA0...0xBF) && cont(2) ? 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF: return cont(1) && cont(2) ? 3 : nil
        case 0xED: return cont(1, 0x80...0x9F) && cont(2) ? 3 : nil
        case 0xF0: return cont(1, 0x90...0xBF) && cont(2) && cont(3) ? 4 : nil
        case 0xF1...0xF3: return cont(1) && cont(2) && cont(3) ? 4 : nil
        case 0xF4: return cont(1, 0x80...0x8F) && cont(2) && cont(3) ? 4 : nil
        default: return nil
        }
    }

    /// A number as `write` writes what the parser reads: an integer that
    /// fits in 64 bits as its digits (`-0` as `0`), anything else through
    /// `Double`.
    mutating func number(into w: inout JSONWriter) -> Bool {
        let start = i
        let number = JSONLexer.number(input, from: start)
        i = number.end
        guard number.ok else { return false }
        let isInteger = number.isInteger
        let text = UnsafeBufferPointer(rebasing: input[start..<i])
        let negative = text[0] == UInt8(ascii: "-")
        if isInteger, text.count - (negative ? 1 : 0) <= 18 {
            // Always within Int64: the digits are the canonical form.
            if text.count == 2, negative, text[1] == UInt8(ascii: "0") {
                w.bytes.append(UInt8(ascii: "0"))
            } else {
                w.bytes.append(contentsOf: text)
            }
            return true
        }
        let string = String(decoding: text, as: UTF8.self)
        if isInteger, let v = Int64(string) {
            w.writeInt(v)
            return true
        }
        guard let d = Double(string) else { return false }
        w.writeDouble(d)
        return true
    }
}
