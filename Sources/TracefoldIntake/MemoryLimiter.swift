import CProtobufC
import Foundation
import Logging
import NIOConcurrencyHelpers
import TracefoldConfig
import TracefoldModel
import TracefoldTelemetry

/// otelcol's memory_limiter (SPEC §1.9), at the front of intake: a thread
/// samples the resident set every `check_interval`; while it is above the
/// soft limit, intake answers 503 with Retry-After before reading a body,
/// so memory stops growing from new requests while queries go on being
/// served. Above the soft limit it also asks the allocator to return freed
/// pages (`releaseFreedMemory`), the nearest thing to otelcol's forced GC,
/// and judges by the resident set after that.
public final class MemoryLimiter: Sendable {
    public let config: MemoryLimiterConfig
    private let logger: Logger
    /// Sampling is injectable so tests can drive the limiter without
    /// allocating gigabytes.
    private let sample: @Sendable () -> Int?
    private let state = NIOLockedValueBox(State())
    private let stopping = ConditionLock(value: false)
    private let runner = ThreadRunner(name: "tracefold-memory-limiter")

    private struct State {
        var refusing = false
        var lastRSS = 0
        var peakRSS = 0
        var pressureHandlers: [@Sendable (Bool) -> Void] = []
    }

    /// Calls `handler` with true when the resident set goes above the soft
    /// limit and with false when it falls below again: memory held only to
    /// save work (a cache) can be let go while intake is refused.
    public func onPressureChange(_ handler: @escaping @Sendable (Bool) -> Void) {
        state.withLockedValue { $0.pressureHandlers.append(handler) }
    }

    public init(config: MemoryLimiterConfig, logger: Logger, sample: @escaping @Sendable () -> Int? = CollectorMetrics.residentBytes) {
        self.config = config
        self.logger = logger
        self.sample = sample
    }

    /// True while the last sample was above the soft limit.
    public var isRefusing: Bool { state.withLockedValue { $0.refusing } }
    public var lastResidentBytes: Int { state.withLockedValue { $0.lastRSS } }
    public var peakResidentBytes: Int { state.withLockedValue { $0.peakRSS } }

    /// Takes one sample and updates the refusing state.
    public func check() {
        guard let rss = sample() else { return }
        var effective = rss
        if rss > config.softLimitBytes {
            // The allocator keeps freed memory for reuse; without handing it
            // back, a process that is idle again can stay above the soft
            // limit and refuse intake until the allocator's own decay
            // returns it, or forever.
            Self.releaseFreedMemory()
            effective = sample() ?? rss
        }
        let (was, now, handlers) = state.withLockedValue { s -> (Bool, Bool, [@Sendable (Bool) -> Void]) in
            let was = s.refusing
            s.refusing = effective > config.softLimitBytes
            s.lastRSS = effective
            s.peakRSS = max(s.peakRSS, rss)
            return (was, s.refusing, s.pressureHandlers)
        }
        if now != was {
            for handler in handlers { handler(now) }
            logger.warning(
                now ? "memory above the soft limit; intake answers 503 until it falls" : "memory below the soft limit again; intake accepts data",
                metadata: ["rss_mib": "\(effective >> 20)", "soft_limit_mib": "\(config.softLimitBytes >> 20)", "limit_mib": "\(config.limitMiB)"]
            )
        }
    }

    /// Returns the freed pages the allocator holds to the kernel. The
    /// collector runs on jemalloc (`TracefoldAllocator`), which keeps freed
    /// pages for `dirty_decay_ms` and purges every arena on request
    /// (`arena.<MALLCTL_ARENAS_ALL>.purge`); `malloc_trim` only reaches
    /// glibc's arenas, which another build (the tests) may use instead.
    /// Found at run time, so this module does not link jemalloc.
    static func releaseFreedMemory() {
        _ = mallctl?("arena.4096.purge", nil, nil, nil, 0)
        malloc_trim(0)
    }

    private typealias MallCtl = @convention(c) (UnsafePointer<CChar>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?, UnsafeMutableRawPointer?, Int) -> Int32

    /// jemalloc's `mallctl`, when the process's malloc is jemalloc's.
    private static let mallctl: MallCtl? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallctl").map { unsafeBitCast($0, to: MallCtl.self) }

    public func start() {
        check()
        let interval = config.checkInterval.inSeconds
        runner.start { [self] in
            while !stopping.lock(whenValue: true, timeoutSeconds: interval) {
                check()
            }
            stopping.unlock()
        }
    }

    public func stop() {
        stopping.lock()
        stopping.unlock(withValue: true)
        runner.join()
    }
}
