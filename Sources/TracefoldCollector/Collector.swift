import Compression
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import OTLP
import TracefoldConfig
import TracefoldExport
import TracefoldFold
import TracefoldIntake
import TracefoldModel
import TracefoldQuery
import TracefoldStore
import TracefoldTelemetry

/// Assembles the pipeline from a config: receiver → intake log → pipeline →
/// exporters, plus the HTTP server that fronts it. Like otelcol's `service`.
public final class Collector: Sendable {
    public let config: CollectorConfig
    let logger: Logger
    let log: IntakeLog
    let pipeline: SpanPipeline
    /// The store (SQLite, or PostgreSQL when configured), when the fold runs.
    public let store: (any RecordStore)?
    let folder: TraceFolder?
    let recordExporter: JSONLRecordExporter?
    /// The collector's own metrics, served at `/metrics`.
    public let metrics: CollectorMetrics
    let memoryLimiter: MemoryLimiter?

    /// Opens the data directory and the exporters, and replays any intake-log
    /// records that the exporters may not have (after a crash).
    public init(config: CollectorConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        let metrics = CollectorMetrics()
        self.metrics = metrics
        memoryLimiter = config.activeMemoryLimiter.map { MemoryLimiter(config: $0, logger: logger) }
        memoryLimiter?.start()
        try FileManager.default.createDirectory(atPath: config.store.directory, withIntermediateDirectories: true)

        var sinks = [any SpanSink]()
        if let fold = config.activeFold {
            let store: any RecordStore = try config.store.postgresURL.map { try PostgresStore(url: $0, logger: logger) }
                ?? SQLiteStore(path: config.store.resolvedSQLitePath)
            self.store = store
            let folder = TraceFolder(
                store: store, limits: MetadataLimits(maxUpdateBytes: fold.maxUpdateBytes, maxTraceBytes: fold.maxTraceMetadataBytes),
                maxOpenTraces: fold.maxOpenTraces, retention: config.store.retention, logger: logger, metrics: metrics
            )
            self.folder = folder
            sinks.append(folder)
            recordExporter = try config.activeJSONL.map { try JSONLRecordExporter(config: $0, store: store, logger: logger, metrics: metrics) }
        } else {
            store = nil
            folder = nil
            recordExporter = nil
        }
        if let spansConfig = config.activeSpansJSONL {
            sinks.append(try SpansJSONLExporter(config: spansConfig, logger: logger))
        }

        let log = try IntakeLog(directory: config.store.intakeLogDirectory, segmentSize: config.store.segmentSize, logger: logger)
        self.log = log
        let checkpoint = CheckpointFile(path: config.store.intakeLogDirectory + "/checkpoint")
        let syncInterval = [config.activeSpansJSONL?.flushInterval, config.activeJSONL?.flushInterval].compactMap { $0 }.min() ?? .seconds(1)
        pipeline = SpanPipeline(sinks: sinks, checkpoint: checkpoint, syncInterval: syncInterval, capacity: config.store.maxPendingSpans, logger: logger) { lsn in
            log.discard(through: lsn)
        }
        pipeline.start()

        let from = checkpoint.read()
        var replayed = 0
        try log.replay(after: from) { record in
            replayed += 1
            pipeline.enqueue(try Self.decode(record), lsn: record.lsn)
        }
        if replayed > 0 {
            logger.notice("replayed intake log records past the checkpoint", metadata: ["records": "\(replayed)", "checkpoint": "\(from)"])
        }
        if config.store.durability == .fsync {
            let pipeline = self.pipeline
            try log.start { batch, lsn, consumed in pipeline.enqueue(batch, lsn: lsn, completion: consumed) }
        }
        recordExporter?.start()
    }

    /// Decodes a logged request exactly as the receiver did when it accepted it.
    static func decode(_ record: IntakeLog.Record) throws -> SpanBatch {
        let inflater = StreamingInflater(coding: record.coding, limit: Int.max)
        try inflater.feed(record.body)
        var batch = try OTLPDecoder.decode(try inflater.finish(), encoding: record.encoding).batch
        batch.receivedAtUnixNano = record.receivedAtUnixNano
        RequestMetadata.stamp(&batch, with: record.context)
        return batch
    }

    var committer: any IntakeCommitter {
        switch config.store.durability {
        case .fsync: LogCommitter(log: log, pipeline: pipeline) { [recordExporter] in recordExporter?.isFailing ?? false }
        case .none: DirectCommitter(pipeline: pipeline)
        }
    }

    /// The responder for all of tracefold's HTTP routes.
    public func makeResponder() -> some HTTPResponder<BasicRequestContext> {
        let router = Router()
        router.get("/health/live") { _, _ in "ok" }
        let health = HealthCheck(
            pipeline: pipeline, store: store, exporter: recordExporter, memoryLimiter: memoryLimiter,
            directories: [config.store.directory, config.activeJSONL?.directory].compactMap { $0 }, minimumFreeBytes: 1 << 20
        )
        router.get("/health/ready") { _, _ -> Response in
            let problems = await health.problems()
            guard !problems.isEmpty else { return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "ok"))) }
            let body = JSONWriter.serialize(.object(["status": .string("not ready"), "problems": .array(problems.map(JSONValue.string))]))
            return Response(status: .serviceUnavailable, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        }
        let metrics = self.metrics
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
            )
        }
        if let store { QueryAPI(store: store).register(on: router) }
        if let folder { MetadataWriteAPI(folder: folder).register(on: router) }
        let receiver = OTLPHTTPReceiver(config: config.receiver, metadata: config.metadata, committer: committer, logger: logger, metrics: metrics, memoryLimiter: memoryLimiter
        )
        return FrontDoor(
            receiver: receiver, authenticator: RequestAuthenticator(config: config.receiver.auth), router: router.buildResponder(), metrics: metrics
        )
    }

    /// The HTTP application; `port` overrides the configured one (tests use 0).
    public func makeApplication(port: Int? = nil, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            responder: makeResponder(),
            server: .http1(configuration: .init(idleTimeout: config.receiver.idleTimeout.timeAmount)),
            configuration: ApplicationConfiguration(
                address: .hostname(config.receiver.host, port: port ?? config.receiver.port),
                serverName: "tracefold"
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// Runs until SIGTERM/SIGINT, then writes out everything pending, all
    /// within `service.shutdown_timeout` of the signal. Returns false when the
    /// bound cut the write-out short; what was left is in the intake log.
    @discardableResult
    public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws -> Bool {
        logStartup()
        let app = makeApplication(onServerRunning: onServerRunning)
        let signalled = ShutdownSignalClock()
        var group = ServiceGroupConfiguration(
            services: [
                .init(service: app),
                .init(service: signalled, successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        )
        // The server stops accepting connections at once and gets the bound
        // to finish the requests in flight.
        group.maximumGracefulShutdownDuration = config.service.shutdownTimeout
        try await ServiceGroup(configuration: group).run()
        let deadline = (signalled.instant ?? .now) + config.service.shutdownTimeout
        return shutdown(before: deadline)
    }

    /// Like `shutdown()`, but gives up waiting at `deadline`. What is not
    /// written by then is in the fsynced intake log (durability fsync) or
    /// the store's export marks, and the next start finishes it.
    public func shutdown(before deadline: ContinuousClock.Instant) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            shutdown()
            done.signal()
        }
        thread.name = "tracefold-shutdown"
        thread.start()
        let remaining = max(.zero, deadline - .now)
        if done.wait(timeout: .now() + remaining.inSeconds) == .success { return true }
        logger.error(
            config.store.durability == .fsync
                ? "shutdown_timeout reached before everything was written; the rest is in the intake log and is replayed at the next start"
                : "shutdown_timeout reached before everything was written; with durability none, spans still queued are lost",
            metadata: ["shutdown_timeout": "\(config.service.shutdownTimeout)", "queued_spans": "\(pipeline.queuedSpans)"]
        )
        return false
    }

    /// Blocks until everything accepted so far has reached the exporters and
    /// been synced.
    public func drain() { pipeline.drain() }

    /// Stops intake, drains the pipeline, syncs and closes the exporters.
    public func shutdown() {
        memoryLimiter?.stop()
        log.close()
        pipeline.shutdown()
        recordExporter?.shutdown()
        store?.close()
        logger.notice("tracefold stopped; everything accepted is written")
    }

    func logStartup() {
        let r = config.receiver
        logger.notice(
            "tracefold starting",
            metadata: [
                "endpoint": "http://\(r.endpoint)",
                "store": "\(store?.location ?? "none")",
                "export": "\(config.activeJSONL?.directory ?? "off")",
                "intake_log": "\(config.store.intakeLogDirectory)",
                "exporters": "\(config.service.exporters.joined(separator: ","))",
                "spans_jsonl": "\(config.activeSpansJSONL?.directory ?? "off")",
                "durability": "\(config.store.durability.rawValue)",
                "auth": "\(r.auth.isEnabled ? "on" : "off")",
            ]
        )
        if config.store.durability == .none {
            logger.warning("durability is none: acknowledged spans are lost on a crash; use this for benchmarks only")
        }
        for name in config.metadata.deniedHeaders {
            logger.warning(
                "HEADERS_TO_METADATA names a header that is never copied into metadata, because it carries credentials",
                metadata: ["header": "\(name)"]
            )
        }
        if !config.metadata.headersToMetadata.isEmpty {
            logger.info("request headers copied into metadata", metadata: ["headers": "\(config.metadata.headersToMetadata.joined(separator: ","))"])
        }
        if !r.auth.isEnabled && !r.isLoopback {
            logger.warning("auth is off and the receiver listens beyond loopback; configure receivers.otlp.protocols.http.auth")
        }
    }
}

/// Notes when graceful shutdown began (the signal), so the write-out after
/// the server has stopped is bounded from the signal, not from then.
final class ShutdownSignalClock: Service, Sendable {
    private let recorded = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    var instant: ContinuousClock.Instant? { recorded.withLockedValue { $0 } }

    func run() async throws {
        try? await gracefulShutdown()
        recorded.withLockedValue { $0 = .now }
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
