import ArgumentParser
import AsyncHTTPClient
import Compression
import Foundation
import NIOCore
import OTLP
import Logging
import TracefoldConfig
import TracefoldFold
import TracefoldMapping
import TracefoldModel

/// Sends the SPEC §10.1 load to an OTLP/HTTP endpoint: protobuf batches of
/// `--batch` spans, 8 spans a trace, 10 attributes a span (3
/// `langfuse.trace.metadata.*`, 2 `langfuse.observation.metadata.*`, a ~200
/// byte JSON input), gzip, keep-alive HTTP/1.1 over `--connections`
/// connections. Every request carries new span ids, and every body is built
/// and compressed before the clock starts, so the generator spends its CPU on
/// sending, not on encoding.
@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracefold-loadgen",
        abstract: "OTLP/HTTP load generator for tracefold benchmarks. Prints one JSON summary line."
    )

    @Option(help: "Traces endpoint.") var url = "http://127.0.0.1:4318/v1/traces"
    @Option(help: "Spans per request.") var batch = 512
    @Option(help: "Requests to send in all.") var requests = 200
    @Option(help: "Parallel keep-alive connections.") var connections = 4
    @Option(help: "Target spans per second across all connections; 0 sends as fast as acknowledgements allow.") var rate = 0.0
    @Option(help: "Spans per trace.") var spansPerTrace = 8
    @Option(help: "Seed for ids, so that runs against one server do not collide.") var seed: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)
    @Flag(help: "Send uncompressed bodies.") var noGzip = false
    @Flag(help: "Random trace and span ids, as tracers make them (drawn from --seed, so a run repeats), instead of ids that count up.")
    var randomIds = false
    @Flag(help: "Give each trace's first span a parent that is never sent, so that no trace has its root and every trace stays open (the collector releases a settled trace, one with its root, from its cache rather than keep it).")
    var rootless = false
    @Flag(help: "Span times from the wall clock when the run starts, 10 ms a request, as tracers stamp them, instead of a fixed base in 2023 (one second a request) where every run's spans take the same times as the runs before.")
    var wallClockTimes = false
    @Option(help: "Send over OTLP/gRPC to this host:port (Export calls, one HTTP/2 connection per --connections, gzip per message) instead of HTTP to --url.")
    var grpc: String?
    @Option(help: "Append \"<traceId> <spanId>\" for every span acknowledged with a 200 to this file, written as each ack arrives, so a test that kills the collector knows what it must keep.")
    var ackedSpans: String?
    @Option(name: .customLong("header"), help: "An extra request header, \"Name: value\" (repeatable); MLflow's OTLP endpoint needs x-mlflow-experiment-id.")
    var headers: [String] = []
    @Option(help: "Stop after this many seconds even if requests remain; 0 sends them all.") var duration = 0.0
    @Option(help: "Give a request up once this many seconds have passed since its first try and the server still asks for a retry (429/503), as the OpenTelemetry Collector's exporters do (retry_on_failure.max_elapsed_time, 300 s by default); it counts as an error. 0 retries for ever.")
    var maxRetrySeconds = 300.0
    @Flag(help: "Send nothing: time each decode stage on this thread over the same bodies (issue 7's physical limit) and print one JSON line.")
    var decodeBench = false
    @Flag(help: "Send nothing: decode, fold into a real SQLite store and export the JSON lines in this process, --rounds times from an empty store, and print the least CPU time a span as one JSON line.")
    var pipelineBench = false
    @Option(help: "Rounds of --pipeline-bench.") var rounds = 5
    @Flag(help: "With --pipeline-bench: also report, for the last round, the µs a span that SQLite spent running each statement (its sqlite3_step calls on the thread CPU clock, and each transaction's own BEGIN and COMMIT), with how many times each ran; the clock reads add CPU of their own, so compare rounds without it.")
    var sqlProfile = false

    func run() async throws {
        if decodeBench { return try runDecodeBench() }
        if pipelineBench { return try runPipelineBench(rounds: rounds) }
        let start = timeBase()
        let built = (0..<requests).map { makeBody(request: $0, start: start) }
        let bodies = built.map(\.body)
        let wireBytes = bodies.reduce(0) { $0 + $1.count }
        let extraHeaders = try headers.map { line -> (name: String, value: String) in
            guard let colon = line.firstIndex(of: ":") else { throw ValidationError("--header takes \"Name: value\", got \(line)") }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let ackLog = try ackedSpans.map { try AckLog(path: $0) }

        let transport: any ExportTransport
        if let grpc {
            guard let (host, port) = OTLPReceiverConfig.split(grpc) else { throw ValidationError("--grpc takes host:port, got \(grpc)") }
            transport = try GRPCExportTransport(host: host, port: port, connections: connections, gzip: !noGzip)
        } else {
            transport = HTTPExportTransport(url: url, connections: connections, gzip: !noGzip, headers: extraHeaders)
        }

        let next = Counter()
        let started = ContinuousClock.now
        let interval: Duration? = rate > 0 ? .nanoseconds(Int64(Double(batch) / rate * 1e9)) : nil
        let results = try await withThrowingTaskGroup(of: WorkerResult.self) { group in
            for worker in 0..<connections {
                group.addTask {
                    var result = WorkerResult()
                    while let index = next.take(below: bodies.count) {
                        if duration > 0 && ContinuousClock.now - started > .milliseconds(Int64(duration * 1000)) { break }
                        if let interval {
                            // Open loop: request i leaves at started + i·interval,
                            // so a slow ack does not slow the offered load.
                            let due = started + interval * index
                            if ContinuousClock.now < due { try await Task.sleep(until: due, clock: .continuous) }
                        }
                        let sent = ContinuousClock.now
                        // Like a real OTLP exporter: 429/503 (RESOURCE_EXHAUSTED,
                        // UNAVAILABLE) are retried after the server's delay;
                        // the ack latency counts from the first try.
                        retrying: while true {
                            do {
                                let answer = try await transport.export(bodies[index], worker: worker)
                                result.statuses[answer.status, default: 0] += 1
                                if let wait = answer.retryAfterSeconds {
                                    // A server that keeps refusing would otherwise hold the
                                    // run (and a bench waiting on it) for ever.
                                    let delay = Duration.seconds(wait)
                                    if maxRetrySeconds > 0, ContinuousClock.now - sent + delay > .seconds(maxRetrySeconds) {
                                        result.errors += 1
                                        result.gaveUp += 1
                                        break retrying
                                    }
                                    result.retries += 1
                                    try await Task.sleep(for: delay)
                                    continue retrying
                                }
                                let latency = ContinuousClock.now - sent
                                result.latenciesMicros.append(latency.inSeconds * 1e6)
                                if answer.acknowledged {
                                    result.ackedSpans += batch
                                    ackLog?.append(built[index].ids)
                                }
                            } catch {
                                result.errors += 1
                            }
                            break
                        }
                    }
                    return result
                }
            }
            var all = WorkerResult()
            for try await r in group { all.merge(r) }
            return all
        }
        let elapsed = ContinuousClock.now - started
        try await transport.shutdown()
        let seconds = elapsed.inSeconds
        let sorted = results.latenciesMicros.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)] / 1000
        }
        let summary: JSONValue = .object([
            "requests": .int(Int64(requests)),
            "spansPerRequest": .int(Int64(batch)),
            "ackedSpans": .int(Int64(results.ackedSpans)),
            "seconds": .double(seconds),
            "ackedSpansPerSecond": .double(Double(results.ackedSpans) / seconds),
            "ackP50Ms": .double(percentile(0.50)),
            "ackP99Ms": .double(percentile(0.99)),
            "wireBytes": .int(Int64(wireBytes)),
            "errors": .int(Int64(results.errors)),
            "retries": .int(Int64(results.retries)),
            "gaveUp": .int(Int64(results.gaveUp)),
            "statuses": .object(results.statuses.mapValues { JSONValue.int(Int64($0)) }),
        ])
        print(JSONWriter.serialize(summary))
    }

    /// The `--requests` bodies the benches work on, as sent (gzip unless
    /// `--no-gzip`) and as the receiver hands them on (inflated).
    func benchBodies() throws -> (sent: [[UInt8]], raw: [[UInt8]]) {
        let start = timeBase()
        let sent = (0..<requests).map { makeBody(request: $0, start: start).body }
        return (sent, try noGzip ? sent : sent.map(Self.gunzip))
    }

    static func gunzip(_ body: [UInt8]) throws -> [UInt8] {
        let inflater = StreamingInflater(coding: .gzip, limit: Int.max)
        try inflater.feed(body)
        return try inflater.finish()
    }

    /// One core, no HTTP: gunzip, the collector's decode (straight from the
    /// wire into Swift values), and for comparison the reference decoder's
    /// steps (the nesting pre-check, protobuf-c unpack alone, and unpack
    /// plus copy into Swift values), each over every body `passes` times.
    /// MB/s counts uncompressed protobuf bytes.
    func runDecodeBench(passes: Int = 5) throws {
        let (gz, raw) = try benchBodies()
        let spans = Double(requests * batch * passes)
        let megabytes = Double(raw.reduce(0) { $0 + $1.count } * passes) / 1e6
        func time(_ stage: String, _ work: () throws -> Void) rethrows -> (String, JSONValue) {
            let start = ContinuousClock.now
            for _ in 0..<passes { try work() }
            let d = ContinuousClock.now - start
            let seconds = d.inSeconds
            return (stage, .object([
                "spansPerSecond": .double((spans / seconds).rounded()), "megabytesPerSecond": .double((megabytes / seconds * 10).rounded() / 10),
                "seconds": .double(seconds),
            ]))
        }
        var checksum = 0
        let stages: [(String, JSONValue)] = try [
            time("gunzip") {
                for body in gz where !noGzip { checksum &+= try Self.gunzip(body).count }
            },
            time("decodeToSwift") { for body in raw { checksum &+= try OTLPDecoder.decode(body, encoding: .protobuf).batch.spanCount } },
            time("nestingCheck") { for body in raw { checksum &+= ProtobufNestingCheck.withinLimit(body) ? 1 : 0 } },
            time("protobufCUnpack") { for body in raw { checksum &+= ProtobufCDecoder.unpackOnly(body) ? 1 : 0 } },
            time("protobufCDecodeToSwift") { for body in raw { checksum &+= try ProtobufCDecoder.decode(body).batch.spanCount } },
        ]
        // The fold (map, fold, render; the store discards what it is
        // given) without and with cost inference (issue 22), alternated over
        // the same decoded batches so that the machine's drift falls on both
        // alike; spans per CPU-second are each side's best round.
        // 50 requests a round: 41 short paired rounds measure the ratio
        // better than a few long ones.
        let batches = try raw.prefix(50).map { try OTLPDecoder.decode($0, encoding: .protobuf).batch }
        func fold(_ pricer: ModelPricer?) throws -> Duration {
            let folder = TraceFolder(store: DiscardingFoldStore(), limits: MetadataLimits(), maxOpenTraces: 20_000, logger: Logger(label: "bench"), pricer: pricer)
            let start = processCPUTime()
            for b in batches {
                var batch = b
                _ = folder.prepare(&batch)
                checksum &+= try folder.consume(batch).count
            }
            return processCPUTime() - start
        }
        let pricer = ModelPricer(ModelDefinition.builtIns)
        // The ratio is a median of paired rounds: each round folds the
        // batches without and with inference back to back (each first in
        // every other round), so a slower stretch of the machine falls on
        // both halves of a pair. The least time of each side alone moved
        // by ±5 % from one process to the next on this shared machine.
        var best = (plain: Duration.seconds(1e9), priced: Duration.seconds(1e9))
        var ratios = [Double]()
        for round in 0..<(passes * 8 + 1) {
            let plain: Duration, priced: Duration
            if round % 2 == 0 {
                plain = try fold(nil)
                priced = try fold(pricer)
            } else {
                priced = try fold(pricer)
                plain = try fold(nil)
            }
            best = (min(best.plain, plain), min(best.priced, priced))
            ratios.append(priced.inSeconds / plain.inSeconds)
        }
        ratios.sort()
        let folded = Double(batches.count * batch)
        let foldStage: JSONValue = .object([
            "spansPerCpuSecond": .double((folded / best.plain.inSeconds).rounded()),
            "spansPerCpuSecondPriced": .double((folded / best.priced.inSeconds).rounded()),
            "pricedCostRatio": .double((ratios[ratios.count / 2] * 1000).rounded() / 1000),
            "pricedCostRatioQuartiles": .array([ratios[ratios.count / 4], ratios[ratios.count * 3 / 4]].map { .double(($0 * 1000).rounded() / 1000) }),
        ])
        print(JSONWriter.serialize(.object([
            "requests": .int(Int64(requests)), "spansPerRequest": .int(Int64(batch)), "passes": .int(Int64(passes)),
            "uncompressedBytesPerSpan": .double((megabytes * 1e6 / spans).rounded()),
            "stages": .object(Dictionary(uniqueKeysWithValues: stages)), "fold": foldStage, "checksum": .int(Int64(checksum)),
        ])))
    }

    /// splitmix64's finalizer over `a` and `b`: well-spread 64-bit values
    /// from a seed and a counter.
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var z = a &+ b &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Where request 0's spans start, and how far each request's start
    /// moves on. From the wall clock, runs one after another against one
    /// store take later times than the spans already stored, as a tracer's
    /// would, and go into the end of each index by time. 10 ms a request
    /// stays behind the wall clock below 100 requests a second (the
    /// unpaced load sends about 40).
    func timeBase() -> (base: UInt64, step: UInt64) {
        wallClockTimes ? (UInt64(Date().timeIntervalSince1970 * 1e9), 10_000_000) : (1_700_000_000_000_000_000, 1_000_000_000)
    }

    func makeBody(request: Int, start: (base: UInt64, step: UInt64)) -> (body: [UInt8], ids: String) {
        var spans = [Span]()
        spans.reserveCapacity(batch)
        let base = start.base + UInt64(request) * start.step
        var parent: SpanID?
        for i in 0..<batch {
            let traceIndex = UInt64(i / spansPerTrace)
            let traceID: TraceID, spanID: SpanID
            if randomIds {
                // Tracers draw ids at random, so a store's indexes by id take
                // them at random places, where counting ids only append.
                let t = Self.mix(seed, UInt64(request) << 24 | traceIndex)
                traceID = TraceID(high: Self.mix(t, 1), low: Self.mix(t, 2))
                spanID = SpanID(Self.mix(Self.mix(seed, UInt64(request) << 24 | UInt64(i)), 3) | 1)
            } else {
                traceID = TraceID(high: seed, low: UInt64(request) << 24 | traceIndex)
                spanID = SpanID(UInt64(truncatingIfNeeded: seed) << 40 ^ UInt64(request) << 16 | UInt64(i + 1))
            }
            if i % spansPerTrace == 0 {
                parent = rootless ? SpanID(Self.mix(Self.mix(seed, UInt64(request) << 24 | traceIndex), 4) | 1) : nil
            }
            let input = #"{"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise order \#(request)-\#(i) for the customer, please."}]}"#
            spans.append(
                Span(
                    traceID: traceID, spanID: spanID, parentSpanID: parent, name: i % spansPerTrace == 0 ? "handle-request" : "step-\(i % spansPerTrace)",
                    kind: i % spansPerTrace == 0 ? .server : .internal,
                    startTimeUnixNano: base + UInt64(i) * 1000, endTimeUnixNano: base + UInt64(i) * 1000 + 5_000_000,
                    attributes: [
                        Attribute("langfuse.trace.metadata.tenant", .string("acme-\(traceIndex % 7)")),
                        Attribute("langfuse.trace.metadata.plan", .string("\"pro\"")),
                        Attribute("langfuse.trace.metadata.region", .string("eu-west-1")),
                        Attribute("langfuse.observation.metadata.step", .string(String(i % spansPerTrace))),
                        Attribute("langfuse.observation.metadata.cached", .string("false")),
                        Attribute("langfuse.observation.input", .string(input)),
                        Attribute("langfuse.observation.type", .string(i % spansPerTrace == 3 ? "generation" : "span")),
                        Attribute("gen_ai.request.model", .string("gpt-4o-mini")),
                        Attribute("gen_ai.usage.input_tokens", .int(Int64(100 + i % 50))),
                        Attribute("user.id", .string("user-\(traceIndex % 100)")),
                    ]
                )
            )
            if i % spansPerTrace == 0 { parent = spanID }
        }
        let batchValue = SpanBatch(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [Attribute("service.name", .string("loadgen")), Attribute("deployment.environment", .string("bench"))]),
                scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "langfuse-sdk", version: "5.0.4"), spans: spans)]
            )
        ])
        let raw = OTLPProtobufEncoder.encode(batchValue)
        let ids = spans.map { "\($0.traceID.hex) \($0.spanID.hex)\n" }.joined()
        return (noGzip || grpc != nil ? raw : Gzip.compress(raw), ids)
    }
}

struct WorkerResult: Sendable {
    var latenciesMicros: [Double] = []
    /// HTTP status codes, or gRPC status names.
    var statuses: [String: Int] = [:]
    var ackedSpans = 0
    var errors = 0
    var retries = 0
    /// Requests given up after `--max-retry-seconds` of retries (also errors).
    var gaveUp = 0

    mutating func merge(_ other: WorkerResult) {
        retries += other.retries
        gaveUp += other.gaveUp
        latenciesMicros += other.latenciesMicros
        statuses.merge(other.statuses, uniquingKeysWith: +)
        ackedSpans += other.ackedSpans
        errors += other.errors
    }
}

/// The acknowledged span ids, appended with one write(2) per request so a
/// reader sees whole lines even if this process is killed.
final class AckLog: @unchecked Sendable {
    private let lock = NSLock()
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot open \(path)") }
    }

    func append(_ lines: String) {
        lock.lock()
        defer { lock.unlock() }
        var bytes = Array(lines.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }
}

/// Hands out request indexes to the workers.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// A store that keeps only each trace's last sequence number: the fold's
/// own CPU, without the database's, for `--decode-bench`.
final class DiscardingFoldStore: FoldStore, FoldTransaction, @unchecked Sendable {
    private var last = [TraceID: Int64]()

    func transaction<T>(locking traces: [TraceID], durable: Bool, _ body: (any FoldTransaction) throws -> T) throws -> T { try body(self) }
    func sync() throws {}
    func deleteTraces(startedBefore cutoff: UInt64) throws -> Int { 0 }

    func stored(_ traces: [TraceID]) throws -> [TraceID: StoredTrace] {
        var out = [TraceID: StoredTrace]()
        for id in traces { out[id] = last[id].map { StoredTrace(lastSeq: $0, generation: 0) } }
        return out
    }
    func history(of trace: TraceID, after seq: Int64) throws -> [(seq: Int64, event: TraceEvent)] { [] }
    func spans(of trace: TraceID, ids: [SpanID]) throws -> [StoredSpan] { [] }
    func write(_ commit: FoldCommit) throws -> [TraceID: Int64] {
        for (id, seq) in commit.lastSeq { last[id] = seq }
        return [:]
    }
    func delete(_ traces: [TraceID]) throws -> [TraceID] { [] }
}
