internal import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum ContentCoding: Sendable, Hashable {
    case identity, gzip, deflate

    /// Reads a Content-Encoding header. Nil means unsupported (400).
    public init?(header: String?) {
        let value = (header ?? "").lowercased().filter { $0 != " " && $0 != "\t" }
        switch value {
        case "", "identity": self = .identity
        case "gzip", "x-gzip": self = .gzip
        case "deflate": self = .deflate
        default: return nil
        }
    }
}

public enum InflateError: Error, Sendable, Equatable {
    /// The inflated body would exceed the limit. Nothing past the limit was
    /// kept.
    case limitExceeded(limit: Int)
    case corrupt(String)
}

/// Inflates a gzip or deflate body chunk by chunk and stops as soon as the
/// output would pass `limit` (SPEC §1.4), so a small compressed "bomb" is
/// refused without ever being held whole in memory.
public final class StreamingInflater {
    public let limit: Int
    private let coding: ContentCoding
    private let stream: UnsafeMutablePointer<z_stream>
    private var initialised = false
    private var finished = false
    private var pendingFirstByte: UInt8?
    private let chunk: UnsafeMutablePointer<UInt8>
    private static let chunkSize = 64 * 1024

    public private(set) var output: [UInt8] = []

    public init(coding: ContentCoding, limit: Int) {
        self.coding = coding
        self.limit = limit
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        self.chunk = .allocate(capacity: Self.chunkSize)
    }

    deinit {
        if initialised { inflateEnd(stream) }
        stream.deallocate()
        chunk.deallocate()
    }

    /// Feeds the next piece of the compressed body.
    public func feed(_ input: UnsafeRawBufferPointer) throws(InflateError) {
        guard !input.isEmpty else { return }
        if coding == .identity {
            guard output.count + input.count <= limit else { throw .limitExceeded(limit: limit) }
            output.append(contentsOf: input)
            return
        }
        if !initialised {
            // Raw deflate and zlib are told apart by the first two bytes,
            // which may arrive in separate chunks: hold a lone first byte
            // back rather than guess (found by the gzip fuzzer).
            if let first = pendingFirstByte {
                pendingFirstByte = nil
                try start(firstByte: first, secondByte: input[0])
                try feed([first])
            } else if coding == .deflate && input.count == 1 {
                pendingFirstByte = input[0]
                return
            } else {
                try start(firstByte: input[0], secondByte: input.count > 1 ? input[1] : nil)
            }
        }
        var offset = 0
        while offset < input.count {
            if finished {
                // gzip allows concatenated members; deflate has one stream, so
                // bytes after its end are trailing garbage.
                guard coding == .gzip else { throw .corrupt("data after the end of the deflate stream") }
                inflateReset(stream)
                finished = false
            }
            let remaining = input.count - offset
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = UInt32(min(remaining, Int(UInt32.max)))
            let given = Int(stream.pointee.avail_in)
            repeat {
                stream.pointee.next_out = chunk
                stream.pointee.avail_out = UInt32(Self.chunkSize)
                let rc = inflate(stream, Z_NO_FLUSH)
                let produced = Self.chunkSize - Int(stream.pointee.avail_out)
                if produced > 0 {
                    guard output.count + produced <= limit else { throw .limitExceeded(limit: limit) }
                    output.append(contentsOf: UnsafeBufferPointer(start: chunk, count: produced))
                }
                switch rc {
                case Z_OK, Z_BUF_ERROR:
                    break
                case Z_STREAM_END:
                    finished = true
                default:
                    let reason = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                    throw .corrupt(reason)
                }
                if finished { break }
            } while stream.pointee.avail_out == 0
            offset += given - Int(stream.pointee.avail_in)
            if !finished && stream.pointee.avail_in > 0 && stream.pointee.avail_out != 0 {
                // zlib made no progress on input it was given: it will not.
                throw .corrupt("inflate stalled")
            }
        }
    }

    public func feed(_ bytes: [UInt8]) throws(InflateError) {
        let result: Result<Void, InflateError> = bytes.withUnsafeBytes { buf in
            Result { () throws(InflateError) in try feed(buf) }
        }
        try result.get()
    }

    /// Checks that the compressed stream ended, and returns the body.
    public func finish() throws(InflateError) -> [UInt8] {
        if coding != .identity, initialised && !finished || pendingFirstByte != nil {
            throw .corrupt("truncated \(coding == .gzip ? "gzip" : "deflate") body")
        }
        return output
    }

    private func start(firstByte: UInt8, secondByte: UInt8?) throws(InflateError) {
        // HTTP "deflate" is meant to be zlib-wrapped (RFC 9110), but some
        // clients send a raw deflate stream; the zlib header tells them apart.
        var windowBits: Int32 = 15 + 16
        if coding == .deflate {
            // A one-byte deflate body has no second byte; it is truncated either way.
            let looksZlib = (firstByte & 0x0F) == 8 && secondByte.map { (UInt16(firstByte) << 8 | UInt16($0)) % 31 == 0 } ?? true
            windowBits = looksZlib ? 15 : -15
        }
        let rc = inflateInit2_(stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw .corrupt("zlib init failed: \(rc)") }
        initialised = true
    }
}

public enum Gzip {
    /// One-shot gzip compression (the load generator and tests use it).
    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        compress(input, level: level, windowBits: 15 + 16)
    }

    /// One-shot zlib-wrapped deflate, as HTTP `Content-Encoding: deflate` means.
    public static func deflate(_ input: [UInt8], raw: Bool = false) -> [UInt8] {
        compress(input, level: 6, windowBits: raw ? -15 : 15)
    }

    private static func compress(_ input: [UInt8], level: Int32, windowBits: Int32) -> [UInt8] {
        var stream = z_stream()
        let rc = deflateInit2_(&stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var input = input
        let written: Int = input.withUnsafeMutableBufferPointer { inBuf in
            out.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                let r = CZlib.deflate(&stream, Z_FINISH)
                precondition(r == Z_STREAM_END, "deflate failed: \(r)")
                return outBuf.count - Int(stream.avail_out)
            }
        }
        out.removeSubrange(written...)
        return out
    }
}

public enum CRC32 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return 0 }
        return UInt32(crc32(0, base.assumingMemoryBound(to: UInt8.self), UInt32(bytes.count)))
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
