import Compression
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OTLP
import TracefoldCollector
import TracefoldConfig
import TracefoldModel
import XCTest

/// SPEC §1 over real HTTP: a live server on an ephemeral port per test.
final class IntakeServerTests: XCTestCase, @unchecked Sendable {
    struct Harness {
        var collector: Collector
        var directory: String

        /// Every span line the spans_jsonl exporter has written.
        func exportedLines() throws -> [JSONValue] {
            collector.drain()
            let dir = directory + "/spans"
            var lines = [JSONValue]()
            for name in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where name.hasSuffix(".jsonl") {
                let text = try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
                for line in text.split(separator: "\n") { lines.append(try JSONParser.parse(String(line))) }
            }
            return lines
        }
    }

    func withServer(
        maxBody: Int = 64 << 20, auth: AuthConfig = AuthConfig(), configure: (inout CollectorConfig) -> Void = { _ in },
        _ body: @escaping @Sendable (any TestClientProtocol, Harness) async throws -> Void
    ) async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = CollectorConfig()
        config.store.directory = dir
        config.receiver.maxRequestBodySize = maxBody
        config.receiver.auth = auth
        config.spansJSONL = SpansJSONLExporterConfig(directory: dir + "/spans")
        config.service.exporters = ["spans_jsonl"]
        configure(&config)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let collector = try Collector(config: config, logger: logger)
        let harness = Harness(collector: collector, directory: dir)
        do {
            try await collector.makeApplication(port: 0).test(.live) { client in try await body(client, harness) }
        } catch {
            collector.shutdown()
            throw error
        }
        collector.shutdown()
    }

    let protoHeaders: HTTPFields = [.contentType: "application/x-protobuf"]
    let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    func protobufBody(_ spans: [Span]) -> ByteBuffer { ByteBuffer(bytes: OTLPProtobufEncoder.encode(Fixtures.batch(spans))) }

    func jsonStatus(_ r: TestResponse) throws -> (code: Int64, message: String) {
        XCTAssertEqual(r.headers[.contentType], "application/json")
        let v = try JSONParser.parse(Array(buffer: r.body))
        guard case .int(let code)? = v["code"], let message = v["message"]?.stringValue else {
            XCTFail("not a google.rpc.Status: \(String(buffer: r.body))")
            return (0, "")
        }
        return (code, message)
    }

    func protobufStatus(_ r: TestResponse) -> (code: UInt64?, message: String) {
        XCTAssertEqual(r.headers[.contentType], "application/x-protobuf")
        var reader = WireReader(Array(buffer: r.body))
        let f = reader.fields()
        return (f[1]?.first as? UInt64, String(decoding: (f[2]?.first as? [UInt8]) ?? [], as: UTF8.self))
    }

    // MARK: §1.2 paths and methods

    func testBothPathsAndADoubledSlashAccept() async throws {
        try await withServer { client, h in
            for (i, path) in ["/v1/traces", "/api/public/otel/v1/traces", "//api/public/otel/v1/traces", "//v1//traces"].enumerated() {
                try await client.execute(uri: path, method: .post, headers: self.protoHeaders, body: self.protobufBody([Fixtures.span(UInt64(i))])) { r in
                    XCTAssertEqual(r.status, .ok, path)
                    XCTAssertEqual(r.headers[.contentType], "application/x-protobuf")
                    XCTAssertEqual(r.body.readableBytes, 0, "full success leaves partial_success unset")
                }
            }
            XCTAssertEqual(try h.exportedLines().count, 4)
        }
    }

    func testOtherMethodsGet405WithAStatusBody() async throws {
        try await withServer { client, _ in
            for method in [HTTPRequest.Method.get, .put, .delete, .patch] {
                for path in ["/v1/traces", "/api/public/otel/v1/traces"] {
                    try await client.execute(uri: path, method: method) { r in
                        XCTAssertEqual(r.status, .methodNotAllowed)
                        XCTAssertEqual(r.headers[.allow], "POST")
                        XCTAssertEqual(try self.jsonStatus(r).message, "method \(method.rawValue) is not allowed; use POST")
                    }
                }
            }
        }
    }

    // MARK: §1.3 content types

    func testUnsupportedContentTypeGets415() async throws {
        try await withServer { client, h in
            for type in ["text/plain", "application/protobuf", "application/xml"] {
                try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: type], body: self.protobufBody([Fixtures.span(1)])) { r in
                    XCTAssertEqual(r.status, .unsupportedMediaType)
                    let s = try self.jsonStatus(r)
                    XCTAssertEqual(s.code, 3)
                    XCTAssertTrue(s.message.contains(type), s.message)
                }
            }
            try await client.execute(uri: "/v1/traces", method: .post, body: self.protobufBody([Fixtures.span(1)])) { r in
                XCTAssertEqual(r.status, .unsupportedMediaType)
            }
            XCTAssertEqual(try h.exportedLines().count, 0)
        }
    }

    func testContentTypeParametersAreIgnored() async throws {
        try await withServer { client, h in
            let json = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"j"}]}]}]}"#
            try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/json; charset=utf-8"], body: ByteBuffer(string: json)) { r in
                XCTAssertEqual(r.status, .ok)
                XCTAssertEqual(String(buffer: r.body), "{}")
            }
            XCTAssertEqual(try h.exportedLines().first?["name"], .string("j"))
        }
    }

    // MARK: §1.4 compression and size

    func testGzipAndDeflateBodies() async throws {
        try await withServer { client, h in
            let raw = OTLPProtobufEncoder.encode(Fixtures.batch([Fixtures.span(1)]))
            var headers = self.protoHeaders
            headers[.contentEncoding] = "gzip"
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: ByteBuffer(bytes: Gzip.compress(raw))) { r in
                XCTAssertEqual(r.status, .ok)
            }
            headers[.contentEncoding] = "deflate"
            let raw2 = OTLPProtobufEncoder.encode(Fixtures.batch([Fixtures.span(2)]))
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: ByteBuffer(bytes: Gzip.deflate(raw2))) { r in
                XCTAssertEqual(r.status, .ok)
            }
            XCTAssertEqual(Set(try h.exportedLines().compactMap { $0["name"]?.stringValue }), ["span-1", "span-2"])
        }
    }

    func testUnknownContentEncodingGets400InTheRequestEncoding() async throws {
        try await withServer { client, _ in
            var headers = self.protoHeaders
            headers[.contentEncoding] = "br"
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: self.protobufBody([Fixtures.span(1)])) { r in
                XCTAssertEqual(r.status, .badRequest)
                let s = self.protobufStatus(r)
                XCTAssertEqual(s.code, 3)
                XCTAssertEqual(s.message, #"unsupported Content-Encoding "br"; use gzip, deflate or identity"#)
            }
        }
    }

    func testBodyLimitAppliesAfterDecompressionAtTheExactByte() async throws {
        let body = OTLPProtobufEncoder.encode(Fixtures.batch([Fixtures.span(1)]))
        // Exactly at the limit: accepted, plain and gzip.
        try await withServer(maxBody: body.count) { client, h in
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: ByteBuffer(bytes: body)) { r in
                XCTAssertEqual(r.status, .ok)
            }
            var gz = self.protoHeaders
            gz[.contentEncoding] = "gzip"
            try await client.execute(uri: "/v1/traces", method: .post, headers: gz, body: ByteBuffer(bytes: Gzip.compress(body))) { r in
                XCTAssertEqual(r.status, .ok)
            }
            XCTAssertEqual(try h.exportedLines().count, 1, "the same span twice is stored once")
        }
        // One byte over: 413, plain and gzip.
        try await withServer(maxBody: body.count - 1) { client, h in
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: ByteBuffer(bytes: body)) { r in
                XCTAssertEqual(r.status, .contentTooLarge)
                XCTAssertEqual(self.protobufStatus(r).message, "request body exceeds max_request_body_size (\(body.count - 1) bytes) after decompression")
            }
            var gz = self.protoHeaders
            gz[.contentEncoding] = "gzip"
            try await client.execute(uri: "/v1/traces", method: .post, headers: gz, body: ByteBuffer(bytes: Gzip.compress(body))) { r in
                XCTAssertEqual(r.status, .contentTooLarge)
            }
            XCTAssertEqual(try h.exportedLines().count, 0)
        }
    }

    func testGzipBombGets413() async throws {
        // ~100 KB of gzip that inflates to 100 MiB, against the 64 MiB default.
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 100 << 20), level: 9)
        XCTAssertLessThan(bomb.count, 150_000)
        try await withServer { client, _ in
            var headers = self.protoHeaders
            headers[.contentEncoding] = "gzip"
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: ByteBuffer(bytes: bomb)) { r in
                XCTAssertEqual(r.status, .contentTooLarge)
                XCTAssertEqual(self.protobufStatus(r).code, 8)
            }
            // The server is still serving.
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: self.protobufBody([Fixtures.span(1)])) { r in
                XCTAssertEqual(r.status, .ok)
            }
        }
    }

    func testCorruptGzipGets400() async throws {
        try await withServer { client, _ in
            var headers = self.jsonHeaders
            headers[.contentEncoding] = "gzip"
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: ByteBuffer(string: "not gzip")) { r in
                XCTAssertEqual(r.status, .badRequest)
                XCTAssertTrue(try self.jsonStatus(r).message.hasPrefix("cannot decompress the gzip body"))
            }
        }
    }

    // MARK: §1.5–1.7 decoding, partial success, Status bodies

    func testUndecodableBodiesGet400InTheirEncoding() async throws {
        try await withServer { client, _ in
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: ByteBuffer(bytes: [0x0A, 0xFF, 0x01])) { r in
                XCTAssertEqual(r.status, .badRequest)
                let s = self.protobufStatus(r)
                XCTAssertEqual(s.code, 3)
                XCTAssertEqual(s.message, "cannot decode the protobuf body: protobuf body is not a valid ExportTraceServiceRequest")
            }
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.jsonHeaders, body: ByteBuffer(string: "{\"resourceSpans\": [")) { r in
                XCTAssertEqual(r.status, .badRequest)
                XCTAssertTrue(try self.jsonStatus(r).message.hasPrefix("cannot decode the JSON body: invalid JSON"))
            }
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.jsonHeaders, body: ByteBuffer(string: "[1]")) { r in
                XCTAssertEqual(r.status, .badRequest)
                XCTAssertEqual(try self.jsonStatus(r).message, "cannot decode the JSON body: JSON body must be an ExportTraceServiceRequest object")
            }
        }
    }

    func testPartialSuccessWithMixedSpansInProtobuf() async throws {
        try await withServer { client, h in
            let good = Fixtures.traceID.bytes
            let body = OTLPProtobufDecoderTests.requestWithIDs([
                (good, [1, 1, 1, 1, 1, 1, 1, 1], []),
                ([UInt8](repeating: 0, count: 16), [1, 1, 1, 1, 1, 1, 1, 2], []),
                (good, [1, 1, 1, 1, 1, 1, 1, 3], [7]),
                (good, [1, 1, 1, 1, 1, 1, 1, 4], []),
            ])
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: ByteBuffer(bytes: body)) { r in
                XCTAssertEqual(r.status, .ok)
                var reader = WireReader(Array(buffer: r.body))
                var inner = WireReader(reader.fields()[1]![0] as! [UInt8])
                let partial = inner.fields()
                XCTAssertEqual(partial[1]?.first as? UInt64, 2)
                XCTAssertEqual(String(decoding: partial[2]![0] as! [UInt8], as: UTF8.self), "2 spans rejected: trace_id is all zero")
            }
            XCTAssertEqual(Set(try h.exportedLines().compactMap { $0["spanId"]?.stringValue }), ["0101010101010101", "0101010101010104"])
        }
    }

    func testPartialSuccessWithMixedSpansInJSON() async throws {
        try await withServer { client, h in
            let json = #"""
                {"resourceSpans":[{"scopeSpans":[{"spans":[
                  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"ok"},
                  {"traceId":"5b8efff798038103d269b633813fc6","spanId":"eee19b7ec3c1b175","name":"short"}]}]}]}
                """#
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.jsonHeaders, body: ByteBuffer(string: json)) { r in
                XCTAssertEqual(r.status, .ok)
                XCTAssertEqual(String(buffer: r.body), #"{"partialSuccess":{"errorMessage":"1 spans rejected: trace_id must be 16 bytes, got 15","rejectedSpans":"1"}}"#)
            }
            XCTAssertEqual(try h.exportedLines().map { $0["name"] }, [.string("ok")])
        }
    }

    func testEmptyRequestSucceeds() async throws {
        try await withServer { client, _ in
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.jsonHeaders, body: ByteBuffer(string: "{}")) { r in
                XCTAssertEqual(r.status, .ok)
                XCTAssertEqual(String(buffer: r.body), "{}")
            }
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: ByteBuffer()) { r in
                XCTAssertEqual(r.status, .ok)
            }
        }
    }

    // MARK: §1.8 auth

    func testAuthRequiresAConfiguredCredential() async throws {
        let auth = AuthConfig(apiKeys: [.init(publicKey: "pk-lf-1", secretKey: "sk-lf-1")], bearerTokens: ["tok-1"])
        try await withServer(auth: auth) { client, h in
            func post(_ authorization: String?, span: UInt64) async throws -> TestResponse {
                var headers = self.protoHeaders
                if let authorization { headers[.authorization] = authorization }
                return try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: self.protobufBody([Fixtures.span(span)]))
            }
            let basic = { (s: String) in "Basic " + Base64.encode(Array(s.utf8)) }
            for (i, bad) in [nil, basic("pk-lf-1:wrong"), basic("pk-lf-2:sk-lf-1"), basic("pk-lf-1"), "Bearer nope", "Bearer sk-lf-1", "Digest x"].enumerated() {
                let r = try await post(bad, span: UInt64(100 + i))
                XCTAssertEqual(r.status, .unauthorized, bad ?? "none")
                XCTAssertEqual(self.protobufStatus(r).code, 16)
                XCTAssertEqual(r.headers[.wwwAuthenticate], "Basic realm=\"tracefold\"")
            }
            XCTAssertEqual(try h.exportedLines().count, 0, "nothing is stored on 401")
            let okBasic = try await post(basic("pk-lf-1:sk-lf-1"), span: 1)
            XCTAssertEqual(okBasic.status, .ok)
            let okBearer = try await post("bearer tok-1", span: 2)
            XCTAssertEqual(okBearer.status, .ok)
            XCTAssertEqual(try h.exportedLines().count, 2)
        }
    }

    // MARK: §1.11 idempotence

    func testRedeliveryChangesNothing() async throws {
        try await withServer { client, h in
            let body = self.protobufBody([Fixtures.span(1), Fixtures.span(2)])
            for _ in 0..<3 {
                try await client.execute(uri: "/v1/traces", method: .post, headers: self.protoHeaders, body: body) { r in
                    XCTAssertEqual(r.status, .ok)
                }
            }
            let first = try h.exportedLines()
            XCTAssertEqual(first.count, 2)
            // The same spans again, now in JSON and in another batching.
            let json = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000001002","name":"other"}]}]}]}"#
            try await client.execute(uri: "/v1/traces", method: .post, headers: self.jsonHeaders, body: ByteBuffer(string: json)) { r in
                XCTAssertEqual(r.status, .ok)
            }
            XCTAssertEqual(try h.exportedLines(), first)
        }
    }

    /// The HTTP port answering says nothing of the gRPC socket, which binds
    /// apart: /health/ready is 503 until it listens and again once closed.
    func testReadinessCoversTheGRPCReceiver() async throws {
        var config = CollectorConfig()
        config.grpc = GRPCReceiverConfig()
        config.store.directory = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: config.store.directory) }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let collector = try Collector(config: config, logger: logger)
        defer { collector.shutdown() }
        @Sendable func ready(_ client: any TestClientProtocol) async throws -> (HTTPResponse.Status, String) {
            try await client.execute(uri: "/health/ready", method: .get) { ($0.status, String(buffer: $0.body)) }
        }
        try await collector.makeApplication(port: 0).test(.router) { client in
            let (before, body) = try await ready(client)
            XCTAssertEqual(before, .serviceUnavailable)
            XCTAssertTrue(body.contains("the OTLP/gRPC (127.0.0.1:4317) receiver is not listening"), body)
            let server = try XCTUnwrap(collector.makeGRPCServer(port: 0))
            let serving = Task { try await server.serve() }
            let deadline = ContinuousClock.now + .seconds(30)
            while try await ready(client).0 != .ok {
                XCTAssertLessThan(ContinuousClock.now, deadline, "the gRPC server did not bind")
                try await Task.sleep(for: .milliseconds(10))
            }
            server.beginGracefulShutdown()
            try await serving.value
            let (after, closed) = try await ready(client)
            XCTAssertEqual(after, .serviceUnavailable)
            XCTAssertTrue(closed.contains("receiver is not listening"), closed)
        }
    }

    func testHealthEndpoints() async throws {
        try await withServer { client, _ in
            try await client.execute(uri: "/health/live", method: .get) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/health/ready", method: .get) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/nope", method: .get) { XCTAssertEqual($0.status, .notFound) }
        }
    }
}
