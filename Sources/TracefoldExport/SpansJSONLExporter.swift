import Foundation
import Logging
import OTLP
import TracefoldConfig
import TracefoldModel

/// The `spans_jsonl` debug exporter: one span per line in OTLP/JSON field
/// names (hex ids, int64 as strings), each line carrying its resource and
/// scope. Like otelcol's file exporter it is for looking at what arrived, but
/// one span per line rather than one batch.
///
/// A span key is written once (SPEC §1.11): the exporter remembers every key
/// it has written, and at start-up it reads its existing files back to learn
/// them, so a batch replayed from the intake log after a crash adds nothing
/// twice.
public final class SpansJSONLExporter: SpanSink, @unchecked Sendable {
    public let name = "spans_jsonl"
    public let directory: String
    public let filePath: String
    private let logger: Logger
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var written = Set<SpanKey>()
    private static let bufferLimit = 1 << 20

    public init(config: SpansJSONLExporterConfig, logger: Logger) throws {
        self.directory = config.directory
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for file in try Self.existingFiles(in: directory) {
            try Self.recover(file: file, into: &written, logger: logger)
        }
        filePath = try Self.newFilePath(in: directory)
        fd = open(filePath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ExportError("cannot create \(filePath): \(String(cString: strerror(errno)))") }
    }

    public func consume(_ batch: SpanBatch) throws -> [String] {
        var w = JSONWriter(reservingCapacity: 1024)
        batch.forEachSpan { span, resource, scope in
            guard written.insert(span.key).inserted else { return }
            OTLPJSONEncoder.spanLine(span, resource: resource, scope: scope, into: &w)
            w.writeRaw("\n")
        }
        buffer.append(contentsOf: w.bytes)
        if buffer.count >= Self.bufferLimit { try flush() }
        return []
    }

    public func sync() throws {
        try flush()
        guard fsync(fd) == 0 else { throw ExportError("fsync \(filePath): \(String(cString: strerror(errno)))") }
    }

    public func close() throws {
        try sync()
        Foundation.close(fd)
        fd = -1
    }

    /// Distinct spans written so far, including those found at start-up.
    public var spanCount: Int { written.count }

    /// Writes the buffered lines to the file (readable, not yet fsynced).
    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try ExportError.writeAll(fd, $0, path: filePath) }
        buffer.removeAll(keepingCapacity: true)
    }

    static func existingFiles(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("spans-") && $0.hasSuffix(".jsonl") }
            .sorted()
            .map { directory + "/" + $0 }
    }

    /// Learns the keys in a file and cuts off a torn last line (a crash in the
    /// middle of a write); the intake log replays that span.
    static func recover(file: String, into keys: inout Set<SpanKey>, logger: Logger) throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        var start = 0
        var complete = 0
        while let nl = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if let line = try? JSONParser.parse(data[start..<nl]),
                let t = line["traceId"]?.stringValue.flatMap(TraceID.init(hex:)),
                let s = line["spanId"]?.stringValue.flatMap(SpanID.init(hex:))
            {
                keys.insert(SpanKey(traceID: t, spanID: s))
            }
            start = nl + 1
            complete = start
        }
        if complete < data.count {
            logger.warning("spans_jsonl: removing a torn last line", metadata: ["file": "\(file)", "bytes": "\(data.count - complete)"])
            guard truncate(file, off_t(complete)) == 0 else { throw ExportError("cannot truncate \(file)") }
        }
    }

    static func newFilePath(in directory: String) throws -> String {
        let stamp = UTCStamp.now()
        var seq = 0
        while true {
            let path = "\(directory)/spans-\(stamp)-\(seq).jsonl"
            if !FileManager.default.fileExists(atPath: path) { return path }
            seq += 1
        }
    }
}

public struct ExportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// Writes all of `bytes` to `fd` (a write may take part of them, or be
    /// interrupted); a failure names `path` and the errno.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(ExportError) {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw ExportError("write \(path): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
}

/// `yyyyMMddTHHmmss` in UTC, for export file names (SPEC §6.1).
enum UTCStamp {
    static func now() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2)
    }
}
