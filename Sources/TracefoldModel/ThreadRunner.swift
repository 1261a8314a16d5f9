#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One named OS thread that runs a blocking loop (the intake log's writer,
/// the pipeline, the JSONL exporter, the memory limiter, the shutdown
/// write-out), and its join.
///
/// fsync, SQLite and file I/O block, so these loops must not run on Swift's
/// cooperative pool. Each owner keeps its own stop flag and wakes its own
/// loop; the runner only owns the thread and knows when its body returned.
public final class ThreadRunner: @unchecked Sendable {
    public let name: String
    /// Runs below the default priority (`backgroundNice`): work that
    /// follows the ack (the pipeline, the mapping, the export) yields the
    /// cores to the requests waiting for theirs, and catches up between
    /// them.
    public let isBackground: Bool
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let finishedCondition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by mutex.
    private var started = false
    private var finished = false

    /// How much nicer than the process a background thread runs: at 5 a
    /// busy request thread gets three times its share of a contended core.
    /// Not more: nice counts against every process in the scheduling group
    /// too, and at 10 the fold lost most of a core to the niced builds the
    /// test command runs beside it (the 10^6-attribute test took 575 s
    /// instead of about 100); the ack p99 at 10k spans/s was about the
    /// same at 5 and 10 (20.5-21.7 and 19.3-20.5 ms).
    public static let backgroundNice: Int32 = 5

    public init(name: String, background: Bool = false) {
        self.name = name
        isBackground = background
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(finishedCondition, nil)
    }

    deinit {
        pthread_cond_destroy(finishedCondition)
        pthread_mutex_destroy(mutex)
        finishedCondition.deallocate()
        mutex.deallocate()
    }

    /// Starts `body` on a new thread. A runner runs one body, once.
    public func start(_ body: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        precondition(!started, "\(name) started twice")
        started = true
        pthread_mutex_unlock(mutex)
        let box = Unmanaged.passRetained(Job(runner: self, body: body))
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let status = pthread_create(&thread, nil, { raw in
            let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
            job.runner.name.withCString { name in
                #if canImport(Darwin)
                _ = pthread_setname_np(name)
                #else
                ThreadRunner.setLinuxName(name)
                #endif
            }
            if job.runner.isBackground { ThreadRunner.lowerPriority() }
            job.body()
            job.runner.markFinished()
            return nil
        }, box.toOpaque())
        precondition(status == 0, "cannot start thread \(name): \(status)")
        #if canImport(Darwin)
        pthread_detach(thread!)
        #else
        pthread_detach(thread)
        #endif
    }

    /// Waits until the body returns. A bounded shutdown does not wait here
    /// for ever: `ShutdownWatchdog` ends the process at its bound.
    public func join() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while started && !finished { pthread_cond_wait(finishedCondition, mutex) }
    }

    #if !canImport(Darwin)
    /// glibc has pthread_setname_np only under _GNU_SOURCE, which the Swift
    /// module does not see; it is looked up once instead. The name shows in
    /// top, perf and gdb.
    private typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
    nonisolated(unsafe) private static let setName: SetName? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pthread_setname_np")
        .map { unsafeBitCast($0, to: SetName.self) }

    static func setLinuxName(_ name: UnsafePointer<CChar>) {
        // Linux allows 15 bytes; a longer name is refused, not cut.
        var short = [CChar](repeating: 0, count: 16)
        strncpy(&short, name, 15)
        _ = setName?(pthread_self(), short)
    }
    #endif

    /// Linux keeps a nice value per thread, and `setpriority` with id 0
    /// changes the calling thread's; raising it needs no privilege.
    private static func lowerPriority() {
        #if canImport(Glibc)
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        #else
        let which = PRIO_PROCESS
        #endif
        errno = 0
        let current = getpriority(which, 0)
        guard errno == 0 else { return }
        _ = setpriority(which, 0, min(19, current + backgroundNice))
    }

    private func markFinished() {
        pthread_mutex_lock(mutex)
        finished = true
        pthread_cond_broadcast(finishedCondition)
        pthread_mutex_unlock(mutex)
    }

    private final class Job {
        let runner: ThreadRunner
        let body: @Sendable () -> Void
        init(runner: ThreadRunner, body: @escaping @Sendable () -> Void) {
            self.runner = runner
            self.body = body
        }
    }
}
