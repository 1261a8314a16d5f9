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
/// served. Above the soft limit it also asks glibc to return freed pages
/// (`malloc_trim`), the nearest thing to otelcol's forced GC, and judges by
/// the resident set after that.
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
            // glibc keeps freed memory in its arenas; without handing it back,
            // a process that is idle again can stay above the soft limit and
            // refuse intake forever.
            malloc_trim(0)
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
