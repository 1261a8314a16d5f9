import Compression
import Foundation
import Logging
import TracefoldTelemetry
import TracefoldConfig
import TracefoldModel
import TracefoldStore

/// The record exporter (SPEC §6.1–6.3). It reads changed records from the
/// store, so what it writes survives a crash: a revision is marked exported
/// only after its line has been written, and anything unmarked is written on
/// the next pass or after a restart.
///
/// Every `flush_interval` it writes the traces that have been idle for
/// `flush_after`, each as its trace line plus a line per changed observation:
/// `{"recordType":…,"revision":N,…record}`. A reader that keeps the highest
/// revision per `(recordType, id)` sees what the query API returns.
public final class JSONLRecordExporter: @unchecked Sendable {
    let config: JSONLExporterConfig
    let store: any RecordStore
    /// Names this exporter's position in the store (SPEC §6.2); processes
    /// sharing a PostgreSQL store each export into their own directory.
    let exporterKey: String
    let logger: Logger
    let metrics: CollectorMetrics?
    private let condition = NSCondition()
    private let failingLock = NSLock()
    private var failing = false
    private var stopping = false
    private let runner = ThreadRunner(name: "tracefold-jsonl-export", background: true)

    // Owned by the export thread (and by shutdown after it stopped).
    private var fd: Int32 = -1
    private var activePath = ""
    private var activeBytes = 0
    private var openedAt = ContinuousClock.now
    /// The lines of a pass on their way to the file, written out whenever
    /// they pass `chunkBytes`. Kept between passes: a pass's lines built
    /// whole (megabytes) cost a fresh mapping of zeroed pages every time.
    private var buffer = JSONWriter(reservingCapacity: JSONLRecordExporter.chunkBytes + 64 * 1024)
    static let chunkBytes = 1 << 20

    public init(config: JSONLExporterConfig, store: any RecordStore, logger: Logger, metrics: CollectorMetrics? = nil) throws {
        self.metrics = metrics
        self.config = config
        self.store = store
        var key = config.directory
        while key.count > 1 && key.hasSuffix("/") { key.removeLast() }
        exporterKey = key
        self.logger = logger
        try FileManager.default.createDirectory(atPath: config.directory, withIntermediateDirectories: true)
        try repairTornTail()
        // A trace waits `flush_after` and up to a pass: what the cache has
        // held for several times that, the exporter is not coming for soon.
        if let cache = store.exportCache {
            cache.staleAfter = max(.seconds(30), (config.flushAfter + config.flushInterval) * 4)
            // Whether the records came from memory or were read back (and
            // expanded) from the store: what the cache's budget saves.
            let help = "Traces the exporter took, from the export cache or read back from the store."
            let name = "tracefold_exporter_traces_total"
            metrics?.sampledCounter(name: name, labels: [("exporter", "jsonl"), ("from", "cache")], help: help) { cache.counts.served }
            metrics?.sampledCounter(name: name, labels: [("exporter", "jsonl"), ("from", "store")], help: help) { cache.counts.missed }
            metrics?.sampledGauge(name: "tracefold_exporter_cache_bytes", help: "Record bytes the export cache holds for the exporter.") { cache.counts.bytes }
        }
    }

    public func start() {
        runner.start { [self] in run() }
    }

    /// Writes everything pending whatever its age, fsyncs and closes.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        runner.join()
        do {
            try pass(all: true)
            try closeActive(rotate: false)
        } catch {
            logger.error("jsonl: final export failed; records stay in the store and are written on the next start", metadata: ["error": "\(error)"])
        }
    }

    /// Writes every pending record now, idle or not.
    public func flushAll() throws {
        condition.lock()
        defer { condition.unlock() }
        try pass(all: true)
    }

    /// Runs one ordinary pass: only traces idle for `flush_after`.
    public func flushAllIdle() throws {
        condition.lock()
        defer { condition.unlock() }
        try pass(all: false)
    }

    private func run() {
        while true {
            condition.lock()
            if stopping {
                condition.unlock()
                return
            }
            _ = condition.wait(until: Date(timeIntervalSinceNow: config.flushInterval.inSeconds))
            if stopping {
                condition.unlock()
                return
            }
            do {
                try pass(all: false)
                if isFailing {
                    logger.notice("jsonl export works again")
                    setFailing(false)
                }
            } catch {
                logger.error("jsonl export pass failed; retrying", metadata: ["error": "\(error)"])
                setFailing(true)
            }
            condition.unlock()
        }
    }

    /// True while export passes fail (the directory is unwritable or the disk
    /// is full): intake refuses new data and `/health/ready` fails until a
    /// pass succeeds again.
    public var isFailing: Bool { failingLock.withLock { failing } }

    private func setFailing(_ value: Bool) { failingLock.withLock { failing = value } }

    /// One pass: write idle traces (or all), then rotate if due.
    private func pass(all: Bool) throws {
        let idleSince = all ? nil : WallClock.nowUnixNano() &- UInt64(config.flushAfter.inSeconds * 1e9)
        while true {
            var lines = 0, bytes = 0
            let count = try store.exportPass(exporter: exporterKey, idleSince: idleSince, limit: 500) { pending in
                if fd < 0 { try openActive() }
                let start = activeBytes
                buffer.removeAll()
                do {
                    for p in pending.traces {
                        try Self.line(p.trace, into: &buffer)
                        for o in p.observations { try Self.line(o.record, into: &buffer) }
                        if buffer.bytes.count >= Self.chunkBytes {
                            try write(buffer.bytes)
                            buffer.removeAll()
                        }
                    }
                    for r in pending.records { try Self.line(r, into: &buffer) }
                    try write(buffer.bytes)
                    buffer.removeAll()
                    // The lines must be on disk before the marks that cover them.
                    guard fsync(fd) == 0 else { throw ExportError("fsync \(activePath): \(String(cString: strerror(errno)))") }
                } catch {
                    // Not marked, so written again: cut what did reach the file.
                    if fd >= 0, ftruncate(fd, off_t(start)) == 0 { activeBytes = start }
                    throw error
                }
                lines = pending.traces.reduce(pending.records.count) { $0 + 1 + $1.observations.count }
                bytes = activeBytes - start
                return (activePath, activeBytes)
            }
            metrics?.exportedRecords.increment(by: Int64(lines))
            metrics?.exportedBytes.increment(by: Int64(bytes))
            if count < 500 { break }
        }
        if fd >= 0, activeBytes >= config.maxMegabytes << 20 || ContinuousClock.now - openedAt >= config.maxAge {
            try closeActive(rotate: true)
        }
    }

    /// `{"recordType":…,"revision":…,` then the record's own fields,
    /// rendered from the stored record straight into `w`; for a deleted
    /// record, its tombstone `{"recordType":…,"id":…,"revision":N,"deleted":true}`.
    public static func line(_ r: PendingRecord, into w: inout JSONWriter) throws {
        w.writeRaw("{\"recordType\":")
        w.writeString(r.recordType)
        if r.deleted {
            w.writeRaw(",\"id\":")
            w.writeString(r.id)
            w.writeRaw(",\"revision\":")
            w.writeInt(r.revision)
            w.writeRaw(",\"deleted\":true}\n")
            return
        }
        w.writeRaw(",\"revision\":")
        w.writeInt(r.revision)
        try r.stored.write(into: &w, continuing: true)
        w.writeRaw("\n")
    }

    private func write(_ bytes: [UInt8]) throws {
        if fd < 0 { try openActive() }
        try bytes.withUnsafeBytes { try ExportError.writeAll(fd, $0, path: activePath) }
        activeBytes += bytes.count
    }

    private func openActive() throws {
        var seq = 0
        let stamp = UTCStamp.now()
        repeat {
            activePath = "\(config.directory)/tracefold-\(stamp)-\(seq).jsonl"
            seq += 1
        } while FileManager.default.fileExists(atPath: activePath) || FileManager.default.fileExists(atPath: activePath + ".gz")
        try store.startExportFile(exporter: exporterKey, file: activePath)
        fd = open(activePath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ExportError("cannot create \(activePath): \(String(cString: strerror(errno)))") }
        activeBytes = 0
        openedAt = ContinuousClock.now
    }

    /// fsyncs and closes the active file; on rotation, gzips it if configured.
    private func closeActive(rotate: Bool) throws {
        guard fd >= 0 else { return }
        guard fsync(fd) == 0 else { throw ExportError("fsync \(activePath): \(String(cString: strerror(errno)))") }
        Foundation.close(fd)
        fd = -1
        if rotate && config.compressRotated {
            let gzPath = activePath + ".gz"
            let tmp = gzPath + ".tmp"
            try RotatedFileGzip.compress(source: activePath, destination: tmp, level: Int32(config.gzipLevel))
            guard rename(tmp, gzPath) == 0 else { throw ExportError("cannot rename \(tmp)") }
            unlink(activePath)
        }
    }

    /// After a crash the active file may hold lines written after the last
    /// committed marks (and a torn last line). Those records are still
    /// unexported in the store and will be written again, so the file is cut
    /// back to the committed length: no record appears twice.
    private func repairTornTail() throws {
        guard let (path, length) = try store.exportPosition(exporter: exporterKey), FileManager.default.fileExists(atPath: path) else { return }
        // The path comes from the store, which other processes may share
        // (PostgreSQL): only ever cut a file of our own directory.
        let ownDirectory = URL(fileURLWithPath: config.directory).standardizedFileURL.resolvingSymlinksInPath().path
        let parent = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().deletingLastPathComponent().path
        guard parent == ownDirectory, (path as NSString).lastPathComponent.hasPrefix("tracefold-") else {
            logger.error("jsonl: the store names an export file outside the export directory; leaving it alone", metadata: ["file": "\(path)"])
            return
        }
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        if size > length {
            logger.warning(
                "jsonl: cutting uncommitted lines left by a crash; they are written again",
                metadata: ["file": "\(path)", "bytes": "\(size - length)"]
            )
            guard truncate(path, off_t(length)) == 0 else { throw ExportError("cannot truncate \(path)") }
        }
    }
}
