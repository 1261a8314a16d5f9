import Compression
import HTTPTypes
import Logging
import OTLP
import TracefoldConfig
import TracefoldModel
import TracefoldTelemetry

/// What every OTLP receiver does with an export request once its transport
/// has framed it, written once: HTTP and gRPC differ only in how they read
/// the request and how they spell the answer (SPEC §1.1–1.10, §1.12).
///
/// The order is the HTTP receiver's: credentials; refusals that cost no
/// memory (memory limit, full pipeline, failing store); then, with the
/// body read, decode and per-span validation, the rate limit, request
/// metadata, the durable commit, and the `partial_success` message.
public struct IntakePath: Sendable {
    let authenticator: RequestAuthenticator
    let metadataReader: RequestMetadataReader
    let committer: any IntakeCommitter
    let logger: Logger
    let metrics: CollectorMetrics?
    /// This receiver's span and request counters (`transport` label).
    public let counters: CollectorMetrics.Receiver?
    let memoryLimiter: MemoryLimiter?
    let rateLimiter: SpanRateLimiter

    /// `transport` names the receiver in `/metrics`: `http` or `grpc`.
    public init(
        transport: String, auth: AuthConfig, rateLimit: RateLimit?, metadata: MetadataConfig, committer: any IntakeCommitter, logger: Logger,
        metrics: CollectorMetrics?, memoryLimiter: MemoryLimiter?, rateLimiter: SpanRateLimiter? = nil
    ) {
        authenticator = RequestAuthenticator(config: auth)
        metadataReader = RequestMetadataReader(metadata: metadata, auth: auth)
        // Receivers that pass one limiter share its buckets: a key's rate is
        // the same whichever protocol it sends over.
        self.rateLimiter = rateLimiter ?? SpanRateLimiter(auth: auth, defaultLimit: rateLimit)
        self.committer = committer
        self.logger = logger
        self.metrics = metrics
        counters = metrics?.receiver(transport: transport)
        self.memoryLimiter = memoryLimiter
    }

    /// A refusal that asks the client to retry later.
    public struct Refusal: Sendable, Equatable {
        /// The `/metrics` reason (`tracefold_refused_requests_total`).
        public var reason: String
        public var message: String
        public var retryAfterSeconds: Int
        /// A rate limit (HTTP 429) rather than the collector's own state
        /// (HTTP 503); gRPC answers both with RESOURCE_EXHAUSTED or
        /// UNAVAILABLE as the OTLP spec says.
        public var isRateLimit: Bool = false

        /// The store or the intake log cannot keep data: before the body is
        /// read (a failing stage) or at the commit.
        static let storage = Refusal(reason: "storage", message: "the collector cannot store data right now; retry later", retryAfterSeconds: 5)
        static let queueFull = Refusal(reason: "queue_full", message: "the collector is overloaded; retry later", retryAfterSeconds: 1)
        static let memoryLimit = Refusal(reason: "memory_limiter", message: "the collector is above its memory limit; retry later", retryAfterSeconds: 1)
    }

    /// The request's credential: the matching key's public key, or nil when
    /// auth is off or a bearer token matched; `.denied` when missing or wrong.
    public func authenticate(authorization: String?) -> RequestAuthenticator.Outcome {
        authenticator.authenticate(authorization: authorization)
    }

    /// Refusals decided before the body is read, so that a refused request
    /// costs no memory (SPEC §1.9). A full queue is waited on first, up to
    /// `store.max_pending_wait`, unless a stage behind it is failing (then
    /// no room comes); the memory limit is checked again after the wait,
    /// since it may have set in meanwhile.
    public func refusalBeforeBody() async -> Refusal? {
        let refusal: Refusal
        let full = committer.isOverloaded
        if memoryLimiter?.isRefusing == true {
            refusal = .memoryLimit
        } else if full, committer.isFailing {
            // A failing stage makes no room: no wait.
            refusal = .queueFull
        } else if full, await !roomAfterWaiting() {
            refusal = .queueFull
        } else if memoryLimiter?.isRefusing == true {
            refusal = .memoryLimit
        } else if committer.isFailing {
            refusal = .storage
        } else {
            return nil
        }
        metrics?.refusedRequest(reason: refusal.reason)
        return refusal
    }

    /// The committer's wait for room in its full queue, counted in
    /// `/metrics` whichever way it ends.
    private func roomAfterWaiting() async -> Bool {
        let room = await committer.waitForRoom()
        metrics?.queueFullRequest(admitted: room)
        return room
    }

    /// The answer to a request whose body was read.
    public enum Outcome: Sendable, Equatable {
        /// Durable (or, durability `none`, with the pipeline): the response
        /// carries `rejectedSpans` and the message, if any.
        case accepted(rejectedSpans: Int, message: String?)
        /// The body does not decode: nothing of it was kept.
        case undecodable(String)
        case refused(Refusal)
    }

    /// Decodes, validates, rate-limits, stamps and commits one request.
    /// `body` is what decodes; `wire` is what the intake log keeps (the
    /// compressed bytes when `coding` is not identity).
    public func accept(
        body: [UInt8], wire: [UInt8], encoding: OTLPEncoding, coding: ContentCoding, apiKey: String?, headers: HTTPFields,
        receivedAtUnixNano receivedAt: UInt64
    ) async -> Outcome {
        let decoded: DecodedExport
        do {
            decoded = try OTLPDecoder.decode(body, encoding: encoding)
        } catch {
            return .undecodable("cannot decode the \(encoding == .protobuf ? "protobuf" : "JSON") body: \(error.message)")
        }
        if let wait = rateLimiter.admit(key: apiKey, spans: decoded.batch.spanCount) {
            let seconds = max(1, Int(wait.inSeconds.rounded(.up)))
            counters?.refusedSpans.increment(by: Int64(decoded.batch.spanCount))
            metrics?.refusedRequest(reason: "rate_limit")
            return .refused(
                Refusal(reason: "rate_limit", message: "the rate limit for this key is exceeded; retry in \(seconds) s", retryAfterSeconds: seconds, isRateLimit: true)
            )
        }
        var batch = decoded.batch
        batch.receivedAtUnixNano = receivedAt
        let context = metadataReader.read(headers, apiKey: apiKey, receivedAtUnixNano: receivedAt)
        RequestMetadata.stamp(&batch, with: context)
        var dropped = [String]()
        if batch.spanCount > 0 {
            do {
                dropped = try await committer.commit(
                    body: wire, encoding: encoding, coding: coding, receivedAtUnixNano: receivedAt, context: context, batch: batch
                )
            } catch {
                counters?.refusedSpans.increment(by: Int64(batch.spanCount))
                metrics?.refusedRequest(reason: "storage")
                logger.error("cannot make an accepted request durable; answering 503", metadata: ["error": "\(error)"])
                return .refused(.storage)
            }
        }
        if decoded.rejectedSpans > 0 {
            logger.info(
                "rejected invalid spans",
                metadata: ["rejected": "\(decoded.rejectedSpans)", "accepted": "\(batch.spanCount)", "reason": "\(decoded.firstRejection ?? "")"]
            )
        }
        counters?.acceptedSpans.increment(by: Int64(batch.spanCount))
        counters?.rejectedSpans.increment(by: Int64(decoded.rejectedSpans))
        metrics?.droppedMetadata(reason: "request_header", count: context?.warnings.count ?? 0)
        // SPEC §4.6: dropped metadata is a warning with rejected_spans 0.
        var messages = [String]()
        if let m = decoded.partialSuccessMessage { messages.append(m) }
        if let warnings = context?.warnings, let first = warnings.sorted(by: { $0.key < $1.key }).first {
            messages.append("\(warnings.count) request metadata key\(warnings.count == 1 ? "" : "s") dropped: \(first.key): \(first.value)")
        }
        if let first = dropped.first {
            messages.append("\(dropped.count) metadata update\(dropped.count == 1 ? "" : "s") dropped: \(first)")
        }
        return .accepted(rejectedSpans: decoded.rejectedSpans, message: messages.isEmpty ? nil : messages.joined(separator: "; "))
    }
}
