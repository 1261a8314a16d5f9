import Foundation

/// A 16-byte W3C trace id. Stored as two big-endian halves so that it hashes
/// and compares without allocating.
public struct TraceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Returns nil unless `bytes` is exactly 16 bytes long. Not generic,
    /// so the decoder (another module) calls it as it is: it called the
    /// generic one below unspecialized, which looked the collection's type
    /// up at run time for every id of every span.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 16 else { return nil }
        self.init(high: UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)),
                  low: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    /// Returns nil unless `bytes` is exactly 16 bytes long.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 16 else { return nil }
        // Contiguous bytes (every caller's): two big-endian loads, where the
        // loop below took about 2% of the pipeline's CPU in the decoder.
        if let id = bytes.withContiguousStorageIfAvailable({ b in
            TraceID(high: UInt64(bigEndian: UnsafeRawBufferPointer(b).loadUnaligned(as: UInt64.self)),
                    low: UInt64(bigEndian: UnsafeRawBufferPointer(b).loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }) {
            self = id
            return
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { high = high << 8 | UInt64(b) } else { low = low << 8 | UInt64(b) }
        }
        self.init(high: high, low: low)
    }

    /// Parses 32 hex digits in either case.
    public init?(hex: some StringProtocol) {
        guard let bytes = HexCoding.decode(hex), let id = TraceID(bytes: bytes) else { return nil }
        self = id
    }

    public var isZero: Bool { high == 0 && low == 0 }
    public var hex: String { HexCoding.encode(high, low) }
    public var description: String { hex }
    public var bytes: [UInt8] { withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { Array($0) } }

    /// `bytes` as `Data`, as the stores bind it: one allocation.
    public var data: Data { withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { Data($0) } }

    public static func < (a: TraceID, b: TraceID) -> Bool { (a.high, a.low) < (b.high, b.low) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(high)
        hasher.combine(low)
    }

    /// One SipHash of `high` under the process's seed mixed with `low`, as
    /// `SpanID` hashes its one word: no `Hasher` made, fed twice and
    /// finalised for every lookup of a trace (the fold, the caches and the
    /// store's staging look a trace up several times a span). Ids that
    /// differ in `low` hash under different keys, and the keys stay
    /// secret, so client-chosen ids cannot be made to collide.
    public func _rawHashValue(seed: Int) -> Int { high._rawHashValue(seed: seed ^ Int(truncatingIfNeeded: low)) }
}

/// An 8-byte span id.
public struct SpanID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    /// Returns nil unless `bytes` is exactly 8 bytes long; not generic, as
    /// `TraceID.init(bytes:)`.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 8 else { return nil }
        value = UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
    }

    /// Returns nil unless `bytes` is exactly 8 bytes long.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 8 else { return nil }
        if let v = bytes.withContiguousStorageIfAvailable({ UInt64(bigEndian: UnsafeRawBufferPointer($0).loadUnaligned(as: UInt64.self)) }) {
            value = v
            return
        }
        self.value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Parses 16 hex digits in either case.
    public init?(hex: some StringProtocol) {
        guard let bytes = HexCoding.decode(hex), let id = SpanID(bytes: bytes) else { return nil }
        self = id
    }

    public var isZero: Bool { value == 0 }
    public var hex: String { HexCoding.encode(value) }

    /// The id's 16 lowercase hex digits, written on the stack: for a
    /// caller that copies them (an SQLite bind) without a String.
    public func withHexUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { digits in
            HexCoding.write(value, into: digits, at: 0)
            return try body(UnsafeBufferPointer(digits))
        }
    }
    public var description: String { hex }
    public var bytes: [UInt8] { HexCoding.bytes(value) }

    /// `bytes` as `Data`, as the stores bind it (eight bytes: kept inline).
    public var data: Data { withUnsafeBytes(of: value.bigEndian) { Data($0) } }

    public static func < (a: SpanID, b: SpanID) -> Bool { a.value < b.value }

    public func hash(into hasher: inout Hasher) { hasher.combine(value) }

    /// One SipHash of the value, keyed by the process's random seed as
    /// every Swift hash is (so client-chosen ids cannot be made to
    /// collide), the way the standard library's integers hash: without a
    /// `Hasher` made, fed and finalised for every lookup. The fold and the
    /// caches look a span's id up a dozen times; the `Hasher` path took
    /// 1.2% of the pipeline's CPU.
    public func _rawHashValue(seed: Int) -> Int { value._rawHashValue(seed: seed) }
}

extension JSONWriter {
    /// The id as the JSON string of its `hex`, written without making that
    /// string: records write several ids each.
    public mutating func writeHex(_ id: TraceID) {
        withUnsafeBytes(of: (id.high.bigEndian, id.low.bigEndian)) { writeHexString($0) }
    }

    /// The id as the JSON string of its `hex`.
    public mutating func writeHex(_ id: SpanID) {
        withUnsafeBytes(of: id.value.bigEndian) { writeHexString($0) }
    }
}

/// The key every span is stored and deduplicated under (SPEC §1.11).
public struct SpanKey: Hashable, Sendable, Comparable {
    public var traceID: TraceID
    public var spanID: SpanID

    public init(traceID: TraceID, spanID: SpanID) {
        self.traceID = traceID
        self.spanID = spanID
    }

    public static func < (a: SpanKey, b: SpanKey) -> Bool { (a.traceID, a.spanID) < (b.traceID, b.spanID) }
}

public enum HexCoding {
    /// The lowercase digits, shared with `JSONWriter`'s hex and escapes.
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lowercase hex of any bytes.
    public static func encode<C: Collection>(bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The 16 digits of `v`, written straight into the string: the ids'
    /// hex is made for every record rendered, and going through two byte
    /// arrays first cost three allocations a span id and seven a trace id.
    static func encode(_ v: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            write(v, into: out, at: 0)
            return 16
        }
    }

    /// The 32 digits of `high` then `low`.
    static func encode(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { out in
            write(high, into: out, at: 0)
            write(low, into: out, at: 16)
            return 32
        }
    }

    static func write(_ v: UInt64, into out: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
        digits.withUnsafeBufferPointer { d in
            for i in 0..<16 { out[start + i] = d[Int(truncatingIfNeeded: (v >> UInt64(60 - 4 * i)) & 0xF)] }
        }
    }

    static func bytes(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

    /// Decodes hex in either case; nil on an odd length or a non-hex digit.
    public static func decode(_ s: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(s.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let h = nibble(utf8[i]), let l = nibble(utf8[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum WallClock {
    /// Nanoseconds since the Unix epoch.
    public static func nowUnixNano() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
