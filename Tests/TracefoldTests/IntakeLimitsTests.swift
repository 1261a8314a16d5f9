import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OTLP
import TracefoldCollector
import TracefoldConfig
@testable import TracefoldIntake
import TracefoldModel
import XCTest

/// SPEC §1.9: the memory limiter and the queue bound answer 503 with
/// Retry-After before a body is read; a per-key rate limit answers 429 with
/// Retry-After; none of it stops queries.
final class IntakeLimitsTests: XCTestCase, @unchecked Sendable {
    // MARK: configuration

    private let pipeline = "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
    private let receiver = "receivers:\n  otlp:\n    protocols:\n      http:\n"

    private func parse(_ yaml: String) throws -> CollectorConfig {
        try CollectorConfig.parse(yaml: yaml, source: "test.yaml", environment: [:])
    }

    private func errorLine(_ yaml: String) -> (line: Int?, message: String)? {
        do {
            _ = try parse(yaml)
            return nil
        } catch let error as ConfigError {
            return (error.line, error.message)
        } catch {
            return (nil, "\(error)")
        }
    }

    func testMemoryLimiterConfigFollowsOtelcol() throws {
        let c = try parse(receiver + "processors:\n  memory_limiter:\n    limit_mib: 500\n    check_interval: 250ms\n" + pipeline + "      processors: [memory_limiter]\n")
        let limiter = try XCTUnwrap(c.activeMemoryLimiter)
        XCTAssertEqual(limiter.limitMiB, 500)
        XCTAssertEqual(limiter.spikeLimitMiB, 100, "otelcol's default spike limit is 20 % of the limit")
        XCTAssertEqual(limiter.softLimitBytes, 400 << 20)
        XCTAssertEqual(limiter.checkInterval, .milliseconds(250))

        let spike = try parse(receiver + "processors:\n  memory_limiter:\n    limit_mib: 500\n    spike_limit_mib: 499\n" + pipeline + "      processors: [memory_limiter]\n")
        XCTAssertEqual(spike.activeMemoryLimiter?.softLimitBytes, 1 << 20, "a spike limit one below the limit is allowed")
        let over = try XCTUnwrap(errorLine(receiver + "processors:\n  memory_limiter:\n    limit_mib: 500\n    spike_limit_mib: 500\n" + pipeline + "      processors: [memory_limiter]\n"))
        XCTAssertEqual(over.line, 8)
        XCTAssertTrue(over.message.contains("must be below limit_mib"), over.message)
        XCTAssertTrue(try XCTUnwrap(errorLine(receiver + "processors:\n  memory_limiter:\n    check_interval: 1s\n" + pipeline + "      processors: [memory_limiter]\n")).message.contains("needs limit_mib"))
        XCTAssertEqual(errorLine(receiver + "processors:\n  memory_limiter:\n    limit_mib: 0\n" + pipeline + "      processors: [memory_limiter]\n")?.line, 7)
        XCTAssertNotNil(errorLine(receiver + "processors:\n  memory_limiter:\n    limit_mib: 100\n" + pipeline), "a declared processor must be used")
    }

    func testRateLimitAndTimeoutConfig() throws {
        let yaml = receiver + """
                    read_timeout: 5s
                    rate_limit: {spans_per_second: 1000}
                    auth:
                      api_keys:
                        - {public_key: pk-1, secret_key: sk-1}
                        - {public_key: pk-2, secret_key: sk-2, rate_limit: {spans_per_second: 10, burst: 50}}
            service:
              shutdown_timeout: 7s
              pipelines:
                traces:
                  receivers: [otlp]

            """
        let c = try parse(yaml)
        XCTAssertEqual(c.receiver.readTimeout, .seconds(5))
        XCTAssertEqual(c.receiver.rateLimit, RateLimit(spansPerSecond: 1000, burst: 1000), "the burst defaults to one second's worth")
        XCTAssertNil(c.receiver.auth.apiKeys[0].rateLimit)
        XCTAssertEqual(c.receiver.auth.apiKeys[1].rateLimit, RateLimit(spansPerSecond: 10, burst: 50))
        XCTAssertEqual(c.service.shutdownTimeout, .seconds(7))
        XCTAssertEqual(CollectorConfig().service.shutdownTimeout, .seconds(30))
        XCTAssertEqual(CollectorConfig().receiver.readTimeout, .seconds(30))
        XCTAssertEqual(errorLine(receiver + "        rate_limit: {burst: 10}\n" + pipeline)?.line, 5)
        XCTAssertEqual(errorLine(receiver + "        rate_limit: {spans_per_second: 0}\n" + pipeline)?.line, 5)
        XCTAssertEqual(errorLine(receiver + "        read_timeout: 0s\n" + pipeline)?.line, 5)
        XCTAssertNotNil(errorLine(receiver + pipeline + "  shutdown_timeout: 0s\n"))
    }

    func testPostgresRequestTimeoutConfig() throws {
        XCTAssertEqual(CollectorConfig().store.postgresRequestTimeout, .seconds(30))
        let store = "store:\n  postgres:\n    url: postgres://u@127.0.0.1:5432/d\n"
        let c = try parse(receiver + pipeline + store + "    request_timeout: 1500ms\n")
        XCTAssertEqual(c.store.postgresRequestTimeout, .milliseconds(1500))
        XCTAssertEqual(errorLine(receiver + pipeline + store + "    request_timeout: 0s\n")?.line, 12)
        XCTAssertNotNil(errorLine(receiver + pipeline + store + "    request_timout: 5s\n"), "unknown keys are errors")
    }

    func testInFlightBytesMustHoldTwoBodiesOfTheLargestSize() throws {
        XCTAssertEqual(CollectorConfig().receiver.maxInFlightBytes, 256 << 20)
        let exact = try parse(receiver + "        max_request_body_size: 1MiB\n        max_in_flight_bytes: 2MiB\n" + pipeline)
        XCTAssertEqual(exact.receiver.maxInFlightBytes, 2 << 20)
        let under = try XCTUnwrap(errorLine(receiver + "        max_request_body_size: 1MiB\n        max_in_flight_bytes: 2097151\n" + pipeline))
        XCTAssertEqual(under.line, 6)
        XCTAssertTrue(under.message.contains("at least twice max_request_body_size"), under.message)
        let raised = try parse(receiver + "        max_request_body_size: 512MiB\n" + pipeline)
        XCTAssertEqual(raised.receiver.maxInFlightBytes, 1 << 30, "the default grows with a raised body limit")
    }

    // MARK: the token bucket, on a stepped clock

    func testRateLimiterRefillsAndAllowsOneOversizedBatchIntoDebt() {
        let limiter = SpanRateLimiter(auth: AuthConfig(), defaultLimit: RateLimit(spansPerSecond: 100, burst: 200))
        let t0 = ContinuousClock.now
        XCTAssertNil(limiter.admit(key: nil, spans: 150, now: t0))
        XCTAssertNil(limiter.admit(key: nil, spans: 50, now: t0), "exactly the burst")
        XCTAssertEqual(limiter.admit(key: nil, spans: 1, now: t0), .milliseconds(10), "one span over waits for one token")
        XCTAssertEqual(limiter.admit(key: nil, spans: 50, now: t0 + .milliseconds(250)), .milliseconds(250))
        XCTAssertNil(limiter.admit(key: nil, spans: 50, now: t0 + .milliseconds(500)))
        // A batch larger than the burst passes once the bucket is full, and
        // its debt holds back the next request.
        XCTAssertNil(limiter.admit(key: nil, spans: 1000, now: t0 + .seconds(10)))
        XCTAssertEqual(limiter.admit(key: nil, spans: 1, now: t0 + .seconds(10)), .nanoseconds(8_010_000_000))
        XCTAssertNil(limiter.admit(key: nil, spans: 1, now: t0 + .seconds(19)))
    }

    func testEachKeyHasItsOwnBucketAndLimit() {
        let auth = AuthConfig(apiKeys: [
            .init(publicKey: "pk-a", secretKey: "sk"), .init(publicKey: "pk-b", secretKey: "sk", rateLimit: RateLimit(spansPerSecond: 1, burst: 1)),
            .init(publicKey: "pk-c", secretKey: "sk"),
        ])
        let limiter = SpanRateLimiter(auth: auth, defaultLimit: RateLimit(spansPerSecond: 10, burst: 10))
        let t0 = ContinuousClock.now
        XCTAssertNil(limiter.admit(key: "pk-a", spans: 10, now: t0))
        XCTAssertNotNil(limiter.admit(key: "pk-a", spans: 1, now: t0))
        XCTAssertNil(limiter.admit(key: "pk-c", spans: 10, now: t0), "pk-a's use does not touch pk-c")
        XCTAssertNil(limiter.admit(key: "pk-b", spans: 1, now: t0))
        XCTAssertEqual(limiter.admit(key: "pk-b", spans: 1, now: t0), .seconds(1), "pk-b has its own, lower limit")
        XCTAssertNil(SpanRateLimiter(auth: auth, defaultLimit: nil).admit(key: "pk-a", spans: 1_000_000, now: t0), "no limit configured")
    }

    func testBodyBudgetHoldsExactlyItsLimit() {
        let budget = InFlightBodyBudget(limit: 1000)
        let a = budget.reserve()
        let b = budget.reserve()
        XCTAssertTrue(a.grow(to: 600))
        XCTAssertTrue(b.grow(to: 400), "exactly at the limit")
        XCTAssertFalse(b.grow(to: 401), "one byte over")
        XCTAssertEqual(budget.inUse, 1000)
        a.releaseAll()
        XCTAssertTrue(b.grow(to: 401))
        b.releaseAll()
        XCTAssertEqual(budget.inUse, 0)
    }

    func testMemoryLimiterFollowsTheSampledResidentSet() {
        final class FakeRSS: @unchecked Sendable {
            let lock = NSLock()
            var bytes = 100 << 20
            func get() -> Int { lock.withLock { bytes } }
            func set(_ n: Int) { lock.withLock { bytes = n } }
        }
        let rss = FakeRSS()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let limiter = MemoryLimiter(config: MemoryLimiterConfig(limitMiB: 200, spikeLimitMiB: 50), logger: logger) { rss.get() }
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var changes = [Bool]()
        }
        let pressure = Seen()
        limiter.onPressureChange { on in pressure.lock.withLock { pressure.changes.append(on) } }
        limiter.check()
        XCTAssertFalse(limiter.isRefusing)
        rss.set(150 << 20)
        limiter.check()
        XCTAssertFalse(limiter.isRefusing, "at the soft limit, not above it")
        rss.set((150 << 20) + 1)
        limiter.check()
        XCTAssertTrue(limiter.isRefusing, "one byte above the soft limit")
        rss.set(120 << 20)
        limiter.check()
        XCTAssertFalse(limiter.isRefusing, "recovers on its own")
        XCTAssertEqual(limiter.peakResidentBytes, (150 << 20) + 1)
        XCTAssertEqual(pressure.lock.withLock { pressure.changes }, [true, false], "told once as it went above, once as it fell")
    }
}

/// SPEC §1.9 over HTTP.
extension IntakeServerTests {
    // MARK: over HTTP

    private func numberedBody(_ spans: ClosedRange<UInt64>) -> ByteBuffer {
        ByteBuffer(bytes: OTLPProtobufEncoder.encode(Fixtures.batch(spans.map { Fixtures.span($0) })))
    }

    func testPastTheRateLimitIntakeAnswers429WithRetryAfterAndStoresNothingOfIt() async throws {
        let auth = AuthConfig(apiKeys: [
            .init(publicKey: "pk-slow", secretKey: "sk", rateLimit: RateLimit(spansPerSecond: 1, burst: 5)), .init(publicKey: "pk-fast", secretKey: "sk"),
        ])
        let basic: @Sendable (String) -> String = { pk in "Basic " + Base64.encode(Array("\(pk):sk".utf8)) }
        try await withServer(auth: auth) { client, h in
            var headers = self.protoHeaders
            headers[.authorization] = basic("pk-slow")
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: self.numberedBody(1...5)) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: self.numberedBody(6...7)) { r in
                XCTAssertEqual(r.status, .tooManyRequests)
                XCTAssertEqual(r.headers[.retryAfter], "2", "two spans at one span a second")
                XCTAssertEqual(self.protobufStatus(r).code, 8, "RESOURCE_EXHAUSTED")
            }
            headers[.authorization] = basic("pk-fast")
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: self.numberedBody(10...30)) { XCTAssertEqual($0.status, .ok) }
            let stored = try h.exportedLines().compactMap { $0["spanId"]?.stringValue }
            XCTAssertEqual(stored.count, 26, "spans 6 and 7 were refused, not stored")
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: basic("pk-fast")]) { r in
                XCTAssertTrue(String(buffer: r.body).contains(#"tracefold_receiver_refused_requests_total{reason="rate_limit"} 1"#))
            }
        }
    }

    func testAboveTheMemoryLimitIntakeAnswers503WhileQueriesAndHealthSayWhy() async throws {
        var config = CollectorConfig()
        // Any running process is above a 2 MiB limit.
        config.memoryLimiter = MemoryLimiterConfig(limitMiB: 2, spikeLimitMiB: 1, checkInterval: .milliseconds(50))
        config.service.processors = ["memory_limiter"]
        try await QueryAPITests.withCollector(.sqlite, auth: AuthConfig(), config: config) { client in
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: self.numberedBody(1...3)) { r in
                XCTAssertEqual(r.status, .serviceUnavailable)
                XCTAssertEqual(r.headers[.retryAfter], "1")
                XCTAssertTrue(self.protobufStatus(r).message.contains("memory limit"))
            }
            try await client.execute(uri: "/health/ready", method: .get) { r in
                XCTAssertEqual(r.status, .serviceUnavailable)
                XCTAssertTrue(String(buffer: r.body).contains("memory is above the soft limit"), String(buffer: r.body))
            }
            try await client.execute(uri: "/api/public/traces", method: .get) { r in
                XCTAssertEqual(r.status, .ok, "queries are served while intake refuses")
            }
        }
        config.memoryLimiter = MemoryLimiterConfig(limitMiB: 1 << 20)
        try await QueryAPITests.withCollector(.sqlite, auth: AuthConfig(), config: config) { client in
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: self.numberedBody(1...3)) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/health/ready", method: .get) { XCTAssertEqual($0.status, .ok) }
        }
    }
}
