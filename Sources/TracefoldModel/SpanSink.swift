/// The stage after intake. The pipeline calls a sink from one thread, in the
/// order the intake log acknowledged the batches, so a sink needs no locking
/// of its own for `consume`/`sync`.
public protocol SpanSink: AnyObject, Sendable {
    /// The component id, for logs (`spans_jsonl`).
    var name: String { get }
    /// Takes one batch. May buffer; a replayed batch must not be applied twice
    /// (SPEC §1.11), so a sink deduplicates by `SpanKey`. Returns what it had
    /// to drop (metadata updates over a limit), for the request's
    /// `partial_success`.
    func consume(_ batch: SpanBatch) throws -> [String]
    /// Makes everything consumed so far durable. Once every sink has synced,
    /// the intake log may forget those batches.
    func sync() throws
    /// The last call, after a final `sync` at shutdown.
    func close() throws
}

/// A value handed over once, from a thread to an async waiter, whichever
/// comes first.
public final class OneShot<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLockLike()
    private var value: Value?
    private var cancelled = false
    private var continuation: CheckedContinuation<Value, any Error>?

    public init() {}

    public func fulfil(_ v: Value) {
        lock.lock()
        if let c = continuation {
            continuation = nil
            lock.unlock()
            c.resume(returning: v)
            return
        }
        value = v
        lock.unlock()
    }

    /// Throws CancellationError if the waiting task is cancelled first, so a
    /// request stuck behind a slow pipeline does not hold up a bounded
    /// shutdown; its batch, if logged, is replayed at the next start.
    public func wait() async throws -> Value {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { c in
                lock.lock()
                if let v = value {
                    lock.unlock()
                    c.resume(returning: v)
                    return
                }
                if cancelled {
                    lock.unlock()
                    c.resume(throwing: CancellationError())
                    return
                }
                continuation = c
                lock.unlock()
            }
        } onCancel: {
            lock.lock()
            cancelled = true
            let c = continuation
            continuation = nil
            lock.unlock()
            c?.resume(throwing: CancellationError())
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex; TracefoldModel stays free of Foundation.
final class NSLockLike: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(m, nil) }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    func lock() { pthread_mutex_lock(m) }
    func unlock() { pthread_mutex_unlock(m) }
}
