import NIOConcurrencyHelpers
import TracefoldConfig
import TracefoldModel

/// Per-credential token buckets in spans (SPEC §1.9: past a per-key rate
/// limit, 429 with Retry-After). A batch is admitted when the bucket holds
/// at least as many tokens as the batch has spans, or is full; the bucket
/// may then go into debt, so a batch larger than the burst still gets
/// through once, and the debt delays the next one. The clock is passed in,
/// so tests step time instead of sleeping.
public final class SpanRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let defaultLimit: RateLimit?
    private let perKey: [String: RateLimit]
    private let buckets = NIOLockedValueBox([String: Bucket]())

    public init(auth: AuthConfig, defaultLimit: RateLimit?) {
        self.defaultLimit = defaultLimit
        var perKey = [String: RateLimit]()
        for key in auth.apiKeys { perKey[key.publicKey] = key.rateLimit }
        self.perKey = perKey
    }

    /// `key` is the public key, or nil for requests without one (auth off,
    /// or a bearer token), which share one bucket. Returns nil when
    /// admitted, else how long to wait before the batch would fit.
    public func admit(key: String?, spans: Int, now: ContinuousClock.Instant = .now) -> Duration? {
        guard let limit = key.flatMap({ perKey[$0] }) ?? defaultLimit else { return nil }
        let capacity = Double(limit.burst)
        let needed = min(Double(spans), capacity)
        return buckets.withLockedValue { buckets -> Duration? in
            var bucket = buckets[key ?? "", default: Bucket(tokens: capacity, updated: now)]
            bucket.tokens = min(capacity, bucket.tokens + max(0, (now - bucket.updated).inSeconds) * limit.spansPerSecond)
            bucket.updated = max(bucket.updated, now)
            defer { buckets[key ?? ""] = bucket }
            guard bucket.tokens >= needed else {
                return .nanoseconds(Int64(((needed - bucket.tokens) / limit.spansPerSecond * 1e9).rounded(.up)))
            }
            bucket.tokens -= Double(spans)
            return nil
        }
    }
}
