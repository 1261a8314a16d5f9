import Compression
import Foundation
import Logging
import NIOConcurrencyHelpers
import OTLP
import TracefoldModel

/// The commit point (SPEC §1.10). A request's body is appended to a segment
/// file exactly as it arrived (still gzip- or deflate-compressed, so the log
/// writes the fewest bytes) and fsynced before the request gets its 200.
///
/// Appends from concurrent requests are group-committed: one writer thread
/// takes everything queued, writes it with one `write` and one `fsync`, then
/// hands each batch to the pipeline in log order and wakes the requests.
/// After a crash the records past the pipeline's checkpoint are decoded again
/// and replayed.
public final class IntakeLog: @unchecked Sendable {
    public struct Record: Sendable {
        public var lsn: UInt64
        public var receivedAtUnixNano: UInt64
        public var encoding: OTLPEncoding
        public var coding: ContentCoding
        /// The request's metadata and credentials (SPEC §5), when it had any.
        public var context: RequestMetadata?
        public var body: [UInt8]
    }

    public struct WriteError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    private struct Pending {
        var receivedAtUnixNano: UInt64
        var encoding: OTLPEncoding
        var coding: ContentCoding
        var context: RequestMetadata?
        var body: [UInt8]
        var batch: SpanBatch
        var continuation: CheckedContinuation<UInt64, any Error>
        var onConsumed: (@Sendable ([String]) -> Void)?
    }

    private struct State {
        var pending: [Pending] = []
        var closed = false
    }

    public let directory: String
    private let segmentSize: Int
    private let logger: Logger
    private let condition = NSCondition()
    private var state = State()  // guarded by condition
    public typealias Handoff = @Sendable (SpanBatch, UInt64, (@Sendable ([String]) -> Void)?) -> Void
    private var handoff: Handoff?
    private let runner = ThreadRunner(name: "tracefold-intake-log")

    // Owned by the writer thread after start().
    private var fd: Int32 = -1
    private var segmentBytes = 0
    private var nextLSN: UInt64 = 1
    /// First LSN of each segment file, ascending.
    private var segments: [(firstLSN: UInt64, path: String)] = []
    private let segmentsLock = NIOLock()

    private static let magic: UInt32 = 0x5446_4C31  // "TFL1"
    private static let headerSize = 4 + 4 + 4 + 8 + 8 + 1 + 1  // magic, length, crc, lsn, time, encoding, coding

    /// Opens the log, truncating a torn record left by a crash.
    public init(directory: String, segmentSize: Int, logger: Logger) throws {
        self.directory = directory
        self.segmentSize = segmentSize
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("intake-") && $0.hasSuffix(".log") }
            .compactMap { name -> (UInt64, String)? in
                guard let lsn = UInt64(name.dropFirst(7).dropLast(4)) else { return nil }
                return (lsn, directory + "/" + name)
            }
            .sorted { $0.0 < $1.0 }
        segments = names.map { (firstLSN: $0.0, path: $0.1) }
        if let last = segments.last {
            let (lastLSN, validLength, fileLength) = try Self.scan(path: last.path)
            if validLength < fileLength {
                logger.warning(
                    "intake log: truncating a torn record at the end of the last segment",
                    metadata: ["segment": "\(last.path)", "validBytes": "\(validLength)", "fileBytes": "\(fileLength)"]
                )
                guard Foundation.truncate(last.path, off_t(validLength)) == 0 else {
                    throw WriteError(description: "cannot truncate \(last.path): \(String(cString: strerror(errno)))")
                }
            }
            nextLSN = max(lastLSN.map { $0 + 1 } ?? last.firstLSN, last.firstLSN)
        }
    }

    /// The highest LSN in the log, or 0.
    public var lastLSN: UInt64 { nextLSN - 1 }

    /// Starts the writer thread. `handoff` receives each batch once it is
    /// durable, in LSN order.
    public func start(handoff: @escaping Handoff) throws {
        self.handoff = handoff
        try openSegment(firstLSN: nextLSN, reuseLast: true)
        runner.start { [self] in writerLoop() }
    }

    /// Appends a request and returns once it is on disk. Throws if it could
    /// not be written; the caller answers 503 and the client retries.
    /// `meanwhile` runs on the calling thread once the request is queued
    /// for the writer, while it is written and synced.
    public func append(
        body: [UInt8], encoding: OTLPEncoding, coding: ContentCoding, receivedAtUnixNano: UInt64, context: RequestMetadata? = nil, batch: SpanBatch,
        onConsumed: (@Sendable ([String]) -> Void)? = nil, meanwhile: () -> Void = {}
    ) async throws -> UInt64 {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            if state.closed {
                condition.unlock()
                continuation.resume(throwing: WriteError(description: "intake log is closed"))
                return
            }
            state.pending.append(
                Pending(
                    receivedAtUnixNano: receivedAtUnixNano, encoding: encoding, coding: coding, context: context, body: body, batch: batch,
                    continuation: continuation, onConsumed: onConsumed
                )
            )
            condition.signal()
            condition.unlock()
            meanwhile()
        }
    }

    /// Stops accepting appends, writes what is queued, and stops the thread.
    public func close() {
        condition.lock()
        state.closed = true
        condition.broadcast()
        condition.unlock()
        runner.join()
        if fd >= 0 {
            Foundation.close(fd)
            fd = -1
        }
    }

    private func writerLoop() {
        while true {
            condition.lock()
            while state.pending.isEmpty && !state.closed { condition.wait() }
            let group = state.pending
            state.pending.removeAll(keepingCapacity: true)
            let done = state.closed && group.isEmpty
            condition.unlock()
            if done { return }
            commit(group)
        }
    }

    private func commit(_ group: [Pending]) {
        var frames = [UInt8]()
        frames.reserveCapacity(group.reduce(0) { $0 + $1.body.count + Self.headerSize })
        var lsns = [UInt64]()
        var lsn = nextLSN
        for p in group {
            Self.appendFrame(&frames, lsn: lsn, time: p.receivedAtUnixNano, encoding: p.encoding, coding: p.coding, context: p.context, body: p.body)
            lsns.append(lsn)
            lsn += 1
        }
        do {
            if segmentBytes >= segmentSize { try openSegment(firstLSN: nextLSN, reuseLast: false) }
            try writeAll(frames)
            guard fsync(fd) == 0 else { throw WriteError(description: "fsync failed: \(String(cString: strerror(errno)))") }
            segmentBytes += frames.count
            nextLSN = lsn
        } catch {
            // Nothing of this group is acknowledged; cut the segment back so a
            // half-written frame cannot be mistaken for data.
            _ = ftruncate(fd, off_t(segmentBytes))
            _ = lseek(fd, off_t(segmentBytes), SEEK_SET)
            logger.error("intake log write failed", metadata: ["error": "\(error)"])
            for p in group { p.continuation.resume(throwing: error) }
            return
        }
        for (p, lsn) in zip(group, lsns) {
            handoff?(p.batch, lsn, p.onConsumed)
            p.continuation.resume(returning: lsn)
        }
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw WriteError(description: "write failed: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }

    private func openSegment(firstLSN: UInt64, reuseLast: Bool) throws {
        if reuseLast, let last = segmentsLock.withLock({ segments.last }) {
            fd = open(last.path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw WriteError(description: "cannot open \(last.path): \(String(cString: strerror(errno)))") }
            segmentBytes = Int(lseek(fd, 0, SEEK_END))
            return
        }
        if fd >= 0 { Foundation.close(fd) }
        let path = directory + "/" + Self.segmentName(firstLSN)
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        segmentBytes = 0
        try Self.fsyncDirectory(directory)
        segmentsLock.withLock { segments.append((firstLSN: firstLSN, path: path)) }
    }

    static func segmentName(_ lsn: UInt64) -> String {
        let digits = String(lsn)
        return "intake-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    static func fsyncDirectory(_ path: String) throws {
        let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw WriteError(description: "cannot open directory \(path)") }
        defer { Foundation.close(dfd) }
        _ = fsync(dfd)
    }

    /// Deletes segments whose records are all at or below `lsn`. The active
    /// segment stays.
    public func discard(through lsn: UInt64) {
        let doomed: [String] = segmentsLock.withLock {
            var doomed = [String]()
            while segments.count > 1, segments[1].firstLSN <= lsn + 1 {
                doomed.append(segments.removeFirst().path)
            }
            return doomed
        }
        for path in doomed { unlink(path) }
    }

    // MARK: Frames

    /// Set in the encoding byte when a request context follows the fixed
    /// header as a 4-byte length and its JSON; older frames have none.
    private static let contextFlag: UInt8 = 0x80

    private static func appendFrame(
        _ out: inout [UInt8], lsn: UInt64, time: UInt64, encoding: OTLPEncoding, coding: ContentCoding, context: RequestMetadata?, body: [UInt8]
    ) {
        let contextBytes = context.map { Array($0.encoded.utf8) }
        var payload = [UInt8]()
        payload.reserveCapacity(22 + (contextBytes?.count ?? 0) + body.count)
        put64(&payload, lsn)
        put64(&payload, time)
        payload.append((encoding == .protobuf ? 0 : 1) | (contextBytes == nil ? 0 : contextFlag))
        payload.append(coding == .identity ? 0 : coding == .gzip ? 1 : 2)
        if let contextBytes {
            put32(&payload, UInt32(contextBytes.count))
            payload.append(contentsOf: contextBytes)
        }
        payload.append(contentsOf: body)
        put32(&out, magic)
        put32(&out, UInt32(payload.count))
        put32(&out, CRC32.checksum(payload))
        out.append(contentsOf: payload)
    }

    private static func put32(_ out: inout [UInt8], _ v: UInt32) {
        for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }

    private static func put64(_ out: inout [UInt8], _ v: UInt64) {
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    private static func get32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
    }

    private static func get64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }

    /// Walks a segment's frames. Returns the last good LSN, the length of the
    /// good prefix and the file's length.
    static func scan(path: String, visit: ((Record) throws -> Void)? = nil) throws -> (UInt64?, Int, Int) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try data.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> (UInt64?, Int, Int) in
            var offset = 0
            var lastLSN: UInt64?
            while offset + 12 <= b.count {
                guard get32(b, offset) == magic else { break }
                let length = Int(get32(b, offset + 4))
                let crc = get32(b, offset + 8)
                guard length >= 18, offset + 12 + length <= b.count else { break }
                let payload = UnsafeRawBufferPointer(rebasing: b[(offset + 12)..<(offset + 12 + length)])
                guard CRC32.checksum(payload) == crc else { break }
                let lsn = get64(payload, 0)
                if let visit {
                    var bodyStart = 18
                    var context: RequestMetadata?
                    if payload[16] & contextFlag != 0, length >= 22 {
                        let n = Int(get32(payload, 18))
                        guard 22 + n <= length else { break }
                        context = RequestMetadata(encoded: String(decoding: payload[22..<(22 + n)], as: UTF8.self))
                        bodyStart = 22 + n
                    }
                    let record = Record(
                        lsn: lsn, receivedAtUnixNano: get64(payload, 8),
                        encoding: payload[16] & ~contextFlag == 0 ? .protobuf : .json,
                        coding: payload[17] == 0 ? .identity : payload[17] == 1 ? .gzip : .deflate,
                        context: context,
                        body: Array(payload[bodyStart...])
                    )
                    try visit(record)
                }
                lastLSN = lsn
                offset += 12 + length
            }
            return (lastLSN, offset, b.count)
        }
    }

    /// Every record with an LSN above `lsn`, oldest first, one at a time.
    public func replay(after lsn: UInt64, _ visit: (Record) throws -> Void) throws {
        try withoutActuallyEscaping(visit) { visit in try replayEscaping(after: lsn, visit) }
    }

    private func replayEscaping(after lsn: UInt64, _ visit: @escaping (Record) throws -> Void) throws {
        let list = segmentsLock.withLock { segments }
        for (i, segment) in list.enumerated() {
            if i + 1 < list.count, list[i + 1].firstLSN <= lsn + 1 { continue }
            _ = try Self.scan(path: segment.path) { record in
                if record.lsn > lsn { try visit(record) }
            }
        }
    }
}
