/// JSON text exactly as Python's `json.dumps` writes it, because the
/// Langfuse v5 SDK's attribute values are `json.dumps` output and tracefold's
/// users compare the two. Two styles are in use (captured from langfuse
/// 5.0.4, `Tests/TracefoldTracingTests/Fixtures/langfuse-v5-attributes.json`):
/// metadata values are compact with raw non-ASCII, and ints beyond ±(2^53-1),
/// NaN and the infinities become JSON strings; inputs, outputs and the
/// generation fields use the defaults, `", "` and `": "` with non-ASCII
/// escaped as `\uXXXX`.
public enum PythonJSON {
    public enum Style: Sendable {
        /// `json.dumps(v, separators=(",", ":"), ensure_ascii=False)` after v5's
        /// `_serialize_metadata_value` coercions.
        case metadata
        /// `json.dumps(v)`.
        case standard
    }

    public static func string(_ value: MetadataValue, style: Style) -> String {
        var out = ""
        write(value, style: style, into: &out)
        return out
    }

    /// JavaScript's safe integer range, past which v5 sends ints as strings.
    static let maxSafeInteger: Int64 = (1 << 53) - 1

    private static func write(_ value: MetadataValue, style: Style, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let n):
            if style == .metadata && (n > maxSafeInteger || n < -maxSafeInteger) {
                writeString(String(n), style: style, into: &out)
            } else {
                out += String(n)
            }
        case .double(let d):
            if d.isNaN || d.isInfinite {
                let text = d.isNaN ? "NaN" : d < 0 ? "-Infinity" : "Infinity"
                // Python writes the bare tokens; v5 turns them into strings first.
                if style == .metadata { writeString(text, style: style, into: &out) } else { out += text }
            } else {
                out += pythonRepr(d)
            }
        case .string(let s): writeString(s, style: style, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += style == .metadata ? "," : ", " }
                write(item, style: style, into: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, field) in fields.enumerated() {
                if i > 0 { out += style == .metadata ? "," : ", " }
                writeString(field.key, style: style, into: &out)
                out += style == .metadata ? ":" : ": "
                write(field.value, style: style, into: &out)
            }
            out += "}"
        }
    }

    /// Python's float repr: the shortest digits that round-trip, exponent
    /// form below 1e-4 and from 1e16. Swift's `description` makes the same
    /// choices; only the exponent needs two digits, as C's printf gives.
    static func pythonRepr(_ d: Double) -> String {
        var s = d.description
        if let e = s.firstIndex(where: { $0 == "e" }) {
            var mantissa = String(s[..<e])
            var exponent = String(s[s.index(after: e)...])
            let sign = exponent.hasPrefix("-") ? "-" : "+"
            exponent = String(exponent.drop { $0 == "-" || $0 == "+" })
            if exponent.count < 2 { exponent = "0" + exponent }
            if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
            s = mantissa + "e" + sign + exponent
        }
        return s
    }

    private static func writeString(_ s: String, style: Style, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || (style == .standard && scalar.value > 0x7F) {
                    if scalar.value > 0xFFFF {
                        // ensure_ascii writes astral characters as surrogate pairs.
                        let v = scalar.value - 0x10000
                        out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
                    } else {
                        out += hex4(scalar.value)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }
}
