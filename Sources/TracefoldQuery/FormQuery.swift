/// A query string decoded as `application/x-www-form-urlencoded` (SPEC §7.8),
/// the way the WHATWG URL standard, browsers, httpx, `requests` and Python's
/// `urlencode` write it: pairs split on `&`, name and value split at the first
/// `=`, `+` is a space, then percent-decoding. A `%` not followed by two hex
/// digits stays as it is, and bytes that are not UTF-8 become U+FFFD.
///
/// Hummingbird's `uri.queryParameters` percent-decodes but keeps `+`, so
/// `?name=answer+flow` read as "answer+flow"; every endpoint reads its
/// parameters through this type instead.
public struct FormQuery: Sendable, Equatable {
    /// The pairs in query order; a name may repeat.
    public let pairs: [(name: String, value: String)]

    public init(_ query: String?) {
        guard let query, !query.isEmpty else {
            pairs = []
            return
        }
        var out = [(name: String, value: String)]()
        for part in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let bytes = Array(part)
            if let eq = bytes.firstIndex(of: UInt8(ascii: "=")) {
                out.append((Self.decode(bytes[..<eq]), Self.decode(bytes[(eq + 1)...])))
            } else {
                out.append((Self.decode(bytes[...]), ""))
            }
        }
        pairs = out
    }

    /// The first value of `name`, as `URLSearchParams.get` gives it.
    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// Every value of `name`, in order.
    public func all(_ name: String) -> [String] {
        pairs.filter { $0.name == name }.map(\.value)
    }

    public static func == (a: FormQuery, b: FormQuery) -> Bool {
        a.pairs.elementsEqual(b.pairs) { $0.name == $1.name && $0.value == $1.value }
    }

    /// `+` → space, then `%XX` → byte; the bytes are read as UTF-8.
    static func decode(_ bytes: ArraySlice<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%"), i + 2 < bytes.endIndex, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
                continue
            } else {
                out.append(b)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
