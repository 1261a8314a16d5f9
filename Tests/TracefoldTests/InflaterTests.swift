import Compression
import Foundation
@testable import TracefoldExport
import XCTest

final class InflaterTests: XCTestCase {
    let text = Array(String(repeating: "tracefold folds spans. ", count: 2000).utf8)

    private func inflate(_ compressed: [UInt8], _ coding: ContentCoding, limit: Int, chunk: Int = 1000) throws -> [UInt8] {
        let inflater = StreamingInflater(coding: coding, limit: limit)
        var i = 0
        while i < compressed.count {
            try inflater.feed(Array(compressed[i..<min(i + chunk, compressed.count)]))
            i += chunk
        }
        return try inflater.finish()
    }

    func testGzipDeflateAndRawDeflate() throws {
        XCTAssertEqual(try inflate(Gzip.compress(text), .gzip, limit: 1 << 20), text)
        XCTAssertEqual(try inflate(Gzip.deflate(text), .deflate, limit: 1 << 20), text)
        XCTAssertEqual(try inflate(Gzip.deflate(text, raw: true), .deflate, limit: 1 << 20), text)
    }

    /// Found by the gzip fuzzer: a raw deflate body whose first chunk held a
    /// single byte was taken for zlib, because the second header byte was
    /// not there yet.
    func testChunkBoundariesDoNotChangeTheResult() throws {
        for body in [Gzip.deflate(text, raw: true), Gzip.deflate(text), Gzip.compress(text)] {
            let coding: ContentCoding = body.first == 0x1f ? .gzip : .deflate
            XCTAssertEqual(try inflate(body, coding, limit: 1 << 20, chunk: 1), text)
            XCTAssertEqual(try inflate(body, coding, limit: 1 << 20, chunk: 2), text)
        }
        let crash: [UInt8] = [0x28, 0x00, 0x00, 0xff, 0xff, 0x03, 0x9c]
        let whole = Result { try inflate(crash, .deflate, limit: 1 << 16, chunk: crash.count) }.map { $0 }
        let single = Result { try inflate(crash, .deflate, limit: 1 << 16, chunk: 1) }.map { $0 }
        XCTAssertEqual(try? whole.get(), try? single.get())
        XCTAssertThrowsError(try inflate([0x78], .deflate, limit: 100), "one byte of deflate is truncated")
    }

    /// The exporter's rotated files: 1 MiB gzip members (libdeflate), read
    /// back as one stream. A file of exactly one chunk, one byte past it,
    /// three and a bit chunks, and an empty file (one empty member).
    func testRotatedFilesGzipInMembersThatReadBackAsTheFile() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var big = [UInt8]()
        var x: UInt32 = 1
        for i in 0..<(3 << 20 + 12345) {
            x = x &* 1_103_515_245 &+ 12345
            big.append(i % 3 == 0 ? UInt8(truncatingIfNeeded: x >> 16) : text[i % text.count])
        }
        let chunk = RotatedFileGzip.chunkBytes
        // The exporter's levels: its default, 1, and the highest, 12.
        var sizes: [Int32: Int] = [:]
        for level: Int32 in [1, 12] {
            for (name, bytes, members) in [("chunk", Array(big[..<chunk]), 1), ("past", Array(big[..<(chunk + 1)]), 2), ("big", big, 4), ("empty", [], 1)] {
                try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
                try RotatedFileGzip.compress(source: "\(dir)/\(name)", destination: "\(dir)/\(name).gz", level: level)
                let compressed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).gz")))
                XCTAssertEqual(try inflate(compressed, .gzip, limit: max(bytes.count, 1)), bytes, "\(name) at \(level)")
                // Each member starts with gzip's magic, method and flags.
                XCTAssertEqual(compressed.indices.filter { compressed[$0...].starts(with: [0x1F, 0x8B, 8, 0]) }.count, members, name)
                if !bytes.isEmpty { XCTAssertLessThan(compressed.count, bytes.count, name) }
                if name == "big" { sizes[level] = compressed.count }
            }
        }
        // The level is the one asked for: 12 searches harder than 1.
        XCTAssertLessThan(sizes[12]!, sizes[1]!)
        XCTAssertThrowsError(try RotatedFileGzip.compress(source: dir + "/missing", destination: dir + "/x.gz", level: 1))
    }

    func testConcatenatedGzipMembers() throws {
        XCTAssertEqual(try inflate(Gzip.compress(text) + Gzip.compress(text), .gzip, limit: 1 << 20), text + text)
    }

    func testLimitIsExactAfterDecompression() throws {
        XCTAssertEqual(try inflate(Gzip.compress(text), .gzip, limit: text.count), text)
        XCTAssertThrowsError(try inflate(Gzip.compress(text), .gzip, limit: text.count - 1)) {
            XCTAssertEqual($0 as? InflateError, .limitExceeded(limit: text.count - 1))
        }
        XCTAssertEqual(try inflate(text, .identity, limit: text.count), text)
        XCTAssertThrowsError(try inflate(text, .identity, limit: text.count - 1))
    }

    func testBombStopsAtTheLimitWithoutHoldingTheWhole() throws {
        // 100 MiB of zeros compress to about 100 KB.
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 100 << 20), level: 9)
        XCTAssertLessThan(bomb.count, 200_000)
        let inflater = StreamingInflater(coding: .gzip, limit: 1 << 20)
        var threw = false
        do {
            try inflater.feed(bomb)
        } catch InflateError.limitExceeded {
            threw = true
        }
        XCTAssertTrue(threw)
        XCTAssertLessThanOrEqual(inflater.output.count, 1 << 20, "never more than the limit is held")
    }

    func testCorruptAndTruncatedBodies() {
        let gz = Gzip.compress(text)
        XCTAssertThrowsError(try inflate(Array(gz.prefix(gz.count / 2)), .gzip, limit: 1 << 20)) {
            guard case .corrupt = $0 as? InflateError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try inflate([0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF], .gzip, limit: 1 << 20))
        XCTAssertThrowsError(try inflate(Array("not gzip at all".utf8), .gzip, limit: 1 << 20))
    }

    func testContentEncodingHeader() {
        XCTAssertEqual(ContentCoding(header: nil), .identity)
        XCTAssertEqual(ContentCoding(header: "GZIP"), .gzip)
        XCTAssertEqual(ContentCoding(header: "deflate"), .deflate)
        XCTAssertEqual(ContentCoding(header: "identity"), .identity)
        XCTAssertNil(ContentCoding(header: "br"))
        XCTAssertNil(ContentCoding(header: "zstd"))
    }
}
