import Compression
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import GRPCCore
import GRPCNIOTransportHTTP2
import OTLP
import TracefoldConfig
import TracefoldExplorer
import TracefoldExport
import TracefoldFold
import TracefoldIntake
import TracefoldMapping
import TracefoldModel
import TracefoldQuery
import TracefoldStore
import TracefoldTelemetry

/// Assembles the pipeline from a config: receiver → intake log → pipeline →
/// exporters, plus the HTTP server that fronts it. Like otelcol's `service`.
public final class Collector: Sendable {
    /// tracefold's version, which `GET /api/public/health` reports.
    public static let version = "0.2.0"
    public let config: CollectorConfig
    let logger: Logger
    let log: IntakeLog
    let pipeline: SpanPipeline
    /// The store (SQLite, or PostgreSQL when configured), when the fold runs.
    public let store: (any RecordStore)?
    let folder: TraceFolder?
    /// Model prices for cost inference and `/api/public/models` (with the fold).
    let models: ModelCatalog?
    let recordExporter: JSONLRecordExporter?
    /// The collector's own metrics, served at `/metrics`.
    public let metrics: CollectorMetrics
    let memoryLimiter: MemoryLimiter?
    /// Shared by the HTTP and gRPC receivers.
    let rateLimiter: SpanRateLimiter
    /// Each receiver's TLS credentials, when it has `tls`; re-read at SIGHUP.
    let httpTLS: ServerTLS?
    let grpcTLS: ServerTLS?
    /// Whether the gRPC socket is bound, for `/health/ready`.
    let grpcStatus: ListenerStatus?

    /// Opens the data directory and the exporters, and replays any intake-log
    /// records that the exporters may not have (after a crash).
    public init(config: CollectorConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        let metrics = CollectorMetrics()
        self.metrics = metrics
        memoryLimiter = config.activeMemoryLimiter.map { MemoryLimiter(config: $0, logger: logger) }
        memoryLimiter?.start()
        rateLimiter = SpanRateLimiter(auth: config.receiver.auth, defaultLimit: config.receiver.rateLimit)
        // Read before anything opens, so bad certificate files stop the
        // start with the config error that names them.
        httpTLS = try config.receiver.tls.map { tls throws(ConfigError) in try ServerTLS(config: tls, applicationProtocols: ["http/1.1"]) }
        grpcStatus = config.grpc.map { ListenerStatus(name: "OTLP/gRPC (\($0.endpoint))") }
        grpcTLS = try config.grpc?.tls.map { tls throws(ConfigError) in try ServerTLS(config: tls, applicationProtocols: ["h2"]) }
        try FileManager.default.createDirectory(atPath: config.store.directory, withIntermediateDirectories: true)

        var sinks = [any SpanSink]()
        if let fold = config.activeFold {
            // The records the fold commits are kept for the JSONL exporter
            // only when there is one.
            let exportCacheBudget = config.activeJSONL == nil ? nil : ExportCache.defaultBudget
            let store: any RecordStore = try config.store.postgresURL.map {
                try PostgresStore(url: $0, requestTimeout: config.store.postgresRequestTimeout, exportCacheBudget: exportCacheBudget, logger: logger)
            }
                ?? SQLiteStore(path: config.store.resolvedSQLitePath, exportCacheBudget: exportCacheBudget)
            self.store = store
            // The exporter's cache saves reads, nothing more: under memory
            // pressure it goes, and stays empty until the pressure ends.
            if let cache = store.exportCache { memoryLimiter?.onPressureChange { cache.pause($0) } }
            let models = try ModelCatalog(
                store: store,
                configured: fold.models.map {
                    ModelDefinition(id: $0.id, modelName: $0.modelName, matchPattern: $0.matchPattern, startUnixNano: $0.startUnixNano, unit: $0.unit, prices: $0.prices)
                }
            )
            self.models = models
            let folder = TraceFolder(
                store: store, limits: MetadataLimits(maxUpdateBytes: fold.maxUpdateBytes, maxTraceBytes: fold.maxTraceMetadataBytes),
                maxOpenTraces: fold.maxOpenTraces, settledTraceSpans: TraceFolder.releasedSettledTraceSpans, retention: config.store.retention,
                logger: logger, metrics: metrics, pricer: models.pricer
            )
            self.folder = folder
            sinks.append(folder)
            recordExporter = try config.activeJSONL.map { try JSONLRecordExporter(config: $0, store: store, logger: logger, metrics: metrics) }
        } else {
            store = nil
            models = nil
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
        let pipeline = SpanPipeline(sinks: sinks, checkpoint: checkpoint, syncInterval: syncInterval, capacity: config.store.maxPendingSpans, logger: logger,
            roomWait: config.store.maxPendingWait
        ) { lsn in
            log.discard(through: lsn)
        }
        self.pipeline = pipeline
        // Like the export cache: under memory pressure the fold takes one batch at a time.
        memoryLimiter?.onPressureChange { pipeline.memoryPressure($0) }
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
            pipeline: pipeline, store: store, exporter: recordExporter, memoryLimiter: memoryLimiter, listeners: [grpcStatus].compactMap { $0 },
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
        // Acks come at the intake log's commit, before the fold: a read waits
        // (at most the visibility bound, SPEC §7.6) for what was acked before.
        let pipeline = self.pipeline
        let awaitVisibility: @Sendable () -> Void = { pipeline.waitForDelivery(timeout: Self.visibilityBound) }
        let project = config.query.project
        if let store {
            QueryAPI(store: store, projectID: project, awaitVisibility: awaitVisibility, allEntries: { [folder] in try folder?.allEntries(of: $0) })
                .register(on: router)
            ScoresAPI(store: store, projectID: project, awaitVisibility: awaitVisibility).register(on: router)
            if config.query.explorer { Explorer().register(on: router) }
        }
        if let folder {
            MetadataWriteAPI(folder: folder, awaitVisibility: awaitVisibility).register(on: router)
            TraceDeleteAPI(folder: folder, awaitVisibility: awaitVisibility).register(on: router)
        }
        if let models { ModelsAPI(catalog: models).register(on: router) }
        let authenticator = RequestAuthenticator(config: config.receiver.auth)
        let workspaces = Dictionary(config.receiver.auth.apiKeys.compactMap { k in k.workspace.map { (k.publicKey, $0) } }) { a, _ in a }
        ProjectsAPI(
            version: Self.version,
            project: { authorization in
                guard case .allowed(let key?) = authenticator.authenticate(authorization: authorization) else { return project }
                return workspaces[key] ?? project
            },
            storeAnswers: { [store] in
                guard let store else { return true }
                return (try? await NIOThreadPool.singleton.runIfActive { try store.read { try $0.rows("SELECT 1", []) } }) != nil
            }
        ).register(on: router)
        let receiver = OTLPHTTPReceiver(
            config: config.receiver, metadata: config.metadata, committer: committer, logger: logger, metrics: metrics, memoryLimiter: memoryLimiter,
            rateLimiter: rateLimiter
        )
        return FrontDoor(receiver: receiver, authenticator: authenticator, router: router.buildResponder(), metrics: metrics)
    }

    /// The HTTP application; `port` overrides the configured one (tests use 0).
    public func makeApplication(port: Int? = nil, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            responder: makeResponder(),
            server: .http1(configuration: .init(idleTimeout: config.receiver.idleTimeout.timeAmount), tls: httpTLS),
            configuration: ApplicationConfiguration(
                address: .hostname(config.receiver.host, port: port ?? config.receiver.port),
                serverName: "tracefold"
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// The OTLP/gRPC server, when `protocols.grpc` is configured; `port`
    /// overrides the configured one.
    public func makeGRPCServer(port: Int? = nil) -> GRPCServer<HTTP2ServerTransport.Custom<GRPCListener>>? {
        guard let grpc = config.grpc else { return nil }
        let intake = IntakePath(
            transport: "grpc", auth: config.receiver.auth, rateLimit: config.receiver.rateLimit, metadata: config.metadata, committer: committer, logger: logger,
            metrics: metrics, memoryLimiter: memoryLimiter, rateLimiter: rateLimiter
        )
        var transportConfig = HTTP2ServerTransport.Custom<GRPCListener>.Config.defaults
        transportConfig.rpc.maxRequestPayloadSize = OTLPGRPCReceiver.transportLimit(maxMessageSize: grpc.maxRecvMsgSize)
        transportConfig.compression.enabledAlgorithms = [.gzip, .deflate]
        let transport = HTTP2ServerTransport.Custom(
            listenerFactory: GRPCListener(host: grpc.host, port: port ?? grpc.port, tls: grpcTLS, status: grpcStatus), config: transportConfig
        )
        return GRPCServer(transport: transport, services: [OTLPGRPCReceiver(intake: intake, maxMessageSize: grpc.maxRecvMsgSize)])
    }

    /// Runs until SIGTERM/SIGINT, then writes out everything pending, all
    /// within `service.shutdown_timeout` of the signal (SPEC §9). The bound
    /// is kept by a watchdog armed at the signal: whatever still runs when it
    /// passes (a request handler, the pipeline, a store that does not
    /// answer), the process exits then, 0 with durability fsync (what was
    /// acknowledged is in the fsynced intake log and replays at the next
    /// start) and 1 with durability none (queued spans are lost).
    public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        logStartup()
        let hangup = CertificateReloadSignal(tls: [httpTLS, grpcTLS].compactMap { $0 }, logger: logger)
        defer { hangup?.cancel() }
        let app = makeApplication(onServerRunning: onServerRunning)
        let watchdog = ShutdownWatchdog(
            bound: config.service.shutdownTimeout, exitCode: config.store.durability == .none ? 1 : 0, logger: logger
        ) { [self] in
            (stage: shutdownStage.withLockedValue { $0 }, queuedSpans: pipeline.queuedSpans)
        }
        // The signal arms the watchdog on a dispatch queue of its own: the
        // service group sees the signal through a task, and under load that
        // task waits behind the request handlers on the cooperative pool,
        // which would start the bound late. The group's own notice still
        // arms it when shutdown begins for another reason.
        // It also ends the waits for room in the pipeline's queue
        // (`store.max_pending_wait`): the requests in flight should finish
        // within the bound, not wait out their turn.
        let shutdownBegins: @Sendable () -> Void = { [pipeline] in
            watchdog.arm()
            pipeline.endRoomWaits()
        }
        let signalArm = ShutdownSignalArm(onSignal: shutdownBegins)
        defer { signalArm.cancel() }
        let signalled = ShutdownSignalClock(onSignal: shutdownBegins)
        let http = "OTLP/HTTP and the query API on \(config.receiver.endpoint)"
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ReceiverService(inner: app, what: http)),
            .init(service: signalled, successTerminationBehavior: .ignore),
        ]
        if let grpc = makeGRPCServer(), let endpoint = config.grpc?.endpoint {
            services.append(.init(service: ReceiverService(inner: GRPCService(server: grpc), what: "OTLP/gRPC on \(endpoint)")))
        }
        var group = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        )
        // The server stops accepting connections at once and gets the bound
        // to finish the requests in flight; the watchdog keeps the total.
        group.maximumGracefulShutdownDuration = config.service.shutdownTimeout
        setStage("finishing the requests in flight")
        // A receiver that cannot serve (its port is taken) ends the group,
        // as in the Collector; what the pipeline holds (a replay of the
        // intake log) is still written out before the error is reported.
        var failure: (any Error)?
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            failure = error
        }
        // On a thread of its own: the write-out blocks (fsync, store calls),
        // and PostgreSQL calls wait for tasks that need the cooperative pool,
        // which a blocked pool thread could starve.
        let writeOut = ThreadRunner(name: "tracefold-shutdown")
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            writeOut.start { [self] in
                shutdown()
                done.resume()
            }
        }
        watchdog.disarm()
        if let failure { throw failure }
    }

    /// Blocks until everything accepted so far has reached the exporters and
    /// been synced.
    public func drain() { pipeline.drain() }

    /// SPEC §7.6: a span answered with 200 is visible within a second.
    static let visibilityBound = Duration.seconds(1)

    /// What shutdown is doing now, for the watchdog's message.
    private let shutdownStage = NIOLockedValueBox("running")

    private func setStage(_ stage: String) {
        shutdownStage.withLockedValue { $0 = stage }
        logger.debug("shutdown: \(stage)")
    }

    /// Stops intake, drains the pipeline, syncs and closes the exporters.
    public func shutdown() {
        setStage("stopping the memory limiter")
        memoryLimiter?.stop()
        setStage("closing the intake log")
        log.close()
        setStage("draining the pipeline into the store")
        pipeline.shutdown()
        setStage("writing the last JSONL records")
        recordExporter?.shutdown()
        setStage("closing the store")
        store?.close()
        setStage("stopped")
        logger.notice("tracefold stopped; everything accepted is written")
    }

    func logStartup() {
        let r = config.receiver
        logger.notice(
            "tracefold starting",
            metadata: [
                "endpoint": "\(r.tls == nil ? "http" : "https")://\(r.endpoint)",
                "grpc_endpoint": "\(config.grpc.map { "\($0.endpoint)\($0.tls == nil ? "" : " (TLS)")" } ?? "off")",
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

/// A receiver's server as a service of the collector's group, whose
/// failure says which receiver and address it was: "cannot serve OTLP/gRPC
/// on 127.0.0.1:4317: Address already in use", not a transport's error.
struct ReceiverService<Inner: Service>: Service {
    let inner: Inner
    let what: String

    func run() async throws {
        do {
            try await inner.run()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ReceiverFailure(what: what, cause: error)
        }
    }
}

public struct ReceiverFailure: Error, CustomStringConvertible {
    public let what: String
    public let cause: any Error

    public var description: String {
        // grpc-swift wraps the socket's error in its own.
        var root: any Error = cause
        while let wrapped = (root as? RuntimeError)?.cause { root = wrapped }
        return "cannot serve \(what): \(root)"
    }
}

/// SIGHUP re-reads the receivers' certificate files (Nginx and the
/// Collector's reload habit); connections already open are left alone.
final class CertificateReloadSignal {
    private let source: any DispatchSourceSignal

    /// nil when no receiver has TLS: SIGHUP then keeps its default action.
    init?(tls: [ServerTLS], logger: Logger) {
        guard !tls.isEmpty else { return nil }
        signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { tls.reloadAll(logger: logger) }
        source.resume()
    }

    func cancel() { source.cancel() }
}

/// Arms the watchdog the moment SIGTERM or SIGINT arrives, on a queue the
/// cooperative pool cannot starve. The service group keeps its own sources
/// for the same signals and still runs the graceful shutdown.
final class ShutdownSignalArm {
    private let sources: [any DispatchSourceSignal]

    init(onSignal: @escaping @Sendable () -> Void) {
        let queue = DispatchQueue(label: "tracefold-shutdown-signal")
        sources = [SIGTERM, SIGINT].map { number in
            // Not `signal(SIG_IGN)` on Linux: libdispatch installs its own
            // handler with a signal's first source, and one set after that
            // would discard the signal before the sources see it (as
            // swift-service-lifecycle does, only on Darwin).
            #if canImport(Darwin)
            signal(number, SIG_IGN)
            #endif
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler(handler: onSignal)
            source.resume()
            return source
        }
    }

    func cancel() { sources.forEach { $0.cancel() } }
}

/// Tells the watchdog when graceful shutdown began (the signal), so the
/// whole shutdown is bounded from the signal.
final class ShutdownSignalClock: Service, Sendable {
    private let onSignal: @Sendable () -> Void

    init(onSignal: @escaping @Sendable () -> Void) { self.onSignal = onSignal }

    func run() async throws {
        try? await gracefulShutdown()
        onSignal()
    }
}

/// Ends the process `bound` after it is armed unless disarmed first: the
/// promise of `service.shutdown_timeout` must hold whatever hangs, and a
/// thread blocked in a store call or a request handler that ignores
/// cancellation cannot be interrupted from Swift.
final class ShutdownWatchdog: Sendable {
    let bound: Duration
    let exitCode: Int32
    let logger: Logger
    let status: @Sendable () -> (stage: String, queuedSpans: Int)
    private let runner = ThreadRunner(name: "tracefold-shutdown-watchdog")
    /// 0 while armed or idle, 1 once disarmed.
    private let disarmed = ConditionLock(value: 0)
    private let armed = NIOLockedValueBox(false)

    init(bound: Duration, exitCode: Int32, logger: Logger, status: @escaping @Sendable () -> (stage: String, queuedSpans: Int)) {
        self.bound = bound
        self.exitCode = exitCode
        self.logger = logger
        self.status = status
    }

    func arm() {
        let first = armed.withLockedValue { was in
            defer { was = true }
            return !was
        }
        guard first else { return }
        let deadline = ContinuousClock.now + bound
        runner.start { [self] in
            let left = max(.zero, deadline - .now)
            if disarmed.lock(whenValue: 1, timeoutSeconds: left.inSeconds) {
                disarmed.unlock()
                return
            }
            let (stage, queued) = status()
            logger.error(
                exitCode == 0
                    ? "shutdown_timeout reached before everything was written; the rest is in the intake log and is replayed at the next start"
                    : "shutdown_timeout reached before everything was written; with durability none, spans still queued are lost",
                metadata: ["shutdown_timeout": "\(bound)", "stage": "\(stage)", "queued_spans": "\(queued)"]
            )
            // Not exit(): atexit handlers would run under threads that are
            // still working.
            _exit(exitCode)
        }
    }

    func disarm() {
        disarmed.lock()
        disarmed.unlock(withValue: 1)
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}

/// The gRPC server as a service of the collector's group: it serves until
/// the group's graceful shutdown, then stops taking calls and finishes the
/// ones in flight (within `shutdown_timeout`, like the HTTP server).
struct GRPCService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Custom<GRPCListener>>

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
