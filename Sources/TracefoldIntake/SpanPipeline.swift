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
        var spanCount: Int
    }

    /// The most spans a `GroupingSpanSink` (the fold) takes in one call,
    /// unless one batch alone has more. The fold writes a group in one
    /// transaction. A commit writes whole pages to the WAL (the last leaf
    /// of each index it appends to, the interior pages above them), however
    /// few rows changed on them: on the bench load the collector wrote
    /// 6.5 KB per span with a commit per 512-span batch and 3.8 KB with
    /// groups, of which the JSONL export is 1.6 KB and the stored rows
    /// about 0.6. Only what is queued is grouped: the
    /// pipeline never waits to fill a group, so a group costs no latency
    /// while the fold keeps up.
    ///
    /// A group's rows, rendered and compressed, are held until its commit:
    /// on the bench load the throughput phase's peak RSS rose by about
    /// 12 KB for each span a group may hold (176 MiB with groups of one
    /// 512-span batch, 200 with 2,048 spans, 221 with 4,096). The CPU per
    /// span fell by less than these machines' noise (0-5% in paired runs):
    /// the gain is the bytes written. While the memory limiter reports
    /// pressure, batches go one by one (`memoryPressure`).
    ///
    /// 4,096, not 2,048: with random trace and span ids, as tracers make
    /// them (`tracefold-loadgen --random-ids`), most spans of a commit
    /// insert into a different page of each index by id, and the commit
    /// writes each such 16 KiB page to the WAL once however many of its
    /// spans landed there. Twice the spans a group shares those pages among
    /// twice as many: 1.09 times the spans per CPU-second in 4 paired runs
    /// (none with counting ids), peak RSS at 10x overload 245.5 MiB against
    /// 234.1 under the 256 MiB limiter, and all acknowledged spans stored.
    /// 8,192 gained no more and reached 266 MiB there.
    public static let defaultMaxGroupSpans = 4096
    private let maxGroupSpans: Int
    // Guarded by condition.
    private var underPressure = false

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
    /// Batches enqueued and delivered so far; a reader waits for the
    /// delivery of what was enqueued before it asked (`waitForDelivery`).
    private var enqueuedBatches: UInt64 = 0
    private var deliveredBatches: UInt64 = 0
    private var deliveryWaiters = 0
    private let runner = ThreadRunner(name: "tracefold-pipeline", background: true)

    /// How long a new request may wait for room in a full queue before it
    /// is turned away (`store.max_pending_wait`); zero turns away at once.
    public let roomWait: Duration
    /// The most requests that wait for room at once; the next one is turned
    /// away at once. Each holds a connection and its unread body in the
    /// socket's buffers; 64 waiting 512-span requests are four times the
    /// default queue, more than one wait can drain.
    public let maxRoomWaiters: Int
    /// A request waiting for room, resumed with true when it may go on and
    /// false when it is to be turned away.
    private struct RoomWaiter {
        let ticket: UInt64
        let continuation: CheckedContinuation<Bool, Never>
    }
    // Guarded by condition: the requests waiting for room, in arrival
    // order. Room that opens lets them in from the front, each counted in
    // `admittedSpans` (at the mean batch size) until a batch is enqueued,
    // so that room for one batch does not let in the whole line. They are
    // woken by the pipeline thread as it delivers a group, not by polling:
    // a 2 ms poll per waiting request cost about 5% of the collector's CPU
    // in timer and wake-up system calls on the §10.1 load.
    private var roomLine: [RoomWaiter] = []
    private var nextRoomTicket: UInt64 = 0
    /// Set by `endRoomWaits`, which `shutdown` calls before it stops the
    /// pipeline: no request waits once shutdown has begun.
    private var roomWaitsEnded = false
    private var admittedSpans = 0.0
    private var meanBatchSpans = 0.0

    public init(
        sinks: [any SpanSink], checkpoint: CheckpointFile?, syncInterval: Duration, capacity: Int,
        logger: Logger, maxGroupSpans: Int = SpanPipeline.defaultMaxGroupSpans, roomWait: Duration = .zero, maxRoomWaiters: Int = 64,
        onCheckpoint: @escaping @Sendable (UInt64) -> Void = { _ in }
    ) {
        self.maxGroupSpans = maxGroupSpans
        self.roomWait = roomWait
        self.maxRoomWaiters = maxRoomWaiters
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

    /// Waits, up to `roomWait`, until the queue has room for this request
    /// and the ones that began waiting earlier; true when it may go on.
    /// False at once when the wait is off, `maxRoomWaiters` already wait or
    /// shutdown has begun, and false when the wait runs out with the queue
    /// still full. A request let in does not reserve room: like any request
    /// that finds the queue below capacity, its batch is enqueued once read
    /// and committed.
    public func waitForRoom() async -> Bool {
        guard isFull else { return true }
        guard roomWait > .zero else { return false }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            condition.lock()
            guard roomLine.count < maxRoomWaiters, !roomWaitsEnded else {
                condition.unlock()
                continuation.resume(returning: false)
                return
            }
            nextRoomTicket += 1
            let ticket = nextRoomTicket
            roomLine.append(RoomWaiter(ticket: ticket, continuation: continuation))
            let letIn = admitFromRoomLine()
            condition.unlock()
            for c in letIn { c.resume(returning: true) }
            DispatchQueue.global().asyncAfter(deadline: .now() + roomWait.inSeconds) { [weak self] in
                self?.roomWaitRanOut(ticket)
            }
        }
    }

    /// The requests waiting for room now.
    public var roomWaiters: Int {
        condition.lock()
        defer { condition.unlock() }
        return roomLine.count
    }

    /// Shutdown has begun: the requests waiting for room are turned away
    /// now, so that they do not hold up the server's graceful shutdown, and
    /// no request waits from here on.
    public func endRoomWaits() {
        condition.lock()
        roomWaitsEnded = true
        let waiting = roomLine
        roomLine.removeAll()
        condition.unlock()
        for w in waiting { w.continuation.resume(returning: false) }
    }

    /// Lets in the waiting requests from the front while the queue, with
    /// what the ones already let in will add, stays below capacity. Called
    /// with `condition` held; the caller resumes what it returns once it
    /// has let go of the lock.
    private func admitFromRoomLine() -> [CheckedContinuation<Bool, Never>] {
        var letIn = [CheckedContinuation<Bool, Never>]()
        while !roomLine.isEmpty, Double(queuedSpanCount) + admittedSpans < Double(capacity) {
            letIn.append(roomLine.removeFirst().continuation)
            admittedSpans += max(1, meanBatchSpans)
        }
        return letIn
    }

    /// A request's wait is over: it goes on if the queue has room after
    /// all (a request let in before it may have failed before enqueueing),
    /// else it is turned away. Nothing if it was let in already.
    private func roomWaitRanOut(_ ticket: UInt64) {
        condition.lock()
        guard let index = roomLine.firstIndex(where: { $0.ticket == ticket }) else {
            condition.unlock()
            return
        }
        let waiter = roomLine.remove(at: index)
        let room = queuedSpanCount < capacity && !roomWaitsEnded
        if room { admittedSpans += max(1, meanBatchSpans) }
        condition.unlock()
        waiter.continuation.resume(returning: room)
    }

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
        runner.start { [self] in run() }
    }

    /// Lets every sink work on the batch on the calling (request) thread,
    /// before it is committed; returns what the sinks will drop, for the
    /// request's `partial_success`.
    public func prepare(_ batch: inout SpanBatch) -> [String] {
        var dropped = [String]()
        for sink in sinks { dropped += sink.prepare(&batch) }
        return dropped
    }

    /// `completion`, if any, gets what the sinks dropped once every sink has
    /// taken the batch.
    public func enqueue(_ batch: SpanBatch, lsn: UInt64, completion: (@Sendable ([String]) -> Void)? = nil) {
        condition.lock()
        let spans = batch.spanCount
        queue.append(Item(batch: batch, lsn: lsn, completion: completion, spanCount: spans))
        queuedSpanCount += spans
        enqueuedBatches += 1
        // The batch of a request let in from the line (or of another): its
        // estimate gives way to its real spans.
        meanBatchSpans = meanBatchSpans == 0 ? Double(spans) : meanBatchSpans * 0.9 + Double(spans) * 0.1
        admittedSpans = max(0, admittedSpans - max(1, meanBatchSpans))
        condition.signal()
        condition.unlock()
    }

    /// Set by the memory limiter: while true, the fold takes one batch at a
    /// time, so that no group's rows add to memory the limiter is trying
    /// to bring down.
    public func memoryPressure(_ pressure: Bool) {
        condition.lock()
        underPressure = pressure
        condition.unlock()
    }

    /// Read-your-writes for the query API: waits until every batch enqueued
    /// before the call has reached the sinks, or until `timeout` (the
    /// visibility bound, SPEC §7.6), whichever comes first. Requests are
    /// acknowledged once their batch is durable in the intake log, before
    /// the fold; a client that reads right after its 200 still sees its
    /// spans while the pipeline keeps up. Returns false on the timeout.
    @discardableResult
    public func waitForDelivery(timeout: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        condition.lock()
        defer { condition.unlock() }
        let target = enqueuedBatches
        deliveryWaiters += 1
        defer { deliveryWaiters -= 1 }
        while deliveredBatches < target {
            if !condition.wait(until: deadline) { return deliveredBatches >= target }
        }
        return true
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
        endRoomWaits()
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        runner.join()
        for sink in sinks {
            do { try sink.close() } catch { logger.error("closing \(sink.name) failed", metadata: ["error": "\(error)"]) }
        }
    }

    private func run() {
        var consumedLSN: UInt64 = 0
        var syncedLSN: UInt64 = 0
        var dirty = false
        // Consumed since the sinks last flushed or synced.
        var unflushed = false
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
            let groupLimit = underPressure ? 1 : maxGroupSpans
            condition.unlock()

            var abandoned = false
            var start = 0
            while start < items.count {
                let group = items[start..<Self.groupEnd(items, from: start, limit: groupLimit)]
                start = group.endIndex
                // A sink still failing at shutdown: this group and the ones
                // after it stay undelivered, and the checkpoint stays below
                // them, so the intake log replays them at the next start.
                guard let dropped = deliver(group) else {
                    abandoned = true
                    break
                }
                for (item, d) in zip(group, dropped) {
                    item.completion?(d)
                    consumedLSN = max(consumedLSN, item.lsn)
                }
                dirty = true
                unflushed = true
                condition.lock()
                queuedSpanCount -= group.reduce(0) { $0 + $1.spanCount }
                deliveredBatches += UInt64(group.count)
                if deliveryWaiters > 0 { condition.broadcast() }
                let letIn = roomLine.isEmpty ? [] : admitFromRoomLine()
                condition.unlock()
                for c in letIn { c.resume(returning: true) }
            }
            if abandoned {
                if dirty, syncAll(), consumedLSN > syncedLSN { writeCheckpoint(consumedLSN) }
                logger.error("pipeline stopped while a sink failed; the undelivered batches are replayed from the intake log on restart")
                condition.lock()
                inFlight = false
                condition.broadcast()
                condition.unlock()
                return
            }
            // Sync once a syncInterval, whether the queue ran dry or not
            // (the idle wait above wakes for it); when it ran dry, only make
            // what the sinks hold readable. Nothing waits for a sync: the
            // intake log covers the batches until it. Syncing each time the
            // queue ran dry, as before, made the store checkpoint after
            // nearly every batch at a steady 10k spans/s: the same hot pages
            // copied from the WAL and fsynced 20 times a second, beside the
            // intake log's fsyncs that the acks wait for.
            condition.lock()
            let idle = queue.isEmpty
            condition.unlock()
            if dirty && (ContinuousClock.now - lastSync >= syncInterval || stop) {
                if syncAll() {
                    dirty = false
                    unflushed = false
                    lastSync = ContinuousClock.now
                    if consumedLSN > syncedLSN {
                        syncedLSN = consumedLSN
                        writeCheckpoint(syncedLSN)
                    }
                }
            } else if unflushed && idle {
                if forEachSink("flush", { try $0.flush() }) { unflushed = false }
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

    /// The end of the group that starts at `start`: the batches after it
    /// while their spans add up to at most `limit`, and always at least the
    /// first.
    private static func groupEnd(_ items: [Item], from start: Int, limit: Int) -> Int {
        var end = start + 1
        var spans = items[start].spanCount
        while end < items.count && spans + items[end].spanCount <= limit {
            spans += items[end].spanCount
            end += 1
        }
        return end
    }

    /// A sink that fails keeps the group: it is retried until it succeeds,
    /// because the batches were already acknowledged (their spans are
    /// durable in the intake log, SPEC §1.10). A `GroupingSpanSink` takes the
    /// group in one call, other sinks batch by batch. Returns what each
    /// batch dropped, or nil when shutdown comes while a sink still fails:
    /// the group was not delivered.
    private func deliver(_ group: ArraySlice<Item>) -> [[String]]? {
        var dropped = Array(repeating: [String](), count: group.count)
        for sink in sinks {
            if let grouping = sink as? any GroupingSpanSink {
                let batches = group.map(\.batch)
                guard let d = retrying(sink, lsn: group.last!.lsn, { try grouping.consume(group: batches) }) else { return nil }
                for (i, batchDrops) in zip(dropped.indices, d) { dropped[i] += batchDrops }
            } else {
                for (i, item) in group.enumerated() {
                    guard let d = retrying(sink, lsn: item.lsn, { try sink.consume(item.batch) }) else { return nil }
                    dropped[i] += d
                }
            }
        }
        return dropped
    }

    /// Runs `consume` until it succeeds (the pipeline is marked failing
    /// meanwhile, with a growing pause); nil when shutdown comes first.
    private func retrying<T>(_ sink: any SpanSink, lsn: UInt64, _ consume: () throws -> T) -> T? {
        var delay = 0.05
        while true {
            do {
                let result = try consume()
                if isFailing {
                    setFailing(false)
                    logger.notice("\(sink.name) takes batches again", metadata: ["lsn": "\(lsn)"])
                }
                return result
            } catch {
                logger.error("\(sink.name) failed to take a batch; retrying", metadata: ["error": "\(error)", "lsn": "\(lsn)"])
                setFailing(true)
                condition.lock()
                let stop = stopping
                condition.unlock()
                if stop { return nil }
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 2)
            }
        }
    }

    /// A failed sync marks the pipeline failing (intake answers 503) until
    /// a sync succeeds on every sink again.
    private func syncAll() -> Bool {
        guard forEachSink("sync", { try $0.sync() }) else { return false }
        if isFailing {
            setFailing(false)
            logger.notice("the sinks sync again")
        }
        return true
    }

    /// `step` on every sink, until one fails; a failure marks the pipeline
    /// failing.
    private func forEachSink(_ what: String, _ step: (any SpanSink) throws -> Void) -> Bool {
        for sink in sinks {
            do {
                try step(sink)
            } catch {
                logger.error("\(sink.name) failed to \(what)", metadata: ["error": "\(error)"])
                setFailing(true)
                return false
            }
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
