import AsyncHTTPClient
import Compression
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import OTLP
import Tracing
import TracefoldModel
import XCTest

@testable import TracefoldTracing

/// A loopback HTTP server that answers with scripted statuses: fault
/// injection for the exporter (the end-to-end test uses a real tracefold).
final class ScriptedCollector: @unchecked Sendable {
    struct Received {
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    private let lock = NSLock()
    private var script: [HTTPResponseStatus]
    private var received: [Received] = []
    private var channel: (any Channel)?
    private(set) var port = 0

    init(script: [HTTPResponseStatus] = []) throws {
        self.script = script
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        let box = self
        let channel = try bootstrap.childChannelInitializer { channel in
            channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(Handler(collector: box)) }
        }.bind(host: "127.0.0.1", port: 0).wait()
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    var url: String { "http://127.0.0.1:\(port)/v1/traces" }
    var requests: [Received] { lock.withLock { received } }

    /// The spans of every request that was answered 2xx or not, decoded as
    /// tracefold decodes them.
    func spans(of request: Received) throws -> [TracefoldModel.Span] {
        let inflater = StreamingInflater(coding: ContentCoding(header: request.headers.first(name: "Content-Encoding")) ?? .identity, limit: 64 << 20)
        try inflater.feed(request.body)
        let decoded = try OTLPProtobufDecoder.decode(try inflater.finish())
        return decoded.batch.resourceSpans.flatMap { $0.scopeSpans.flatMap(\.spans) }
    }

    func close() { try? channel?.close().wait() }

    fileprivate func answer(_ request: Received) -> HTTPResponseStatus {
        lock.withLock {
            received.append(request)
            return script.isEmpty ? .ok : script.removeFirst()
        }
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let collector: ScriptedCollector
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(collector: ScriptedCollector) { self.collector = collector }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
            case .body(let buffer): body += buffer.readableBytesView
            case .end:
                let status = collector.answer(Received(headers: head?.headers ?? [:], body: body))
                var headers = HTTPHeaders([("Content-Length", "0")])
                if status == .serviceUnavailable { headers.add(name: "Retry-After", value: "0") }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

/// Counts warnings, so the test can check there is one per outage.
final class WarningCounter: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        if event.level >= .warning { lock.withLock { messages.append("\(event.message)") } }
    }
    var warnings: [String] { lock.withLock { messages } }
}

final class ExporterTests: XCTestCase {
    func configuration(_ endpoint: String, flushAt: Int = 512, attempts: Int = 4) -> TracingConfiguration {
        TracingConfiguration(
            endpoint: endpoint, publicKey: "pk-lf-test", secretKey: "sk-lf-test", flushAt: flushAt, flushInterval: .seconds(60),
            timeout: .milliseconds(500), maxAttempts: attempts, serviceName: "exporter-test"
        )
    }

    func finished(_ name: String, attributes: SpanAttributes = [:]) -> FinishedSpan {
        FinishedSpan(
            name: name, kind: .internal, traceID: TraceID(high: 1, low: 2), spanID: SpanID(UInt64.random(in: 1...UInt64.max)), parentID: nil, start: 1_000, end: 2_000,
            attributes: attributes, events: [], links: [], status: nil
        )
    }

    func testBatchesAreGzippedProtobufWithLangfuseHeadersAndScopes() async throws {
        let collector = try ScriptedCollector()
        defer { collector.close() }
        let exporter = OTLPHTTPSpanExporter(configuration: configuration(collector.url, flushAt: 3))
        exporter.export(finished("observation", attributes: ["langfuse.observation.type": "span"]))
        exporter.export(finished("http-client", attributes: ["http.request.method": "GET"]))
        exporter.export(finished("third", attributes: ["langfuse.observation.type": "tool"]))
        exporter.export(finished("fourth", attributes: ["langfuse.observation.type": "span"]))
        await exporter.shutdown()

        let requests = collector.requests
        XCTAssertEqual(requests.count, 2, "flush_at 3: one full batch, then the rest at shutdown")
        let first = requests[0]
        XCTAssertEqual(first.headers.first(name: "Content-Type"), "application/x-protobuf")
        XCTAssertEqual(first.headers.first(name: "Content-Encoding"), "gzip")
        XCTAssertEqual(first.headers.first(name: "Authorization"), "Basic " + Data("pk-lf-test:sk-lf-test".utf8).base64EncodedString())
        XCTAssertEqual(first.headers.first(name: "x-langfuse-public-key"), "pk-lf-test")
        XCTAssertEqual(Array(first.body.prefix(2)), [0x1F, 0x8B], "a gzip member")
        XCTAssertEqual(try collector.spans(of: first).map(\.name).sorted(), ["http-client", "observation", "third"])
        XCTAssertEqual(try collector.spans(of: requests[1]).map(\.name), ["fourth"])

        let inflater = StreamingInflater(coding: .gzip, limit: 1 << 20)
        try inflater.feed(first.body)
        let batch = try OTLPProtobufDecoder.decode(try inflater.finish()).batch
        let scopes = batch.resourceSpans[0].scopeSpans.map { ($0.scope.name, $0.spans.map(\.name).sorted()) }
        XCTAssertEqual(scopes.map(\.0), ["langfuse-sdk", "swift-distributed-tracing"])
        XCTAssertEqual(scopes[0].1, ["observation", "third"])
        XCTAssertTrue(batch.resourceSpans[0].resource.attributes.contains(Attribute("service.name", .string("exporter-test"))))
        XCTAssertEqual(exporter.counts.exported, 4)
    }

    func testRetriesOn503ThenDelivers() async throws {
        let collector = try ScriptedCollector(script: [.serviceUnavailable, .tooManyRequests])
        defer { collector.close() }
        let exporter = OTLPHTTPSpanExporter(configuration: configuration(collector.url))
        exporter.export(finished("retried"))
        await exporter.flush()
        XCTAssertEqual(collector.requests.count, 3)
        XCTAssertEqual(exporter.counts.exported, 1)
        XCTAssertEqual(exporter.counts.dropped, 0)
        await exporter.shutdown()
    }

    func testA400IsNotRetried() async throws {
        let collector = try ScriptedCollector(script: [.badRequest])
        defer { collector.close() }
        let exporter = OTLPHTTPSpanExporter(configuration: configuration(collector.url))
        exporter.export(finished("rejected"))
        await exporter.shutdown()
        XCTAssertEqual(collector.requests.count, 1)
        XCTAssertEqual(exporter.counts.dropped, 1)
    }

    func testADownCollectorDropsAfterBoundedAttemptsAndWarnsOnce() async throws {
        // A port nothing listens on: connections are refused at once.
        let closed = try ScriptedCollector()
        let url = closed.url
        closed.close()
        let warnings = WarningCounter()
        let exporter = OTLPHTTPSpanExporter(configuration: configuration(url, flushAt: 1, attempts: 3), logger: Logger(label: "test") { _ in warnings })
        let started = ContinuousClock.now
        for i in 0..<3 { exporter.export(finished("lost-\(i)")) }
        await exporter.shutdown()
        let elapsed = ContinuousClock.now - started
        XCTAssertEqual(exporter.counts.dropped, 3)
        XCTAssertEqual(exporter.counts.exported, 0)
        XCTAssertEqual(warnings.warnings.count, 1, "one warning per outage: \(warnings.warnings)")
        // 3 batches × (3 attempts, backoff 0.25 s + 0.5 s ± 20 %): bounded, not a hang.
        XCTAssertLessThan(elapsed, .seconds(30))
    }

    func testTheQueueIsBoundedAndSpanEndNeverWaits() async throws {
        let closed = try ScriptedCollector()
        let url = closed.url
        closed.close()
        var config = configuration(url, flushAt: 1_000, attempts: 1)
        config.maxQueueSize = 10
        let warnings = WarningCounter()
        let exporter = OTLPHTTPSpanExporter(configuration: config, logger: Logger(label: "test") { _ in warnings })
        for i in 0..<25 { exporter.export(finished("s\(i)")) }
        XCTAssertEqual(exporter.counts.dropped, 15, "past max_queue_size new spans are dropped")
        await exporter.shutdown()
        XCTAssertEqual(exporter.counts.dropped, 25)
        XCTAssertEqual(warnings.warnings.count, 1)
        exporter.export(finished("after-shutdown"))
        XCTAssertEqual(exporter.counts.dropped, 25, "after shutdown spans are ignored")
    }

    func testConfigurationFromTheEnvironment() {
        XCTAssertEqual(TracingConfiguration.fromEnvironment([:]).endpoint, "http://127.0.0.1:4318/v1/traces")
        XCTAssertEqual(TracingConfiguration.fromEnvironment(["TRACEFOLD_BASE_URL": "http://h:1/"]).endpoint, "http://h:1/v1/traces")
        XCTAssertEqual(
            TracingConfiguration.fromEnvironment(["LANGFUSE_BASE_URL": "https://cloud.langfuse.com"]).endpoint,
            "https://cloud.langfuse.com/api/public/otel/v1/traces"
        )
        XCTAssertEqual(
            TracingConfiguration.fromEnvironment(["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x/t", "TRACEFOLD_BASE_URL": "http://h:1"]).endpoint,
            "http://x/t"
        )
        XCTAssertEqual(TracingConfiguration.fromEnvironment(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://o:4318"]).endpoint, "http://o:4318/v1/traces")
        let c = TracingConfiguration.fromEnvironment([
            "LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk", "LANGFUSE_FLUSH_AT": "64", "LANGFUSE_FLUSH_INTERVAL": "0.5",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-a=1,x-b=two%20words", "OTEL_EXPORTER_OTLP_COMPRESSION": "none", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-resource,deployment.environment=prod", "LANGFUSE_TRACING_ENVIRONMENT": "staging",
            "LANGFUSE_TRACING_ENABLED": "false",
        ])
        XCTAssertEqual(c.publicKey, "pk")
        XCTAssertEqual(c.secretKey, "sk")
        XCTAssertEqual(c.flushAt, 64)
        XCTAssertEqual(c.flushInterval, .milliseconds(500))
        XCTAssertEqual(c.headers.map { "\($0.0)=\($0.1)" }, ["x-a=1", "x-b=two words"])
        XCTAssertFalse(c.gzip)
        XCTAssertEqual(c.timeout, .milliseconds(2500))
        XCTAssertEqual(c.serviceName, "from-resource")
        XCTAssertEqual(c.environment, "staging")
        XCTAssertFalse(c.enabled)
        XCTAssertEqual(TracingConfiguration.fromEnvironment(["OTEL_SERVICE_NAME": "svc", "OTEL_RESOURCE_ATTRIBUTES": "service.name=r"]).serviceName, "svc")
    }
}

/// Another instrumented library's spans nest under observations: a real
/// AsyncHTTPClient request made inside `observe` is a child span, and the
/// request carries its W3C traceparent.
final class InstrumentedLibraryTests: XCTestCase {
    func testAsyncHTTPClientRequestNestsUnderTheObservation() async throws {
        let server = try ScriptedCollector()
        defer { server.close() }
        let exporter = CapturingExporter()
        let tracer = TracefoldTracer(exporter: exporter)
        var configuration = HTTPClient.Configuration()
        configuration.tracing.tracer = tracer
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        try await withTracer(tracer) {
            try await observe("fetch-context") { _ in
                let response = try await client.execute(HTTPClientRequest(url: server.url), timeout: .seconds(5))
                XCTAssertEqual(response.status, .ok)
            }
        }
        try await client.shutdown()

        let observation = try exporter.span(named: "fetch-context")
        let http = try XCTUnwrap(exporter.ended.first { $0.name != "fetch-context" }, "no AsyncHTTPClient span")
        XCTAssertEqual(http.kind, .client)
        XCTAssertEqual(http.parentID, observation.spanID)
        XCTAssertEqual(http.traceID, observation.traceID)
        let traceparent = try XCTUnwrap(server.requests.first?.headers.first(name: "traceparent"))
        XCTAssertEqual(traceparent, "00-\(http.traceID.hex)-\(http.spanID.hex)-01")
    }
}
