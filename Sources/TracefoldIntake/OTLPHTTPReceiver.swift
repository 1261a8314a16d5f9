import Compression
import Hummingbird
import Logging
import NIOCore
import OTLP
import TracefoldConfig
import TracefoldModel
import TracefoldTelemetry

/// How an accepted request is made durable before its 200: appended to the
/// fsynced intake log, or (durability `none`) handed straight on.
public protocol IntakeCommitter: Sendable {
    /// True while the stages behind intake hold as much as they may; the
    /// receiver then answers 503 with Retry-After instead of growing memory
    /// (SPEC §1.9).
    var isOverloaded: Bool { get }
    /// True once the stages behind intake can take another request: at
    /// once, or after waiting for them to make room (`store.max_pending_wait`);
    /// false when they stay full.
    func waitForRoom() async -> Bool
    /// True while a stage behind intake cannot keep data (store down, disk
    /// full); intake answers 503 rather than pile up what it cannot store.
    var isFailing: Bool { get }
    /// Returns once the batch is durable (SPEC §1.10: the fold and the store
    /// follow within the visibility bound), with the metadata updates the
    /// stages behind intake will drop whatever else arrives (SPEC §4.6).
    /// `context` is what the request's headers and credentials add (SPEC
    /// §5); the batch is already stamped with it, and the log keeps it so a
    /// replay stamps the same.
    func commit(body: [UInt8], encoding: OTLPEncoding, coding: ContentCoding, receivedAtUnixNano: UInt64, context: RequestMetadata?, batch: SpanBatch) async throws -> [String]
}

extension IntakeCommitter {
    public func waitForRoom() async -> Bool { !isOverloaded }
}

/// OTLP/HTTP trace intake, SPEC §1.1–1.8: content negotiation, streaming
/// decompression with a post-inflate cap, per-span validation with
/// `partial_success`, and `google.rpc.Status` errors in the request's
/// encoding.
public struct OTLPHTTPReceiver: Sendable {
    /// Both paths behave the same (SPEC §1.2).
    public static let paths: Set<String> = ["/v1/traces", "/api/public/otel/v1/traces"]

    let config: OTLPReceiverConfig
    /// What gRPC shares: credentials, refusals, decode, commit.
    let intake: IntakePath
    let logger: Logger
    let metrics: CollectorMetrics?
    let bodyBudget: InFlightBodyBudget

    public init(
        config: OTLPReceiverConfig, metadata: MetadataConfig = .init(), committer: any IntakeCommitter, logger: Logger,
        metrics: CollectorMetrics? = nil, memoryLimiter: MemoryLimiter? = nil, rateLimiter: SpanRateLimiter? = nil
    ) {
        self.config = config
        self.metrics = metrics
        let bodyBudget = InFlightBodyBudget(limit: config.maxInFlightBytes)
        self.bodyBudget = bodyBudget
        metrics?.sampledGauge(
            name: "tracefold_receiver_in_flight_bytes", help: "Request-body bytes being read or held at once (max_in_flight_bytes bounds it).",
            read: { bodyBudget.inUse }
        )
        intake = IntakePath(
            transport: "http", auth: config.auth, rateLimit: config.rateLimit, metadata: metadata, committer: committer, logger: logger, metrics: metrics,
            memoryLimiter: memoryLimiter, rateLimiter: rateLimiter
        )
        self.logger = logger
    }

    public func handle(_ request: Request) async throws -> Response {
        let response = try await answer(request)
        intake.counters?.request(code: String(response.status.code))
        return response
    }

    private func answer(_ request: Request) async throws -> Response {
        guard request.method == .post else {
            var response = Self.status(.methodNotAllowed, "method \(request.method.rawValue) is not allowed; use POST", encoding: .json)
            response.headers[.allow] = "POST"
            return response
        }
        guard case .allowed(let apiKey) = intake.authenticate(authorization: request.headers[.authorization]) else {
            let encoding = request.headers[.contentType].flatMap(OTLPEncoding.init(contentType:)) ?? .json
            var response = Self.status(.unauthorized, "missing or invalid credentials", encoding: encoding)
            response.headers[.wwwAuthenticate] = "Basic realm=\"tracefold\""
            return response
        }
        guard let contentType = request.headers[.contentType], let encoding = OTLPEncoding(contentType: contentType) else {
            let got = request.headers[.contentType].map { "\"\($0)\"" } ?? "none"
            return Self.status(.unsupportedMediaType, "unsupported Content-Type \(got); use application/x-protobuf or application/json", encoding: .json)
        }
        guard let coding = ContentCoding(header: request.headers[.contentEncoding]) else {
            return Self.status(.badRequest, "unsupported Content-Encoding \"\(request.headers[.contentEncoding] ?? "")\"; use gzip, deflate or identity", encoding: encoding)
        }
        if let refusal = await intake.refusalBeforeBody() {
            return Self.refused(refusal, encoding: encoding)
        }
        let receivedAt = WallClock.nowUnixNano()
        // Held until the answer: the body and the batch decoded from it live
        // that long.
        let reservation = bodyBudget.reserve()
        defer { reservation.releaseAll() }

        let body: [UInt8]
        let wire: [UInt8]
        switch await readBody(request, coding: coding, reservation: reservation) {
        case .success(let read): (body, wire) = read
        case .failure(.limitExceeded):
            return Self.status(
                .contentTooLarge,
                "request body exceeds max_request_body_size (\(config.maxRequestBodySize) bytes) after decompression",
                encoding: encoding
            )
        case .failure(.corrupt(let reason)):
            return Self.status(.badRequest, "cannot decompress the \(coding) body: \(reason)", encoding: encoding)
        case .failure(.transport(let reason)):
            return Self.status(.badRequest, "cannot read the request body: \(reason)", encoding: encoding)
        case .failure(.overBudget):
            metrics?.refusedRequest(reason: "in_flight_bytes")
            return Self.refused(
                IntakePath.Refusal(reason: "in_flight_bytes", message: "the collector is reading as many request bodies as it may; retry later", retryAfterSeconds: 1),
                encoding: encoding
            )
        case .failure(.timedOut):
            logger.info("request body did not arrive within read_timeout; closing the connection", metadata: ["read_timeout": "\(config.readTimeout)"])
            var response = Self.status(.requestTimeout, "the request body did not arrive within \(config.readTimeout)", encoding: encoding)
            response.headers[.connection] = "close"
            return response
        }

        switch await intake.accept(body: body, wire: wire, encoding: encoding, coding: coding, apiKey: apiKey, headers: request.headers, receivedAtUnixNano: receivedAt) {
        case .accepted(let rejectedSpans, let message):
            return Self.response(.ok, OTLPResponse.export(rejectedSpans: rejectedSpans, errorMessage: message, encoding: encoding), encoding: encoding)
        case .undecodable(let message):
            return Self.status(.badRequest, message, encoding: encoding)
        case .refused(let refusal):
            return Self.refused(refusal, encoding: encoding)
        }
    }

    /// 503 (429 for a rate limit) with Retry-After.
    static func refused(_ refusal: IntakePath.Refusal, encoding: OTLPEncoding) -> Response {
        var response = Self.status(refusal.isRateLimit ? .tooManyRequests : .serviceUnavailable, refusal.message, encoding: encoding)
        response.headers[.retryAfter] = String(refusal.retryAfterSeconds)
        return response
    }

    enum BodyError: Error {
        case limitExceeded
        case corrupt(String)
        case transport(String)
        case timedOut
        case overBudget
    }

    /// `readBody` bounded by `read_timeout`: a body that trickles in (a
    /// slowloris sender) is cut off rather than holding the connection.
    private func readBody(
        _ request: Request, coding: ContentCoding, reservation: InFlightBodyBudget.Reservation
    ) async -> Result<([UInt8], [UInt8]), BodyError> {
        let timeout = config.readTimeout
        return await withTaskGroup(of: Result<([UInt8], [UInt8]), BodyError>?.self) { group in
            group.addTask { await readWholeBody(request, coding: coding, reservation: reservation) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return Task.isCancelled ? nil : .failure(.timedOut)
            }
            var outcome: Result<([UInt8], [UInt8]), BodyError> = .failure(.timedOut)
            if let first = await group.next(), let first { outcome = first }
            group.cancelAll()
            return outcome
        }
    }

    /// Returns the decoded-ready body and the bytes as they came over the wire
    /// (what the intake log stores).
    private func readWholeBody(
        _ request: Request, coding: ContentCoding, reservation: InFlightBodyBudget.Reservation
    ) async -> Result<([UInt8], [UInt8]), BodyError> {
        let limit = config.maxRequestBodySize
        let inflater = StreamingInflater(coding: coding, limit: limit)
        var wire = [UInt8]()
        do {
            for try await buffer in request.body {
                try buffer.withUnsafeReadableBytes { chunk throws(InflateError) in
                    try inflater.feed(chunk)
                    if coding != .identity {
                        // A stream that inflates to at most `limit` is at most
                        // slightly larger compressed (stored blocks add 5 bytes
                        // per 64 KiB, plus headers); anything bigger cannot fit.
                        guard wire.count + chunk.count <= limit + limit / 1000 + 1024 else { throw .limitExceeded(limit: limit) }
                        wire.append(contentsOf: chunk)
                    }
                }
                guard reservation.grow(to: inflater.output.count + wire.count) else { return .failure(.overBudget) }
            }
            // A cancelled read (read_timeout) may end the stream early.
            if Task.isCancelled { return .failure(.timedOut) }
            let body = try inflater.finish()
            return .success((body, coding == .identity ? body : wire))
        } catch InflateError.limitExceeded {
            return .failure(.limitExceeded)
        } catch InflateError.corrupt(let reason) {
            return .failure(.corrupt(reason))
        } catch {
            return .failure(.transport("\(error)"))
        }
    }

    public static func status(_ status: HTTPResponse.Status, _ message: String, encoding: OTLPEncoding) -> Response {
        response(status, OTLPResponse.status(httpStatus: status.code, message: message, encoding: encoding), encoding: encoding)
    }

    static func response(_ status: HTTPResponse.Status, _ body: [UInt8], encoding: OTLPEncoding) -> Response {
        Response(
            status: status,
            headers: [.contentType: encoding.contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}

/// Durability `fsync`: the request's 200 waits for the intake log's fsync,
/// not for the fold; so a request that is slow to fold (one span of 10^6
/// attributes) does not hold up the acks of others.
public struct LogCommitter: IntakeCommitter {
    let log: IntakeLog
    let pipeline: SpanPipeline
    let exportFailing: @Sendable () -> Bool
    public init(log: IntakeLog, pipeline: SpanPipeline, exportFailing: @escaping @Sendable () -> Bool = { false }) {
        self.log = log
        self.pipeline = pipeline
        self.exportFailing = exportFailing
    }

    public var isOverloaded: Bool { pipeline.isFull }
    public func waitForRoom() async -> Bool { await pipeline.waitForRoom() }
    public var isFailing: Bool { pipeline.isFailing || exportFailing() }

    public func commit(body: [UInt8], encoding: OTLPEncoding, coding: ContentCoding, receivedAtUnixNano: UInt64, context: RequestMetadata?, batch: SpanBatch) async throws -> [String] {
        // The request works out what its answer needs (the sinks'
        // `prepare`) while the log thread writes and fsyncs the body: the
        // ack waits for the longer of the two, not their sum. The batch
        // goes to the log with an empty slot that the fold's mapping fills
        // after the ack (`PreparedWork.pending`).
        var batch = batch
        batch.prepared = .pending()
        var dropped = [String]()
        _ = try await log.append(
            body: body, encoding: encoding, coding: coding, receivedAtUnixNano: receivedAtUnixNano, context: context, batch: batch,
            meanwhile: { dropped = pipeline.prepare(&batch) }
        )
        return dropped
    }
}

/// Durability `none`: straight to the pipeline, answered once the pipeline
/// holds the batch; a crash loses what it holds.
public struct DirectCommitter: IntakeCommitter {
    let pipeline: SpanPipeline
    public init(pipeline: SpanPipeline) { self.pipeline = pipeline }

    public var isOverloaded: Bool { pipeline.isFull }
    public func waitForRoom() async -> Bool { await pipeline.waitForRoom() }
    public var isFailing: Bool { pipeline.isFailing }

    public func commit(body: [UInt8], encoding: OTLPEncoding, coding: ContentCoding, receivedAtUnixNano: UInt64, context: RequestMetadata?, batch: SpanBatch) async throws -> [String] {
        var batch = batch
        let dropped = pipeline.prepare(&batch)
        pipeline.enqueue(batch, lsn: 0)
        return dropped
    }
}
