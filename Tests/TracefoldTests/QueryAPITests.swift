import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OTLP
import TracefoldCollector
import TracefoldConfig
import TracefoldMapping
import TracefoldModel
import XCTest

/// SPEC §7.1, §7.6, §7.7 and reference/langfuse.md §(e) 28–29 over real HTTP.
final class QueryAPITests: XCTestCase, @unchecked Sendable {
    typealias C = Conformance

    /// Runs `body` against a fresh collector on each store backend in turn.
    static func withCollector(auth: AuthConfig = AuthConfig(), _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        for backend in StoreBackend.available { try await withCollector(backend, auth: auth, body) }
    }

    static func withCollector(
        _ backend: StoreBackend, auth: AuthConfig, config base: CollectorConfig = CollectorConfig(),
        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = base
        if backend == .postgres { config.store.postgresURL = try StoreBackend.freshPostgresDatabase() }
        config.store.directory = dir
        config.receiver.auth = auth
        config.fold = FoldProcessorConfig()
        if !config.service.processors.contains("fold") { config.service.processors.append("fold") }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let collector = try Collector(config: config, logger: logger)
        do {
            try await collector.makeApplication(port: 0).test(.live, body)
        } catch {
            collector.shutdown()
            throw error
        }
        collector.shutdown()
    }

    static let other = TraceID(hex: "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f")!

    /// Case 8's trace, plus a later trace of another user.
    static var seed: [UInt8] {
        let propagated: [String: AttributeValue] = [
            "user.id": .string("u1"), "session.id": .string("s1"), "langfuse.trace.name": .string("my-trace"),
            "langfuse.trace.tags": .array([.string("t1"), .string("t2")]), "langfuse.version": .string("v9"),
            "langfuse.environment": .string("prod"),
            "langfuse.trace.metadata.tenant": .string("\"acme\""), "langfuse.trace.metadata.count": .string("5"),
            "langfuse.trace.metadata.obj": .string(#"{"k":"v"}"#),
        ]
        var spans = [C.S("root", id: 1, 0, 30, propagated), C.S("a", id: 2, parent: 1, 5, 10, propagated),
                     C.S("gen", id: 3, parent: 1, 12, 20, propagated.merging(["langfuse.observation.type": .string("generation")]) { $1 })]
        spans.append(C.S("other", id: 9, 1000, 1010, ["user.id": .string("u2"), "langfuse.trace.tags": .array([.string("t1")])], trace: other))
        return OTLPProtobufEncoder.encode(SpanBatch(resourceSpans: [ResourceSpans(resource: C.r0, scopeSpans: [ScopeSpans(scope: C.sdk, spans: spans)])]))
    }

    static func post(_ client: any TestClientProtocol, headers: HTTPFields = [:]) async throws {
        var h = headers
        h[.contentType] = "application/x-protobuf"
        let r = try await client.execute(uri: "/v1/traces", method: .post, headers: h, body: ByteBuffer(bytes: seed))
        XCTAssertEqual(r.status, .ok)
    }

    static func get(_ client: any TestClientProtocol, _ uri: String, headers: HTTPFields = [:]) async throws -> (HTTPResponse.Status, JSONValue) {
        let r = try await client.execute(uri: uri, method: .get, headers: headers)
        return (r.status, try JSONParser.parse(Array(buffer: r.body)))
    }

    static func ids(_ v: JSONValue) -> [String] { v["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] }

    func testTraceListFiltersPagingAndOrder() async throws {
        try await Self.withCollector { client in
            // Visible as soon as the 200 arrives (SPEC §7.6).
            try await Self.post(client)
            let trace = C.trace.hex
            var (status, body) = try await Self.get(client, "/api/public/traces?userId=u1&tags=t1&tags=t2")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(Self.ids(body), [trace])
            XCTAssertEqual(body["meta"], json(#"{"page":1,"limit":50,"totalItems":1,"totalPages":1}"#))
            let item = body["data"]!.arrayValue![0]
            XCTAssertEqual(item["observations"]?.arrayValue?.count, 3)
            XCTAssertEqual(item["observations"]?.arrayValue?.first?.stringValue, C.id(1).hex, "ids, not objects, in the list")
            XCTAssertEqual(item["htmlPath"], .string("/project/tracefold/traces/\(trace)"))
            XCTAssertEqual(item["metadata"]?["tenant"], .string("acme"))

            (_, body) = try await Self.get(client, "/api/public/traces?tags=t1&tags=zz")
            XCTAssertEqual(Self.ids(body), [], "tags are all-of")
            (_, body) = try await Self.get(client, "/api/public/traces?tags=t1")
            XCTAssertEqual(Set(Self.ids(body)), [trace, Self.other.hex])
            (_, body) = try await Self.get(client, "/api/public/traces?environment=prod&environment=other")
            XCTAssertEqual(Self.ids(body), [trace], "environment is any-of")
            let ts = ISOTime.format(unixNano: C.T * 1_000_000)
            (_, body) = try await Self.get(client, "/api/public/traces?userId=u1&toTimestamp=\(ts)")
            XCTAssertEqual(Self.ids(body), [], "toTimestamp is exclusive")
            (_, body) = try await Self.get(client, "/api/public/traces?userId=u1&fromTimestamp=\(ts)")
            XCTAssertEqual(Self.ids(body), [trace], "fromTimestamp is inclusive")
            (_, body) = try await Self.get(client, "/api/public/traces")
            XCTAssertEqual(Self.ids(body), [Self.other.hex, trace], "default order: timestamp desc")
            (_, body) = try await Self.get(client, "/api/public/traces?orderBy=timestamp.asc")
            XCTAssertEqual(Self.ids(body), [trace, Self.other.hex])
            // Nothing is bookmarked: the id decides (it was an SQL error).
            (status, body) = try await Self.get(client, "/api/public/traces?orderBy=bookmarked.desc")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(Self.ids(body), [trace, Self.other.hex].sorted(by: >))
            (_, body) = try await Self.get(client, "/api/public/traces?limit=1&page=2")
            XCTAssertEqual(Self.ids(body), [trace])
            XCTAssertEqual(body["meta"], json(#"{"page":2,"limit":1,"totalItems":2,"totalPages":2}"#))
            (_, body) = try await Self.get(client, "/api/public/traces?limit=100")
            XCTAssertEqual(body["meta"]?["limit"], .int(100))
            (_, body) = try await Self.get(client, "/api/public/traces?limit=100&page=\(Int.max)")
            XCTAssertEqual(Self.ids(body), [], "a page far past the end is empty (it used to overflow)")
            (_, body) = try await Self.get(client, "/api/public/observations?limit=100&page=\(Int.max)")
            XCTAssertEqual(body["data"], .array([]))
        }
    }

    func testBadParametersAre400NamingTheParameter() async throws {
        try await Self.withCollector { client in
            for (query, name) in [("limit=101", "limit"), ("limit=0", "limit"), ("page=0", "page"), ("fromTimestamp=yesterday", "fromTimestamp"),
                                  ("orderBy=colour.asc", "orderBy"), ("filter=notjson", "filter")] {
                let (status, body) = try await Self.get(client, "/api/public/traces?\(query)")
                XCTAssertEqual(status, .badRequest, query)
                XCTAssertTrue(body["message"]?.stringValue?.hasPrefix(name) ?? false, "\(query): \(body)")
            }
            let (status, body) = try await Self.get(client, "/api/public/observations?type=BOGUS")
            XCTAssertEqual(status, .badRequest)
            XCTAssertTrue(body["message"]?.stringValue?.hasPrefix("type") ?? false)
        }
    }

    /// SPEC §7.8: httpx, `requests` and `urlencode` send a space as `+`;
    /// `%2B` is a literal plus; a stray `%` stays as it is.
    func testQueryStringsAreFormDecoded() async throws {
        try await Self.withCollector { client in
            try await Self.post(client)
            let spaced = TraceID(hex: "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0")!
            let batch = SpanBatch(resourceSpans: [ResourceSpans(resource: C.r0, scopeSpans: [ScopeSpans(scope: C.sdk, spans: [
                C.S("answer flow", id: 20, 0, 5, ["langfuse.trace.name": .string("answer flow"), "user.id": .string("a+b 100%")], trace: spaced),
            ])])])
            let r = try await client.execute(
                uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"],
                body: ByteBuffer(bytes: OTLPProtobufEncoder.encode(batch))
            )
            XCTAssertEqual(r.status, .ok)
            for (query, expected) in [
                ("name=answer+flow", [spaced.hex]),
                ("name=answer%20flow", [spaced.hex]),
                ("name=answer%2Bflow", []),
                ("name=answer+flow&name=my-trace", [spaced.hex]),  // the first value counts, as URLSearchParams.get
                ("userId=a%2Bb+100%25", [spaced.hex]),
                ("userId=a%2Bb+100%", [spaced.hex]),  // a % without two hex digits is kept
                ("userId=a+b+100%25", []),
                ("userId=u%31&name=my%2Dtrace", [C.trace.hex]),
            ] {
                let (status, body) = try await Self.get(client, "/api/public/traces?\(query)")
                XCTAssertEqual(status, .ok, query)
                XCTAssertEqual(Self.ids(body), expected, query)
            }
            // json.dumps with its default separators, form-encoded as httpx does.
            let filter = #"[{"type": "stringObject", "column": "metadata", "key": "tenant", "operator": "=", "value": "acme"}]"#
            var allowed = CharacterSet.alphanumerics
            allowed.insert(" ")
            let encoded = filter.addingPercentEncoding(withAllowedCharacters: allowed)!.replacingOccurrences(of: " ", with: "+")
            XCTAssertTrue(encoded.contains("+"))
            let (status, body) = try await Self.get(client, "/api/public/traces?filter=\(encoded)")
            XCTAssertEqual(status, .ok, "\(body)")
            XCTAssertEqual(Self.ids(body), [C.trace.hex])
            let (v2Status, v2) = try await Self.get(client, "/api/public/v2/observations?name=answer+flow")
            XCTAssertEqual(v2Status, .ok)
            XCTAssertEqual(v2["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [C.id(20).hex])
        }
    }

    func testMetadataFilter() async throws {  // case 29
        try await Self.withCollector { client in
            try await Self.post(client)
            func filter(_ f: String) async throws -> [String] {
                let encoded = f.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let (status, body) = try await Self.get(client, "/api/public/traces?filter=\(encoded)")
                XCTAssertEqual(status, .ok, f)
                return Self.ids(body)
            }
            let got1 = try await filter(#"[{"type":"stringObject","column":"metadata","key":"tenant","operator":"=","value":"acme"}]"#)
            XCTAssertEqual(got1, [C.trace.hex])
            let got2 = try await filter(#"[{"type":"stringObject","column":"metadata","key":"count","operator":"=","value":"5"}]"#)
            XCTAssertEqual(got2, [C.trace.hex])
            let got3 = try await filter(#"[{"type":"stringObject","column":"metadata","key":"obj.k","operator":"=","value":"v"}]"#)
            XCTAssertEqual(got3, [], "only top-level keys")
            let got4 = try await filter(#"[{"type":"stringObject","column":"metadata","key":"obj","operator":"contains","value":"k"}]"#)
            XCTAssertEqual(got4, [C.trace.hex])
            let got5 = try await filter(#"[{"type":"stringObject","column":"metadata","key":"tenant","operator":"=","value":"nope"}]"#)
            XCTAssertEqual(got5, [])
        }
    }

    /// A metadata-equals filter sorted by timestamp is read from
    /// trace_metadata's index in page order; pages, totals, other filters,
    /// other sort orders and a trace whose start moves must all agree with
    /// the plain query.
    func testMetadataFilterPagesInTimestampOrder() async throws {
        // Trace n starts at n*10 ms; tenant acme on even n, region eu on n < 4, user u1 on n % 3 == 0.
        @Sendable func trace(_ n: Int) -> TraceID { TraceID(hex: String(format: "%032x", 0x5000 + n))! }
        let spans = (0..<8).map { n in
            var attrs: [String: AttributeValue] = [
                "langfuse.trace.metadata.tenant": .string(n % 2 == 0 ? "acme" : "other"), "langfuse.trace.name": .string("name-\(7 - n)"),
                "user.id": .string(n % 3 == 0 ? "u1" : "u2"),
            ]
            if n < 4 { attrs["langfuse.trace.metadata.region"] = .string("eu") }
            return C.S("t\(n)", id: UInt64(100 + n), UInt64(n * 10), UInt64(n * 10 + 5), attrs, trace: trace(n))
        }
        let batch = OTLPProtobufEncoder.encode(SpanBatch(resourceSpans: [ResourceSpans(resource: C.r0, scopeSpans: [ScopeSpans(scope: C.sdk, spans: spans)])]))
        let acme = #"{"type":"stringObject","column":"metadata","key":"tenant","operator":"=","value":"acme"}"#
        let eu = #"{"type":"stringObject","column":"metadata","key":"region","operator":"=","value":"eu"}"#
        let q: @Sendable (String) -> String = { filters in "filter=" + "[\(filters)]".addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
        try await Self.withCollector { client in
            let r = try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"], body: ByteBuffer(bytes: batch))
            XCTAssertEqual(r.status, .ok)
            func list(_ query: String) async throws -> ([String], JSONValue?) {
                let (status, body) = try await Self.get(client, "/api/public/traces?\(query)")
                XCTAssertEqual(status, .ok, query)
                return (Self.ids(body), body["meta"]?["totalItems"])
            }
            var (ids, total) = try await list("\(q(acme))&limit=3")
            XCTAssertEqual(ids, [6, 4, 2].map { trace($0).hex }, "newest first")
            XCTAssertEqual(total, .int(4))
            (ids, total) = try await list("\(q(acme))&limit=3&page=2")
            XCTAssertEqual(ids, [trace(0).hex])
            XCTAssertEqual(total, .int(4))
            (ids, total) = try await list("\(q(acme))&limit=3&page=3")
            XCTAssertEqual(ids, [], "past the last page")
            XCTAssertEqual(total, .int(4))
            (ids, _) = try await list("\(q(acme))&limit=2&page=2")
            XCTAssertEqual(ids, [2, 0].map { trace($0).hex }, "a page picked from the index, then joined, keeps its order")
            (ids, _) = try await list("\(q(acme))&orderBy=timestamp.asc&limit=3")
            XCTAssertEqual(ids, [0, 2, 4].map { trace($0).hex })
            (ids, total) = try await list("\(q(acme))&userId=u1")
            XCTAssertEqual(ids, [6, 0].map { trace($0).hex }, "with a column filter")
            XCTAssertEqual(total, .int(2))
            (ids, total) = try await list("\(q(eu + "," + acme))")
            XCTAssertEqual(ids, [2, 0].map { trace($0).hex }, "two metadata filters")
            XCTAssertEqual(total, .int(2))
            let from = ISOTime.format(unixNano: (C.T + 20) * 1_000_000)
            (ids, total) = try await list("\(q(acme))&fromTimestamp=\(from)")
            XCTAssertEqual(ids, [6, 4, 2].map { trace($0).hex }, "with a time range")
            XCTAssertEqual(total, .int(3))
            (ids, _) = try await list("\(q(acme))&orderBy=name.asc")
            XCTAssertEqual(ids, [6, 4, 2, 0].map { trace($0).hex }, "sorted by another column")

            // A span that starts before trace 6's first one moves it to the end.
            let early = OTLPProtobufEncoder.encode(SpanBatch(resourceSpans: [ResourceSpans(resource: C.r0, scopeSpans: [ScopeSpans(
                scope: C.sdk, spans: [C.S("early", id: 199, 0, 1, ["langfuse.trace.metadata.tenant": .string("acme")], trace: trace(6))])])]))
            let r2 = try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"], body: ByteBuffer(bytes: early))
            XCTAssertEqual(r2.status, .ok)
            (ids, total) = try await list(q(acme))
            XCTAssertEqual(ids, [4, 2, 6, 0].map { trace($0).hex }, "trace 6 now starts with trace 0; the tie goes by id")
            XCTAssertEqual(total, .int(4))
        }
    }

    func testSingleTraceAndObservations() async throws {  // case 28
        try await Self.withCollector { client in
            try await Self.post(client)
            var (status, body) = try await Self.get(client, "/api/public/traces/\(C.trace.hex)")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["observations"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["root", "a", "gen"], "full objects by start time")
            XCTAssertEqual(body["latency"], .double(0.03))
            (status, body) = try await Self.get(client, "/api/public/traces/\(String(repeating: "ab", count: 16))")
            XCTAssertEqual(status, .notFound)
            (status, _) = try await Self.get(client, "/api/public/traces/not-hex")
            XCTAssertEqual(status, .notFound)

            (status, body) = try await Self.get(client, "/api/public/observations?traceId=\(C.trace.hex)&type=GENERATION")
            XCTAssertEqual(Self.ids(body), [C.id(3).hex])
            (_, body) = try await Self.get(client, "/api/public/observations?userId=u2")
            XCTAssertEqual(Self.ids(body), [C.id(9).hex])
            (_, body) = try await Self.get(client, "/api/public/observations?parentObservationId=\(C.id(1).hex)")
            XCTAssertEqual(Self.ids(body), [C.id(3).hex, C.id(2).hex], "start time desc")
            (status, body) = try await Self.get(client, "/api/public/observations/\(C.id(2).hex)")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["name"], .string("a"))
            XCTAssertEqual(body["parentObservationId"], .string(C.id(1).hex))
            (status, _) = try await Self.get(client, "/api/public/observations/0000000000000bad")
            XCTAssertEqual(status, .notFound)
        }
    }

    func testQueryNeedsTheIntakeCredentialsWhenAuthIsOn() async throws {  // SPEC §7.7
        let auth = AuthConfig(apiKeys: [.init(publicKey: "pk", secretKey: "sk")])
        try await Self.withCollector(auth: auth) { client in
            let basic: HTTPFields = [.authorization: "Basic " + Base64.encode(Array("pk:sk".utf8))]
            try await Self.post(client, headers: basic)
            var (status, _) = try await Self.get(client, "/api/public/traces")
            XCTAssertEqual(status, .unauthorized)
            (status, _) = try await Self.get(client, "/api/public/observations/\(C.id(1).hex)", headers: [.authorization: "Basic " + Base64.encode(Array("pk:wrong".utf8))])
            XCTAssertEqual(status, .unauthorized)
            let (okStatus, body) = try await Self.get(client, "/api/public/traces", headers: basic)
            XCTAssertEqual(okStatus, .ok)
            XCTAssertEqual(body["meta"]?["totalItems"], .int(2))
            let health = try await client.execute(uri: "/health/live", method: .get)
            XCTAssertEqual(health.status, .ok)
        }
    }

    func testV2ObservationsCursorAndFieldGroups() async throws {  // case 30
        try await Self.withCollector { client in
            try await Self.post(client)
            var (status, body) = try await Self.get(client, "/api/public/v2/observations?traceId=\(C.trace.hex)&fields=core,basic,metadata&limit=2")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(Self.ids(body), [C.id(3).hex, C.id(2).hex], "start time desc")
            let first = body["data"]!.arrayValue![0]
            XCTAssertEqual(first["userId"], .string("u1"))
            XCTAssertEqual(first["sessionId"], .string("s1"))
            XCTAssertEqual(first["metadata"]?["resourceAttributes"]?["service.name"], .string("svc"))
            XCTAssertNil(first["input"], "io was not asked for")
            guard let cursor = body["meta"]?["cursor"]?.stringValue else { return XCTFail("no cursor: \(body)") }
            (status, body) = try await Self.get(client, "/api/public/v2/observations?traceId=\(C.trace.hex)&fields=core,basic,io&limit=2&cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(Self.ids(body), [C.id(1).hex])
            XCTAssertNil(body["meta"]?["cursor"], "the last page has no cursor")
            let root = body["data"]!.arrayValue![0]
            XCTAssertEqual(root["parentObservationId"], .null)
            XCTAssertEqual(root["isRootObservation"], .bool(true))
            (_, body) = try await Self.get(client, "/api/public/v2/observations?isRootObservation=true")
            XCTAssertEqual(Set(Self.ids(body)), [C.id(1).hex, C.id(9).hex])
            (status, body) = try await Self.get(client, "/api/public/v2/observations?limit=1000")
            XCTAssertEqual(status, .ok, "1000 is the v2 maximum")
            XCTAssertEqual(Self.ids(body).count, 4)
            (status, body) = try await Self.get(client, "/api/public/v2/observations?limit=1001")
            XCTAssertEqual(status, .badRequest)
            XCTAssertTrue(body["message"]?.stringValue?.hasPrefix("limit") ?? false)
            (status, _) = try await Self.get(client, "/api/public/v2/observations?cursor=garbage")
            XCTAssertEqual(status, .badRequest)
            (status, _) = try await Self.get(client, "/api/public/v2/observations?fields=everything")
            XCTAssertEqual(status, .badRequest)
        }
    }

    func testTraceMetadataGroupedByScopeAndKind() async throws {  // SPEC §7.3
        try await Self.withCollector { client in
            var events = [MetadataModelTests.metadataEvent(#"{"plan":"pro"}"#, kind: "billing", scope: "trace", at: 1)]
            events.append(MetadataModelTests.metadataEvent(#"{"route":"/x"}"#, kind: "net", scope: "extended_trace", spanID: "00f067aa0ba902b7", at: 2))
            let span = C.S("root", id: 1, 0, 10, ["langfuse.observation.metadata.step": .string("\"parse\""), "gen_ai.request.model": .string("m")], events: events)
            let body = OTLPProtobufEncoder.encode(Fixtures.batch([span]))
            let r = try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"], body: ByteBuffer(bytes: body))
            XCTAssertEqual(r.status, .ok)
            let (status, meta) = try await Self.get(client, "/api/traces/\(C.trace.hex)/metadata")
            XCTAssertEqual(status, .ok)
            let m = meta["metadata"]!
            XCTAssertEqual(m["trace"]?["userland.billing"]?.arrayValue?.first?["values"], json(#"{"plan":"pro"}"#))
            XCTAssertEqual(m["trace"]?["userland.billing"]?.arrayValue?.first?["label"], .string("User Metadata (billing)"))
            XCTAssertEqual(m["observation"]?["userland.default"]?.arrayValue?.first?["spanId"], .string(C.id(1).hex))
            XCTAssertEqual(m["extended_trace"]?["tracefold.ai"]?.arrayValue?.first?["values"], json(#"{"gen_ai.request.model":"m"}"#))
            // Addressed to a span that never arrived, and still reported.
            let pending = m["extended_trace"]?["userland.net"]?.arrayValue?.first
            XCTAssertEqual(pending?["spanId"], .string("00f067aa0ba902b7"))
            XCTAssertEqual(pending?["values"], json(#"{"route":"/x"}"#))
            let (missing, _) = try await Self.get(client, "/api/traces/\(String(repeating: "cd", count: 16))/metadata")
            XCTAssertEqual(missing, .notFound)
        }
    }

    func testMetricsSummaryGroupsInTheStore() async throws {  // SPEC §7.4
        try await Self.withCollector { client in
            // Three "acme" traces lasting 10, 20 and 30 ms and one "beta" trace of 40 ms;
            // each has a root and a generation with usage and cost; one generation fails.
            var spans = [Span]()
            for (i, (tenant, ms)) in [("acme", UInt64(10)), ("acme", 20), ("acme", 30), ("beta", 40)].enumerated() {
                let trace = TraceID(high: 0x5555, low: UInt64(i + 1))
                let n = UInt64(i * 10)
                spans.append(C.S("root", id: n + 1, 1000 * UInt64(i), 1000 * UInt64(i) + ms, [
                    "langfuse.trace.metadata.tenant": .string("\"\(tenant)\""), "user.id": .string(i % 2 == 0 ? "even" : "odd"),
                ], trace: trace))
                spans.append(C.S("llm", id: n + 2, parent: n + 1, 1000 * UInt64(i) + 1, 1000 * UInt64(i) + 2,
                                 status: i == 3 ? SpanStatus(code: .error, message: "boom") : SpanStatus(), [
                    "langfuse.observation.type": .string("generation"), "langfuse.observation.model.name": .string(i == 3 ? "small" : "gpt-4o"),
                    "langfuse.observation.usage_details": .string(#"{"input":10,"output":5}"#),
                    "langfuse.observation.cost_details": .string(#"{"total":0.5}"#),
                ], trace: trace))
            }
            let r = try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"],
                                             body: ByteBuffer(bytes: OTLPProtobufEncoder.encode(Fixtures.batch(spans))))
            XCTAssertEqual(r.status, .ok)

            var (status, body) = try await Self.get(client, "/api/metrics/summary?groupBy=metadata.tenant")
            XCTAssertEqual(status, .ok)
            let groups = body["data"]!.arrayValue!
            XCTAssertEqual(groups.map { $0["group"] }, [.string("acme"), .string("beta")])
            XCTAssertEqual(groups[0], json(#"{"group":"acme","traces":3,"observations":6,"errors":0,"latencyP50":0.02,"latencyP95":0.03,"inputTokens":30,"outputTokens":15,"totalTokens":45,"totalCost":1.5,"scores":{}}"#))
            XCTAssertEqual(groups[1]["errors"], .int(1))
            XCTAssertEqual(groups[1]["latencyP50"], .double(0.04))

            (_, body) = try await Self.get(client, "/api/metrics/summary?groupBy=model")
            XCTAssertEqual(body["data"]?.arrayValue?.map { $0["group"] }, [.string("gpt-4o"), .string("small")], "observations without a model are not a group")
            XCTAssertEqual(body["data"]?.arrayValue?.first?["traces"], .int(3))
            XCTAssertEqual(body["data"]?.arrayValue?.first?["totalCost"], .double(1.5))

            (_, body) = try await Self.get(client, "/api/metrics/summary?groupBy=userId")
            XCTAssertEqual(Set(body["data"]?.arrayValue?.compactMap { $0["group"]?.stringValue } ?? []), ["even", "odd"])
            let to = ISOTime.format(unixNano: (C.T + 1500) * 1_000_000)
            (_, body) = try await Self.get(client, "/api/metrics/summary?groupBy=name&to=\(to)")
            XCTAssertEqual(body["data"]?.arrayValue?.first?["traces"], .int(2), "to is exclusive and bounds the range")

            (status, body) = try await Self.get(client, "/api/metrics/summary?groupBy=colour")
            XCTAssertEqual(status, .badRequest)
            XCTAssertTrue(body["message"]?.stringValue?.hasPrefix("groupBy") ?? false)
            (status, _) = try await Self.get(client, "/api/metrics/summary")
            XCTAssertEqual(status, .badRequest)
        }
    }

    /// Four traces a second apart: a generation with usage in each; the
    /// second's also has a WARNING span, the fourth's generation fails.
    static var leveledTraces: [UInt8] {
        var spans = [Span]()
        for i in 0..<4 {
            let trace = TraceID(high: 0x6666, low: UInt64(i + 1))
            let n = UInt64(i * 10), t = 1000 * UInt64(i)
            spans.append(C.S("root", id: n + 1, t, t + 50, trace: trace))
            spans.append(C.S("llm", id: n + 2, parent: n + 1, t + 1, t + 2,
                             status: i == 3 ? SpanStatus(code: .error, message: "boom") : SpanStatus(), [
                "langfuse.observation.type": .string("generation"), "langfuse.observation.model.name": .string("gpt-4o"),
                "langfuse.observation.usage_details": .string(#"{"input":10,"output":5}"#),
                "langfuse.observation.cost_details": .string(#"{"total":0.5}"#),
            ], trace: trace))
            if i == 1 { spans.append(C.S("slow", id: n + 3, parent: n + 1, t + 3, t + 4, ["langfuse.observation.level": .string("WARNING")], trace: trace)) }
        }
        return OTLPProtobufEncoder.encode(Fixtures.batch(spans))
    }

    func testTraceListTotalsLevelFilterAndTimeSeries() async throws {
        try await Self.withCollector { client in
            let r = try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"],
                                             body: ByteBuffer(bytes: Self.leveledTraces))
            XCTAssertEqual(r.status, .ok)
            let hex = (1...4).map { TraceID(high: 0x6666, low: UInt64($0)).hex }

            var (status, body) = try await Self.get(client, "/api/public/traces?orderBy=timestamp.asc")
            XCTAssertEqual(status, .ok)
            let items = body["data"]?.arrayValue ?? []
            XCTAssertEqual(items.map { $0["totalTokens"] }, Array(repeating: .int(15), count: 4), "tokens summed over each trace's observations")
            XCTAssertEqual(items.map { $0["inputTokens"] }, Array(repeating: .int(10), count: 4))
            XCTAssertEqual(items.map { $0["observationCount"] }, [.int(2), .int(3), .int(2), .int(2)])
            XCTAssertEqual(items.map { $0["errorCount"] }, [.int(0), .int(0), .int(0), .int(1)])
            XCTAssertEqual(items.map { $0["level"] }, [.string("DEFAULT"), .string("WARNING"), .string("DEFAULT"), .string("ERROR")])

            for (level, expected) in [("ERROR", [hex[3]]), ("WARNING", [hex[1]]), ("DEFAULT", [hex[0], hex[2]]), ("DEBUG", []), ("error", [hex[3]])] {
                (status, body) = try await Self.get(client, "/api/public/traces?orderBy=timestamp.asc&level=\(level)")
                XCTAssertEqual(status, .ok)
                XCTAssertEqual(Self.ids(body), expected, "level=\(level)")
                XCTAssertEqual(body["meta"]?["totalItems"], .int(Int64(expected.count)))
            }
            let filter = #"[{"type":"string","column":"level","operator":"=","value":"WARNING"}]"#
            (_, body) = try await Self.get(client, "/api/public/traces?filter=\(filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            XCTAssertEqual(Self.ids(body), [hex[1]], "level in a filter object")
            (status, body) = try await Self.get(client, "/api/public/traces?level=LOUD")
            XCTAssertEqual(status, .badRequest)
            XCTAssertEqual(body["message"], .string(#"level must be DEBUG, DEFAULT, WARNING or ERROR, got "LOUD""#))

            // One-second intervals over the four seconds, and one more.
            let from = ISOTime.format(unixNano: C.T * 1_000_000), to = ISOTime.format(unixNano: (C.T + 5000) * 1_000_000)
            (status, body) = try await Self.get(client, "/api/metrics/timeseries?from=\(from)&to=\(to)&interval=1")
            XCTAssertEqual(status, .ok)
            let data = body["data"]?.arrayValue ?? []
            XCTAssertEqual(data.map { $0["timestamp"]?.stringValue }, (0..<5).map { ISOTime.format(unixNano: (C.T + 1000 * UInt64($0)) * 1_000_000) })
            XCTAssertEqual(data.map { $0["traces"] }, [.int(1), .int(1), .int(1), .int(1), .int(0)])
            XCTAssertEqual(data.map { $0["errorTraces"] }, [.int(0), .int(0), .int(0), .int(1), .int(0)], "a trace with an ERROR observation")
            XCTAssertEqual(data.map { $0["totalCost"].flatMap { if case .double(let d) = $0 { d } else if case .int(let n) = $0 { Double(n) } else { nil } } },
                           [0.5, 0.5, 0.5, 0.5, 0])
            XCTAssertEqual(body["interval"], .int(1))
            // Every interval of a minute that holds them: one.
            (_, body) = try await Self.get(client, "/api/metrics/timeseries?from=\(from)&to=\(to)")
            XCTAssertEqual(body["data"]?.arrayValue?.map { $0["traces"] }.reduce(Int64(0)) { sum, v in if case .int(let n)? = v { sum + n } else { sum } }, 4)

            for (query, message) in [
                ("interval=0", #"interval must be a whole number of seconds from 1 to 86400, got "0""#),
                ("interval=86401", #"interval must be a whole number of seconds from 1 to 86400, got "86401""#),
                ("from=\(to)&to=\(from)", "from must be before to"),
                ("from=2026-01-01T00:00:00Z&to=2026-01-01T02:46:41Z&interval=1", "from..to holds 10001 intervals of 1 s, over the limit of 10000; take a longer interval"),
                ("from=soon", #"from must be an ISO-8601 timestamp, got "soon""#),
            ] {
                (status, body) = try await Self.get(client, "/api/metrics/timeseries?\(query)")
                XCTAssertEqual(status, .badRequest, query)
                XCTAssertEqual(body["message"], .string(message), query)
            }
            (status, body) = try await Self.get(client, "/api/metrics/timeseries?from=2026-01-01T00:00:00Z&to=2026-01-01T02:46:40Z&interval=1")
            XCTAssertEqual(status, .ok, "10000 intervals: at the limit")
            XCTAssertEqual(body["data"]?.arrayValue?.count, 10_000)
        }
    }

    /// The explorer is on the query API's port, behind its credentials,
    /// and `query.explorer: false` takes it away.
    func testTheExplorerIsServedBehindTheCredentialsUnlessTurnedOff() async throws {
        let auth = AuthConfig(apiKeys: [.init(publicKey: "pk-ui", secretKey: "sk-ui")])
        try await Self.withCollector(.sqlite, auth: auth) { client in
            var r = try await client.execute(uri: "/ui/", method: .get)
            XCTAssertEqual(r.status, .unauthorized)
            XCTAssertEqual(r.headers[.wwwAuthenticate], #"Basic realm="tracefold""#)
            r = try await client.execute(uri: "/ui/assets/app.js", method: .get)
            XCTAssertEqual(r.status, .unauthorized)
            let basic = "Basic " + Data("pk-ui:sk-ui".utf8).base64EncodedString()
            r = try await client.execute(uri: "/ui/", method: .get, headers: [.authorization: basic])
            XCTAssertEqual(r.status, .ok)
            XCTAssertTrue(String(buffer: r.body).contains("/ui/assets/app.js"))
        }
        var off = CollectorConfig()
        off.query.explorer = false
        try await Self.withCollector(.sqlite, auth: AuthConfig(), config: off) { client in
            let r = try await client.execute(uri: "/ui/", method: .get)
            XCTAssertEqual(r.status, .notFound)
        }
        let base = "receivers: {otlp: {protocols: {http: {}}}}\nservice: {pipelines: {traces: {receivers: [otlp]}}}\n"
        XCTAssertTrue(try CollectorConfig.parse(yaml: base, environment: [:]).query.explorer, "on by default")
        XCTAssertFalse(try CollectorConfig.parse(yaml: base + "query: {explorer: false}", environment: [:]).query.explorer)
        XCTAssertThrowsError(try CollectorConfig.parse(yaml: base + "query: {explorer: maybe}", environment: [:])) { e in
            XCTAssertTrue("\(e)".contains("query.explorer"), "\(e)")
        }
    }
}
