/// Bounds how deeply attribute values nest (kvlists in arrays in kvlists…)
/// before protobuf-c sees the body. protobuf-c unpacks recursively, so a
/// body of a few hundred kilobytes nesting 10,000 levels deep would overflow
/// the thread's stack and kill the process. This walks the wire format with
/// an explicit stack instead, knowing only which fields of the trace request
/// are messages, and stops at the first AnyValue nested deeper than the
/// limit. Malformed input is left for protobuf-c to report.
public enum ProtobufNestingCheck {
    /// AnyValues inside AnyValues; OTLP sets no limit, real attributes need a
    /// handful.
    public static let maxAnyValueDepth = 64

    enum Message {
        case request, resourceSpans, resource, scopeSpans, scope, span, event, link, keyValue, anyValue, arrayValue, keyValueList

        /// The message type of a length-delimited field, or nil for bytes
        /// and strings.
        func child(_ field: UInt64) -> Message? {
            switch (self, field) {
            case (.request, 1): .resourceSpans
            case (.resourceSpans, 1): .resource
            case (.resourceSpans, 2): .scopeSpans
            case (.resource, 1), (.scope, 3), (.span, 9), (.event, 3), (.link, 4), (.keyValueList, 1): .keyValue
            case (.scopeSpans, 1): .scope
            case (.scopeSpans, 2): .span
            case (.span, 11): .event
            case (.span, 13): .link
            case (.keyValue, 2), (.arrayValue, 1): .anyValue
            case (.anyValue, 5): .arrayValue
            case (.anyValue, 6): .keyValueList
            default: nil
            }
        }
    }

    /// True when no AnyValue nests deeper than `limit`.
    public static func withinLimit(_ body: [UInt8], limit: Int = maxAnyValueDepth) -> Bool {
        body.withUnsafeBufferPointer { b -> Bool in
            // Locals of this closure, read through a struct rather than a
            // nested function: a nested function capturing the position
            // made every access a dynamic exclusivity check (swift_beginAccess
            // was a fifth of this walk's time).
            var r = Reader(b: b)
            var stack: [(message: Message, end: Int)] = [(.request, b.count)]
            stack.reserveCapacity(16)
            var anyDepth = 0
            while true {
                while let top = stack.last, r.i >= top.end {
                    if top.message == .anyValue { anyDepth -= 1 }
                    stack.removeLast()
                    if stack.isEmpty { return true }
                }
                guard let tag = r.varint() else { return true }
                switch tag & 7 {
                case 0: guard r.varint() != nil else { return true }
                case 1: r.i += 8
                case 5: r.i += 4
                case 2:
                    guard let n = r.varint(), n <= UInt64(b.count - r.i) else { return true }
                    let end = r.i + Int(n)
                    if let child = stack.last!.message.child(tag >> 3) {
                        if child == .anyValue {
                            anyDepth += 1
                            if anyDepth > limit { return false }
                        }
                        stack.append((child, end))
                    } else {
                        r.i = end
                    }
                default: return true
                }
            }
        }
    }

    struct Reader {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func varint() -> UInt64? {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while i < b.count, shift < 64 {
                let byte = b[i]
                i += 1
                v |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return v }
                shift += 7
            }
            return nil
        }
    }
}
