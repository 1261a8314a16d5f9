import TracefoldModel

/// ISO-8601 in UTC with milliseconds, the form the Langfuse API shows
/// (`2024-04-30T15:28:50.424Z`). Nanoseconds are floored to milliseconds
/// (R8). Written by hand: it runs for every time field of every record.
public enum ISOTime {
    public static func format(unixNano: UInt64) -> String {
        String(unsafeUninitializedCapacity: length) { buf in
            write(unixNano: unixNano, into: buf)
            return length
        }
    }

    /// A UInt64 of ns ends in 2554: the year always has four digits and the
    /// text is always 24 bytes.
    public static let length = 24

    /// The text into the first `length` bytes of `buf`.
    static func write(unixNano: UInt64, into buf: UnsafeMutableBufferPointer<UInt8>) {
        let ms = unixNano / 1_000_000
        let secs = Int64(ms / 1000)
        let millis = Int(ms % 1000)
        let days = secs / 86400
        let rem = Int(secs % 86400)
        let (y, m, d) = civil(fromDays: days)
        func put(_ value: Int, _ width: Int, at start: Int) {
            var v = value
            for i in stride(from: start + width - 1, through: start, by: -1) {
                buf[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        put(y, 4, at: 0)
        buf[4] = UInt8(ascii: "-")
        put(m, 2, at: 5)
        buf[7] = UInt8(ascii: "-")
        put(d, 2, at: 8)
        buf[10] = UInt8(ascii: "T")
        put(rem / 3600, 2, at: 11)
        buf[13] = UInt8(ascii: ":")
        put(rem / 60 % 60, 2, at: 14)
        buf[16] = UInt8(ascii: ":")
        put(rem % 60, 2, at: 17)
        buf[19] = UInt8(ascii: ".")
        put(millis, 3, at: 20)
        buf[23] = UInt8(ascii: "Z")
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; a missing zone is
    /// read as UTC.
    public static func parse(_ text: String) -> UInt64? {
        let b = Array(text.utf8)
        func num(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for i in at..<(at + n) {
                guard (48...57).contains(b[i]) else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard b.count >= 19, let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " "), let h = num(11, 2), b[13] == 58, let mi = num(14, 2),
            b[16] == 58, let s = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, (48...57).contains(b[i]) {
                if digits < 9 { nanos = nanos * 10 + Int(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 where digits < 9 { nanos *= 10 }
        }
        var offset = 0
        if i < b.count {
            if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
                i += 1
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
                guard let oh = num(i + 1, 2) else { return nil }
                var om = 0
                if i + 3 < b.count, b[i + 3] == 58 {
                    guard let m = num(i + 4, 2) else { return nil }
                    om = m
                    i += 6
                } else if let m = num(i + 3, 2) {
                    om = m
                    i += 5
                } else {
                    i += 3
                }
                offset = sign * (oh * 3600 + om * 60)
            }
        }
        guard i == b.count else { return nil }
        let secs = days(fromCivil: y, mo, d) * 86400 + Int64(h * 3600 + mi * 60 + s) - Int64(offset)
        // Nanoseconds since 1970 fit in a UInt64 until 2554; later years
        // (up to 9999 parse) are out of range rather than a trap.
        guard secs >= 0, secs < Int64(UInt64.max / 1_000_000_000) else { return nil }
        return UInt64(secs) * 1_000_000_000 + UInt64(nanos)
    }

    // Howard Hinnant's civil-calendar algorithms.
    static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }

    static func days(fromCivil y0: Int, _ m: Int, _ d: Int) -> Int64 {
        let y = Int64(m <= 2 ? y0 - 1 : y0)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64(m > 2 ? m - 3 : m + 9)
        let doy = (153 * mp + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

extension JSONWriter {
    /// `ISOTime.format(unixNano:)` as a JSON string, written in place.
    public mutating func writeISOTime(unixNano: UInt64) {
        writeRaw("\"")
        append(count: ISOTime.length) { ISOTime.write(unixNano: unixNano, into: $0) }
        writeRaw("\"")
    }
}
