import Foundation
import Logging
import TracefoldModel

/// Carries acknowledged batches from the intake to the sinks on one thread,
/// in log order. After the sinks have synced, it records the highest LSN they
/// hold in a checkpoint file so that the intake log can drop older records and
/// a restart replays only what the sinks may not have.
public final class SpanPipeline: @unchecked Sendable {
    private struct Item {
        var batch: SpanBatch
        var lsn: UInt64
        var completion: (@Sendable ([String]) -> Void)?
    }

    private let sinks: [any SpanSink]
    /// Spans that may wait for the sinks before intake answers 503.
    public let capacity: Int
    private let checkpoint: CheckpointFile?
    private let syncInterval: Duration
    private let onCheckpoint: @Sendable (UInt64) -> Void
    private let logger: Logger
    private let condition = NSCondition()
    // Guarded by condition.
    private var queue: [Item] = []
    private var queuedSpanCount = 0
    private var stopping = false
    private var inFlight = false
    private var failing = false
    private var thread: Thread?

    public init(
        sinks: [any SpanSink], checkpoint: CheckpointFile?, syncInterval: Duration, capacity: Int,
        logger: Logger, onCheckpoint: @escaping @Sendable (UInt64) -> Void = { _ in }
    ) {
        self.sinks = sinks
        self.capacity = capacity
        self.checkpoint = checkpoint
        self.syncInterval = syncInterval
        self.logger = logger
        self.onCheckpoint = onCheckpoint
    }

    /// Spans handed in but not yet given to the sinks.
    public var queuedSpans: Int {
        condition.lock()
        defer { condition.unlock() }
        return queuedSpanCount
    }

    /// True once `capacity` spans wait. Replay and batches already committed
    /// are always enqueued; only new requests are turned away.
    public var isFull: Bool { queuedSpans >= capacity }

    /// True while a sink keeps failing (the store is unreachable, the disk is
    /// full). Intake then answers 503 and `/health/ready` fails; it clears as
    /// soon as the retried batch goes through.
    public var isFailing: Bool {
        condition.lock()
        defer { condition.unlock() }
        return failing
    }

    private func setFailing(_ value: Bool) {
        condition.lock()
        failing = value
        condition.unlock()
    }

    public func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "tracefold-pipeline"
        self.thread = thread
        thread.start()
    }

    /// `completion` gets what the sinks dropped once every sink has taken the
    /// batch; the request that delivered it is waiting for that.
    public func enqueue(_ batch: SpanBatch, lsn: UInt64, completion: (@Sendable ([String]) -> Void)? = nil) {
        condition.lock()
        queue.append(Item(batch: batch, lsn: lsn, completion: completion))
        queuedSpanCount += batch.spanCount
        condition.signal()
        condition.unlock()
    }

    /// Blocks until everything enqueued so far has reached the sinks and been
    /// synced. Tests and shutdown use it.
    public func drain() {
        condition.lock()
        while !queue.isEmpty || inFlight { condition.wait() }
        condition.unlock()
    }

    /// Processes what is queued, syncs, checkpoints, closes the sinks.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        while thread?.isFinished == false { usleep(1000) }
        for sink in sinks {
            do { try sink.close() } catch { logger.error("closing \(sink.name) failed", metadata: ["error": "\(error)"]) }
        }
    }

    private func run() {
        var consumedLSN: UInt64 = 0
        var syncedLSN: UInt64 = 0
        var dirty = false
        var lastSync = ContinuousClock.now
        while true {
            condition.lock()
            if queue.isEmpty && !stopping {
                // Idle: wait for work, but wake to sync buffered data.
                let seconds = dirty ? max(0.001, (syncInterval - (ContinuousClock.now - lastSync)).inSeconds) : 3600
                _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
            }
            let items = queue
            queue.removeAll(keepingCapacity: true)
            inFlight = !items.isEmpty || dirty
            let stop = stopping && items.isEmpty
            condition.unlock()

            for var item in items {
                // Not `item.completion?(deliver(item))`: optional chaining
                // would skip the delivery of replayed batches, which have no
                // completion.
                let dropped = deliver(&item)
                item.completion?(dropped)
                consumedLSN = max(consumedLSN, item.lsn)
                dirty = true
                condition.lock()
                queuedSpanCount -= item.batch.spanCount
                condition.unlock()
            }
            // Sync when the queue runs dry (low latency at low load) or at
            // least every syncInterval under sustained load.
            condition.lock()
            let idle = queue.isEmpty
            condition.unlock()
            if dirty && (idle || ContinuousClock.now - lastSync >= syncInterval || stop) {
                if syncAll() {
                    dirty = false
                    lastSync = ContinuousClock.now
                    if consumedLSN > syncedLSN {
                        syncedLSN = consumedLSN
                        writeCheckpoint(syncedLSN)
                    }
                }
            }
            condition.lock()
            inFlight = false
            condition.broadcast()
            condition.unlock()
            if stop && !dirty { return }
            if stop && dirty {
                // A sink cannot sync; do not spin at shutdown. The intake log
                // still has the data and a restart replays it.
                logger.error("pipeline stopped with unsynced data; it will be replayed from the intake log on restart")
                return
            }
        }
    }

    /// A sink that fails keeps the batch: it is retried until it succeeds,
    /// because the batch was already acknowledged. A logged batch's request
    /// is answered at the first failure instead of waiting: its spans are
    /// durable in the intake log (SPEC §1.10) and reach the store on retry.
    private func deliver(_ item: inout Item) -> [String] {
        var dropped = [String]()
        for sink in sinks {
            var delay = 0.05
            while true {
                do {
                    dropped += try sink.consume(item.batch)
                    if isFailing {
                        setFailing(false)
                        logger.notice("\(sink.name) takes batches again", metadata: ["lsn": "\(item.lsn)"])
                    }
                    break
                } catch {
                    logger.error("\(sink.name) failed to take a batch; retrying", metadata: ["error": "\(error)", "lsn": "\(item.lsn)"])
                    setFailing(true)
                    if item.lsn > 0, let completion = item.completion {
                        completion(dropped)
                        item.completion = nil
                    }
                    condition.lock()
                    let stop = stopping
                    condition.unlock()
                    if stop { return dropped }
                    Thread.sleep(forTimeInterval: delay)
                    delay = min(delay * 2, 2)
                }
            }
        }
        return dropped
    }

    private func syncAll() -> Bool {
        for sink in sinks {
            do {
                try sink.sync()
            } catch {
                logger.error("\(sink.name) failed to sync", metadata: ["error": "\(error)"])
                setFailing(true)
                return false
            }
        }
        if isFailing {
            setFailing(false)
            logger.notice("the sinks sync again")
        }
        return true
    }

    private func writeCheckpoint(_ lsn: UInt64) {
        guard let checkpoint, lsn > 0 else { return }
        do {
            try checkpoint.write(lsn)
            onCheckpoint(lsn)
        } catch {
            logger.error("cannot write the pipeline checkpoint", metadata: ["error": "\(error)"])
        }
    }
}

/// The highest LSN every sink has made durable, written atomically
/// (temp file, fsync, rename, fsync of the directory).
public struct CheckpointFile: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public func read() -> UInt64 {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    public func write(_ lsn: UInt64) throws {
        let tmp = path + ".tmp"
        let bytes = Array("\(lsn)\n".utf8)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IntakeLog.WriteError(description: "cannot create \(tmp)") }
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else { throw IntakeLog.WriteError(description: "cannot write \(tmp)") }
        guard rename(tmp, path) == 0 else { throw IntakeLog.WriteError(description: "cannot rename \(tmp)") }
        try IntakeLog.fsyncDirectory((path as NSString).deletingLastPathComponent)
    }
}
