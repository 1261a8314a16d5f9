import AsyncHTTPClient
import Compression
import Foundation
import Logging
import NIOCore
import OTLPProtobufEncoding
import NIOConcurrencyHelpers
import TracefoldModel
import Tracing

/// Where ended spans go. `export` is called from `span.end()` in the host
/// app's code, so it must not block or fail.
protocol SpanExporting: Sendable {
    func export(_ span: FinishedSpan)
    func flush() async
    func shutdown() async
}

/// Batches ended spans and POSTs them as OTLP/HTTP protobuf, gzip-compressed,
/// like the Python SDK's BatchSpanProcessor + OTLPSpanExporter: a batch
/// goes when `flushAt` spans are queued or `flushInterval` has passed.
/// A slow or down collector never holds up the app: the queue is bounded
/// (new spans are dropped past it), each batch gets a bounded number of
/// attempts, and one warning is logged per outage rather than per batch.
final class OTLPHTTPSpanExporter: SpanExporting {
    let configuration: TracingConfiguration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let signals: AsyncStream<Signal>.Continuation
    private let worker: Task<Void, Never>
    private let ticker: Task<Void, Never>
    private let client: HTTPClient

    struct State {
        var queue: [FinishedSpan] = []
        var closed = false
        /// Spans lost in all: queue overflow or a batch that ran out of
        /// attempts.
        var dropped = 0
        /// Set at the first loss of an outage, cleared by the next delivery.
        var warned = false
        var exportedSpans = 0
    }

    enum Signal {
        case batchReady, tick
        case flush(CheckedContinuation<Void, Never>)
    }

    init(configuration: TracingConfiguration, logger: Logger = tracingLogger) {
        self.configuration = configuration
        self.logger = logger
        var attributes = [
            Attribute("service.name", .string(configuration.serviceName)),
            Attribute("telemetry.sdk.language", .string("swift")),
            Attribute("telemetry.sdk.name", .string("tracefold-tracing")),
            Attribute("telemetry.sdk.version", .string(tracefoldTracingVersion)),
        ]
        for (k, v) in configuration.resourceAttributes where k != "service.name" {
            attributes.removeAll { $0.key == k }
            attributes.append(Attribute(k, .string(v)))
        }
        if let e = configuration.environment { attributes.append(Attribute("langfuse.environment", .string(e))) }
        if let r = configuration.release { attributes.append(Attribute("langfuse.release", .string(r))) }
        let resource = Resource(attributes: attributes)

        let (stream, continuation) = AsyncStream.makeStream(of: Signal.self, bufferingPolicy: .unbounded)
        signals = continuation
        let interval = configuration.flushInterval
        ticker = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                continuation.yield(.tick)
            }
        }
        // The worker is the only sender, so batches leave in order and one
        // at a time, as with the OTel batch processor.
        // The exporter's own client is not traced: with the process's tracer
        // being this one, each export would make a span to export, forever.
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.tracing.tracer = nil
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        self.client = client
        worker = Task.detached { [state, configuration, resource, logger] in
            let sender = BatchSender(configuration: configuration, resource: resource, logger: logger, client: client)
            for await signal in stream {
                while true {
                    let batch: [FinishedSpan] = state.withLockedValue { s in
                        let n = min(configuration.flushAt, s.queue.count)
                        defer { s.queue.removeFirst(n) }
                        return Array(s.queue.prefix(n))
                    }
                    if batch.isEmpty { break }
                    let delivered = await sender.send(batch)
                    let warning: String? = state.withLockedValue { s in
                        if delivered {
                            s.exportedSpans += batch.count
                            s.warned = false
                            return nil
                        }
                        s.dropped += batch.count
                        guard !s.warned else { return nil }
                        s.warned = true
                        return "tracefold-tracing: could not export to \(configuration.endpoint) after \(configuration.maxAttempts) attempts; "
                            + "dropping spans until it answers again (\(s.dropped) so far)"
                    }
                    if let warning { logger.warning("\(warning)") }
                }
                if case .flush(let done) = signal { done.resume() }
            }
        }
    }

    func export(_ span: FinishedSpan) {
        let (ready, overflowWarning): (Bool, Bool) = state.withLockedValue { s in
            guard !s.closed else { return (false, false) }
            guard s.queue.count < configuration.maxQueueSize else {
                s.dropped += 1
                let warn = !s.warned
                s.warned = true
                return (false, warn)
            }
            s.queue.append(span)
            return (s.queue.count >= configuration.flushAt, false)
        }
        if overflowWarning {
            logger.warning("tracefold-tracing: the export queue is full (\(configuration.maxQueueSize) spans); dropping new spans")
        }
        if ready { signals.yield(.batchReady) }
    }

    /// Returns once everything queued before the call was sent or dropped.
    func flush() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            if case .terminated = signals.yield(.flush(done)) { done.resume() }
        }
    }

    func shutdown() async {
        await flush()
        state.withLockedValue { $0.closed = true }
        ticker.cancel()
        signals.finish()
        await worker.value
        try? await client.shutdown()
    }

    /// Spans the collector acknowledged, and spans dropped; for tests and
    /// for an app's own health reporting.
    var counts: (exported: Int, dropped: Int) { state.withLockedValue { ($0.exportedSpans, $0.dropped) } }
}

let tracefoldTracingVersion = "0.1.0"

/// One batch's trip: encode, compress, POST, retry.
struct BatchSender: Sendable {
    let configuration: TracingConfiguration
    let resource: Resource
    let logger: Logger
    let client: HTTPClient

    func send(_ spans: [FinishedSpan]) async -> Bool {
        var body = OTLPProtobufEncoder.encode(SpanBatch(resourceSpans: [ResourceSpans(resource: resource, scopeSpans: scopes(spans))]))
        if configuration.gzip { body = Gzip.compress(body) }
        var request = HTTPClientRequest(url: configuration.endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-protobuf")
        request.headers.add(name: "User-Agent", value: "tracefold-tracing-swift/\(tracefoldTracingVersion)")
        request.headers.add(name: "x-langfuse-sdk-name", value: "swift")
        request.headers.add(name: "x-langfuse-sdk-version", value: tracefoldTracingVersion)
        request.headers.add(name: "x-langfuse-ingestion-version", value: "4")
        if configuration.gzip { request.headers.add(name: "Content-Encoding", value: "gzip") }
        if let pk = configuration.publicKey {
            request.headers.add(name: "x-langfuse-public-key", value: pk)
            if let sk = configuration.secretKey {
                request.headers.add(name: "Authorization", value: "Basic " + Data("\(pk):\(sk)".utf8).base64EncodedString())
            }
        }
        for (k, v) in configuration.headers { request.headers.replaceOrAdd(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: body))

        let timeout = TimeAmount.nanoseconds(Int64(configuration.timeout.inSeconds * 1e9))
        for attempt in 1...configuration.maxAttempts {
            var retryAfter: Double?
            do {
                let response = try await client.execute(request, timeout: timeout)
                // Read the (small) body so the connection goes back to the pool.
                _ = try? await response.body.collect(upTo: 1 << 20)
                let status = Int(response.status.code)
                if (200..<300).contains(status) { return true }
                guard [408, 429, 502, 503, 504].contains(status) else {
                    logger.warning("tracefold-tracing: \(configuration.endpoint) answered \(status); the batch of \(spans.count) spans is dropped")
                    return false
                }
                retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init)
            } catch {
                logger.debug("tracefold-tracing: export attempt \(attempt) failed: \(error)")
            }
            guard attempt < configuration.maxAttempts else { break }
            // 2^n × 250 ms ± 20 %, or the server's Retry-After, capped so a
            // batch is given up within seconds, not minutes.
            let backoff = retryAfter ?? (0.25 * Double(1 << (attempt - 1)) * Double.random(in: 0.8...1.2))
            try? await Task.sleep(for: .milliseconds(Int64(min(backoff, 5) * 1000)))
        }
        return false
    }

    /// Observations under Langfuse's scope name, so the fold (and a
    /// Langfuse server) treats them as SDK spans; spans of other libraries
    /// under their own, so their attributes are kept as metadata.
    func scopes(_ spans: [FinishedSpan]) -> [ScopeSpans] {
        var sdk = [TracefoldModel.Span]()
        var other = [TracefoldModel.Span]()
        for span in spans {
            let converted = Self.convert(span)
            if span.attributes.get("langfuse.observation.type") != nil { sdk.append(converted) } else { other.append(converted) }
        }
        var out = [ScopeSpans]()
        if !sdk.isEmpty {
            var scopeAttributes = [Attribute]()
            if let pk = configuration.publicKey { scopeAttributes.append(Attribute("public_key", .string(pk))) }
            out.append(ScopeSpans(scope: InstrumentationScope(name: "langfuse-sdk", version: tracefoldTracingVersion, attributes: scopeAttributes), spans: sdk))
        }
        if !other.isEmpty {
            out.append(ScopeSpans(scope: InstrumentationScope(name: "swift-distributed-tracing", version: tracefoldTracingVersion), spans: other))
        }
        return out
    }

    static func convert(_ span: FinishedSpan) -> TracefoldModel.Span {
        let kind: TracefoldModel.SpanKind =
            switch span.kind {
            case .server: .server
            case .client: .client
            case .producer: .producer
            case .consumer: .consumer
            default: .internal
            }
        var status = TracefoldModel.SpanStatus()
        if let s = span.status {
            status = TracefoldModel.SpanStatus(code: s.code == .error ? .error : .ok, message: s.message ?? "")
        }
        return TracefoldModel.Span(
            traceID: span.traceID, spanID: span.spanID, parentSpanID: span.parentID,
            name: span.name, kind: kind, startTimeUnixNano: span.start, endTimeUnixNano: span.end, attributes: attributes(span.attributes),
            events: span.events.map {
                TracefoldModel.SpanEvent(timeUnixNano: $0.nanosecondsSinceEpoch, name: $0.name, attributes: attributes($0.attributes))
            },
            links: span.links.map {
                TracefoldModel.SpanLink(traceID: $0.traceID.bytes, spanID: $0.spanID.bytes)
            },
            status: status
        )
    }

    /// Sorted by key, so a span's encoding does not depend on hash order.
    static func attributes(_ attributes: SpanAttributes) -> [Attribute] {
        var out = [Attribute]()
        attributes.forEach { key, value in
            if let v = attributeValue(value) { out.append(Attribute(key, v)) }
        }
        return out.sorted { $0.key < $1.key }
    }

    static func attributeValue(_ value: SpanAttribute) -> AttributeValue? {
        switch value {
        case .int32(let v): .int(Int64(v))
        case .int64(let v): .int(v)
        case .int32Array(let v): .array(v.map { .int(Int64($0)) })
        case .int64Array(let v): .array(v.map { .int($0) })
        case .double(let v): .double(v)
        case .doubleArray(let v): .array(v.map { .double($0) })
        case .bool(let v): .bool(v)
        case .boolArray(let v): .array(v.map { .bool($0) })
        case .string(let v): .string(v)
        case .stringArray(let v): .array(v.map { .string($0) })
        case .stringConvertible(let v): .string(v.description)
        case .stringConvertibleArray(let v): .array(v.map { .string($0.description) })
        default: nil
        }
    }
}
