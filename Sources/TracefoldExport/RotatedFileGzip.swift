import CLibdeflate
import Foundation

/// Gzips a rotated export file into another, 1 MiB at a time, with
/// libdeflate.
///
/// zlib at level 6 was a twentieth of the collector's CPU on the bench
/// load (a quarter of the exporter thread); libdeflate at the same level
/// takes about a third of zlib's time on these lines and writes a slightly
/// smaller file; its level 1, the exporter's default
/// (`JSONLExporterConfig.gzipLevel`), takes another 2.6 times less.
/// libdeflate compresses whole buffers, not streams, so each 1 MiB of the file is its own gzip member. A gzip file is a series of
/// members (RFC 1952 §2.2); gunzip, zcat, Python's `gzip` and the
/// collector's own inflater read them as one stream. A member restarts the
/// 32 KiB window, which costs a member's first few KiB a little of their
/// compression, and keeps memory at two 1 MiB buffers whatever the file's
/// size: compressing a rotated 100 MB file in memory once took three to
/// four times its size (found by the overload bench).
enum RotatedFileGzip {
    static let chunkBytes = 1 << 20

    static func compress(source: String, destination: String, level: Int32) throws(ExportError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw ExportError("cannot open \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw ExportError("cannot create \(destination): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        guard let compressor = libdeflate_alloc_compressor(level) else { throw ExportError("libdeflate: no compressor for level \(level)") }
        defer { libdeflate_free_compressor(compressor) }
        let bound = libdeflate_gzip_compress_bound(compressor, chunkBytes)
        let inBuf = UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 16)
        let outBuf = UnsafeMutableRawPointer.allocate(byteCount: bound, alignment: 16)
        defer {
            inBuf.deallocate()
            outBuf.deallocate()
        }
        var members = 0
        while true {
            // A whole chunk, unless the file ends first.
            var filled = 0
            while filled < chunkBytes {
                let n = read(input, inBuf + filled, chunkBytes - filled)
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw ExportError("cannot read \(source): \(String(cString: strerror(errno)))") }
                if n == 0 { break }
                filled += n
            }
            // An empty file still becomes one (empty) member: a file of no
            // members is not gzip.
            if filled == 0 && members > 0 { break }
            let size = libdeflate_gzip_compress(compressor, inBuf, filled, outBuf, bound)
            guard size > 0 else { throw ExportError("libdeflate: compressing \(source) failed") }
            try ExportError.writeAll(output, UnsafeRawBufferPointer(start: outBuf, count: size), path: destination)
            members += 1
            if filled < chunkBytes { break }
        }
        guard fsync(output) == 0 else { throw ExportError("cannot fsync \(destination): \(String(cString: strerror(errno)))") }
    }
}
