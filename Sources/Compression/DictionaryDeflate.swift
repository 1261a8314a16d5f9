internal import CZlib

/// Raw deflate (RFC 1951) of short rows against a preset dictionary, as
/// zlib's `deflateSetDictionary` allows: a stored span or observation is a
/// few hundred bytes, too short to compress on its own, but most of it
/// repeats the rows stored just before it (the same attribute keys, the
/// same resource, the same prompts). Priming the window with such rows lets
/// each row refer back to them.
///
/// The window is 4 KiB (`windowBits` 12): a longer dictionary would not be
/// reachable, and priming a 32 KiB window costs eight times the hashing on
/// every row.
public final class DictionaryDeflater {
    /// The most of a dictionary that a row can refer to.
    public static let windowSize = 1 << 12
    private let stream: UnsafeMutablePointer<z_stream>

    /// Level 1: on rows this short it compresses within a few per cent of
    /// level 6 (measured on the bench load), at about two-thirds the time.
    public init(level: Int32 = 1) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = deflateInit2_(stream, level, Z_DEFLATED, -12, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Appends `input`, deflated against `dictionary` (its last
    /// `windowSize` bytes), to `output`. One deflater is not for two
    /// threads at once.
    public func deflate(_ input: UnsafeRawBufferPointer, dictionary: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        precondition(deflateReset(stream) == Z_OK, "deflateReset failed")
        if let base = dictionary.baseAddress, !dictionary.isEmpty {
            precondition(deflateSetDictionary(stream, base.assumingMemoryBound(to: UInt8.self), UInt32(dictionary.count)) == Z_OK, "deflateSetDictionary failed")
        }
        let bound = Int(deflateBound(stream, UInt(input.count))) + 16
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: bound))
        let written: Int = output.withUnsafeMutableBufferPointer { out in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = UInt32(input.count)
            stream.pointee.next_out = out.baseAddress! + start
            stream.pointee.avail_out = UInt32(bound)
            let r = CZlib.deflate(stream, Z_FINISH)
            precondition(r == Z_STREAM_END, "deflate failed: \(r)")
            return bound - Int(stream.pointee.avail_out)
        }
        output.removeLast(bound - written)
    }
}

public enum DictionaryInflate {
    /// Inflates a raw deflate stream made by `DictionaryDeflater` against
    /// the same dictionary. `length` is the inflated size the row recorded:
    /// anything else (a wrong dictionary, a cut or corrupt row) throws.
    public static func inflate(_ input: UnsafeRawBufferPointer, dictionary: UnsafeRawBufferPointer, length: Int) throws(InflateError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -12, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw .corrupt("inflateInit2 failed") }
        defer { inflateEnd(&stream) }
        if let base = dictionary.baseAddress, !dictionary.isEmpty {
            // A raw stream takes its dictionary before the first inflate.
            guard inflateSetDictionary(&stream, base.assumingMemoryBound(to: UInt8.self), UInt32(dictionary.count)) == Z_OK else {
                throw .corrupt("inflateSetDictionary failed")
            }
        }
        // One byte of room past `length`, so that a longer stream shows.
        var output = [UInt8](repeating: 0, count: length + 1)
        let (rc, produced): (Int32, Int) = output.withUnsafeMutableBufferPointer { out in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
            stream.avail_in = UInt32(input.count)
            stream.next_out = out.baseAddress
            stream.avail_out = UInt32(out.count)
            let rc = CZlib.inflate(&stream, Z_FINISH)
            return (rc, out.count - Int(stream.avail_out))
        }
        guard rc == Z_STREAM_END, produced == length, stream.avail_in == 0 else {
            throw .corrupt("a dictionary-deflated row does not inflate to its \(length) bytes (zlib \(rc), \(produced) bytes)")
        }
        output.removeLast()
        return output
    }
}
