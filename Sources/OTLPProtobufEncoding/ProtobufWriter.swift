/// A minimal protobuf wire-format writer. tracefold encodes only small
/// messages (responses, Status bodies) and export requests (TracefoldTracing's
/// exporter, the load generator, the store's one-span messages, the tests);
/// the collector decodes with `OTLPProtobufDecoder`.
public struct ProtobufWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// A writer whose buffer starts with room for `capacity` bytes: a
    /// message whose size is known up front is then one allocation, not
    /// one for each time the buffer doubles.
    public init(reservingCapacity capacity: Int) { bytes.reserveCapacity(capacity) }

    private enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    private mutating func tag(_ field: Int, _ type: WireType) {
        writeVarint(UInt64(field) << 3 | type.rawValue)
    }

    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Appends bytes that are already wire format (a field or fields).
    public mutating func writeRaw(_ raw: some Collection<UInt8>) {
        bytes.append(contentsOf: raw)
    }

    public mutating func varint(_ field: Int, _ value: UInt64) {
        tag(field, .varint)
        writeVarint(value)
    }

    /// int32/int64 fields: negative values are ten-byte two's-complement varints.
    public mutating func int64(_ field: Int, _ value: Int64) {
        varint(field, UInt64(bitPattern: value))
    }

    public mutating func bool(_ field: Int, _ value: Bool) { varint(field, value ? 1 : 0) }

    public mutating func fixed64(_ field: Int, _ value: UInt64) {
        tag(field, .fixed64)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    public mutating func fixed32(_ field: Int, _ value: UInt32) {
        tag(field, .fixed32)
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
    }

    public mutating func double(_ field: Int, _ value: Double) { fixed64(field, value.bitPattern) }

    public mutating func bytes(_ field: Int, _ value: some Collection<UInt8>) {
        tag(field, .lengthDelimited)
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func string(_ field: Int, _ value: String) {
        var value = value
        value.withUTF8 { bytes(field, $0) }
    }

    /// A nested message, built by `body` in place and length-prefixed. The
    /// length is known only afterwards: one byte is kept for it, which is
    /// enough below 128 bytes, and a longer message is moved up to make room.
    /// Building each message in a writer of its own cost two allocations
    /// per attribute.
    public mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        tag(field, .lengthDelimited)
        let lengthAt = bytes.count
        bytes.append(0)
        body(&self)
        let length = bytes.count - lengthAt - 1
        if length < 0x80 {
            bytes[lengthAt] = UInt8(length)
            return
        }
        // A longer length takes more than the one byte kept for it: the
        // body moves up by the difference and the varint is written in
        // place (a separate buffer for it was an allocation per message).
        var size = 1
        while length >> (7 * size) != 0 { size += 1 }
        bytes.insert(contentsOf: repeatElement(0, count: size - 1), at: lengthAt + 1)
        var rest = UInt64(length)
        for i in 0..<size {
            bytes[lengthAt + i] = UInt8(truncatingIfNeeded: rest & 0x7F) | (i < size - 1 ? 0x80 : 0)
            rest >>= 7
        }
    }
}
