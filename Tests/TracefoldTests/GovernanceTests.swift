import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OTLP
import TracefoldConfig
import TracefoldIntake
import TracefoldModel
import XCTest

/// SPEC §5 over live HTTP on every store backend: `x-tracefold-metadata`,
/// HEADERS_TO_METADATA, the workspace and API-key layers, `_user`, and the
/// governed keys in the query API's filters and the summary's grouping.
final class GovernanceTests: XCTestCase, @unchecked Sendable {
    typealias C = Conformance

    static let yaml = """
        receivers:
          otlp:
            protocols:
              http:
                auth:
                  api_keys:
                    - {public_key: pk-a, secret_key: sk-a, workspace: alpha, metadata: {team: key-a, tier: gold}}
                    - {public_key: pk-b, secret_key: sk-b, workspace: beta, metadata: {team: key-b}}
                    - {public_key: pk-c, secret_key: sk-c}
        metadata:
          headers_to_metadata: X-Team, x-FEATURE, X-Long, Authorization, X-Api-Key, X-Auth-Token, Cookie
          schemas:
            api_key:
              type: object
              additionalProperties: true
              properties:
                region: {type: string, default: eu}
          workspaces:
            alpha: {metadata: {team: alpha, cost_center: "100"}}
            beta: {metadata: {cost_center: "200"}}
        processors:
          fold: {}
        service:
          pipelines:
            traces: {receivers: [otlp], processors: [fold]}
        """

    static func config() throws -> CollectorConfig {
        try CollectorConfig.parse(yaml: yaml, environment: [:])
    }

    static func withGoverned(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let config = try config()
        for backend in StoreBackend.available {
            try await QueryAPITests.withCollector(backend, auth: config.receiver.auth, config: config, body)
        }
    }

    static func basic(_ key: String) -> String {
        "Basic " + Base64.encode(Array("pk-\(key):sk-\(key)".utf8))
    }

    /// Posts spans as OTLP/JSON under a key, with extra headers; returns the
    /// status and the decoded response.
    @discardableResult
    static func post(
        _ client: any TestClientProtocol, _ spans: [Span], key: String = "c", resource: Resource = C.r0, headers: [(String, String)] = []
    ) async throws -> (HTTPResponse.Status, JSONValue) {
        var h: HTTPFields = [.contentType: "application/json", .authorization: basic(key)]
        for (name, value) in headers { h.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        let r = try await client.execute(uri: "/v1/traces", method: .post, headers: h, body: ByteBuffer(string: otlpJSON(spans, resource: resource)))
        return (r.status, try JSONParser.parse(Array(buffer: r.body)))
    }

    /// An OTLP/JSON request body, written out field by field.
    static func otlpJSON(_ spans: [Span], resource: Resource) -> String {
        func attributes(_ list: [Attribute]) -> JSONValue {
            .array(list.map { a in
                guard case .string(let s) = a.value else { fatalError("string attributes only") }
                return .object(["key": .string(a.key), "value": .object(["stringValue": .string(s)])])
            })
        }
        let spanObjects: [JSONValue] = spans.map { s in
            var o: [String: JSONValue] = [
                "traceId": .string(s.traceID.hex), "spanId": .string(s.spanID.hex), "name": .string(s.name),
                "startTimeUnixNano": .string(String(s.startTimeUnixNano)), "endTimeUnixNano": .string(String(s.endTimeUnixNano)),
                "attributes": attributes(s.attributes),
            ]
            if let p = s.parentSpanID { o["parentSpanId"] = .string(p.hex) }
            return .object(o)
        }
        let scope: JSONValue = .object(["name": .string(C.sdk.name), "version": .string(C.sdk.version)])
        return JSONWriter.serialize(.object(["resourceSpans": .array([.object([
            "resource": .object(["attributes": attributes(resource.attributes)]),
            "scopeSpans": .array([.object(["scope": scope, "spans": .array(spanObjects)])]),
        ])])]))
    }

    static func trace(_ client: any TestClientProtocol, _ id: TraceID = C.trace, key: String = "c") async throws -> JSONValue {
        let r = try await client.execute(uri: "/api/public/traces/\(id.hex)", method: .get, headers: [.authorization: basic(key)])
        XCTAssertEqual(r.status, .ok)
        return try JSONParser.parse(Array(buffer: r.body))
    }

    static func entry(_ trace: JSONValue, kind: String) -> JSONValue? {
        trace["metadataEntries"]?.arrayValue?.first { $0["kind"]?.stringValue == kind }
    }

    static func metadata(_ trace: JSONValue) -> [String: JSONValue] { trace["metadata"]?.objectValue ?? [:] }

    // MARK: §5.1 x-tracefold-metadata

    func testHeaderValuesAreStringsOfAtMost128ScalarsAndBadKeysAreDroppedWithAWarning() async throws {
        // 👩‍👩‍👧‍👦 is one character of 7 scalars: 18 of them plus "ab" is 128
        // scalars in 20 characters; 19 of them is 133 scalars in 19.
        let family = "👩‍👩‍👧‍👦"
        XCTAssertEqual(family.unicodeScalars.count, 7)
        let header: JSONValue = .object([
            "exact": .string(String(repeating: "a", count: 128)), "over": .string(String(repeating: "a", count: 129)),
            "emoji": .string(String(repeating: family, count: 18) + "ab"), "emojiOver": .string(String(repeating: family, count: 19)),
            "num": .int(5), "flag": .bool(true), "nested": .object(["k": .string("v")]), "": .string("x"),
        ])
        try await Self.withGoverned { client in
            let (status, response) = try await Self.post(
                client, [C.S("root", id: 1, 0, 10)], headers: [("x-tracefold-metadata", JSONWriter.serialize(header))]
            )
            XCTAssertEqual(status, .ok, "bad metadata never fails the spans")
            XCTAssertEqual(response["partialSuccess"]?["rejectedSpans"] ?? .string("0"), .string("0"), "no span is rejected")
            let message = try XCTUnwrap(response["partialSuccess"]?["errorMessage"]?.stringValue)
            XCTAssertTrue(message.hasPrefix("6 request metadata keys dropped: "), message)

            let trace = try await Self.trace(client)
            let m = Self.metadata(trace)
            XCTAssertEqual(m["exact"], .string(String(repeating: "a", count: 128)))
            XCTAssertEqual(m["emoji"], .string(String(repeating: family, count: 18) + "ab"))
            for dropped in ["over", "emojiOver", "num", "flag", "nested", ""] { XCTAssertNil(m[dropped], dropped) }
            let warnings = try XCTUnwrap(Self.entry(trace, kind: "tracefold.warnings")?["values"]?.objectValue)
            XCTAssertEqual(warnings["x-tracefold-metadata.over"], .string("value is 129 characters long, over the 128-character limit; dropped"))
            XCTAssertEqual(warnings["x-tracefold-metadata.emojiOver"], .string("value is 133 characters long, over the 128-character limit; dropped"))
            XCTAssertEqual(warnings["x-tracefold-metadata.num"], .string("value is a number, not a string; dropped"))
            XCTAssertEqual(warnings["x-tracefold-metadata.flag"], .string("value is a boolean, not a string; dropped"))
            XCTAssertEqual(warnings["x-tracefold-metadata.nested"], .string("value is an object, not a string; dropped"))
            XCTAssertEqual(warnings["x-tracefold-metadata.(empty key)"], .string("keys must be non-empty; dropped"))
        }
    }

    func testAHeaderThatIsNotAJSONObjectIsDroppedWholeAndTheSpansAreKept() async throws {
        try await Self.withGoverned { client in
            for (i, bad) in ["{not json", #"["a"]"#].enumerated() {
                let trace = TraceID(high: 0xbad, low: UInt64(i + 1))
                let (status, response) = try await Self.post(
                    client, [C.S("root", id: 1, 0, 10, ["user.id": .string("u")], trace: trace)], headers: [("X-Tracefold-Metadata", bad)]
                )
                XCTAssertEqual(status, .ok)
                XCTAssertTrue(response["partialSuccess"]?["errorMessage"]?.stringValue?.contains("x-tracefold-metadata: ") == true)
                let record = try await Self.trace(client, trace)
                XCTAssertEqual(Self.metadata(record)["_user"], .string("u"), "the span is stored")
                let warning = Self.entry(record, kind: "tracefold.warnings")?["values"]?["x-tracefold-metadata"]?.stringValue ?? ""
                XCTAssertTrue(warning.hasSuffix("header dropped"), warning)
            }
        }
    }

    // MARK: §5.2 HEADERS_TO_METADATA

    func testInjectedHeadersMatchInAnyCaseJoinRepeatsAndLoseToExplicitKeys() async throws {
        let config = try Self.config()
        XCTAssertEqual(config.metadata.headersToMetadata, ["x-team", "x-feature", "x-long"])
        XCTAssertEqual(config.metadata.deniedHeaders, ["authorization", "x-api-key", "x-auth-token", "cookie"])
        try await Self.withGoverned { client in
            let headers = [
                ("X-FEATURE", "search"), ("x-feature", "rerank"), ("X-Api-Key", "secret-1"), ("X-Auth-Token", "secret-2"),
                ("Cookie", "session=secret-3"), ("X-Long", String(repeating: "l", count: 129)), ("X-Team", "injected"),
                ("x-tracefold-metadata", #"{"x-team":"explicit"}"#),
            ]
            try await Self.post(client, [C.S("root", id: 1, 0, 10)], headers: headers)
            let trace = try await Self.trace(client)
            let m = Self.metadata(trace)
            XCTAssertEqual(m["x-feature"], .string("search, rerank"), "repeated headers are joined in order")
            XCTAssertEqual(m["x-team"], .string("explicit"), "an explicit key beats an injected one")
            XCTAssertNil(m["x-long"])
            for denied in ["authorization", "x-api-key", "x-auth-token", "cookie"] { XCTAssertNil(m[denied], denied) }
            let body = JSONWriter.serialize(trace)
            for secret in ["secret-1", "secret-2", "secret-3", "sk-c"] { XCTAssertFalse(body.contains(secret), secret) }
            XCTAssertNotNil(Self.entry(trace, kind: "tracefold.warnings")?["values"]?["header.x-long"])

            // A request without the headers adds nothing.
            let other = TraceID(high: 0x0e, low: 1)
            try await Self.post(client, [C.S("root", id: 1, 0, 10, trace: other)])
            let plain = try await Self.trace(client, other)
            XCTAssertEqual(Set(Self.metadata(plain).keys), ["resourceAttributes", "scope", "region"])
        }
    }

    func testEveryCredentialHeaderIsDenied() {
        let names = ["Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "api-key", "X-Auth-Token",
                     "X-Client-Secret", "x-refresh-token"]
        for name in names { XCTAssertTrue(MetadataConfig.isDenied(header: name), name) }
        let (allowed, denied) = MetadataConfig.headerList([" X-Team ", "", "x-team", "Authorization", "X-Feature"])
        XCTAssertEqual(allowed, ["x-team", "x-feature"])
        XCTAssertEqual(denied, ["authorization"])
    }

    func testHeadersToMetadataFromTheEnvironmentReplacesTheConfigList() throws {
        let config = try CollectorConfig.parse(yaml: Self.yaml, environment: ["HEADERS_TO_METADATA": "X-Region, Set-Cookie"])
        XCTAssertEqual(config.metadata.headersToMetadata, ["x-region"])
        XCTAssertEqual(config.metadata.deniedHeaders, ["set-cookie"])
        XCTAssertThrowsError(try CollectorConfig.parse(yaml: Self.yaml, environment: ["HEADERS_TO_METADATA": "bad header"]))
    }

    // MARK: §5.3 layers

    func testWorkspaceBeatsKeyBeatsRequestBeatsDefaultsInEitherArrivalOrder() async throws {
        let root = C.S("root", id: 1, 0, 30)
        let child = C.S("child", id: 2, parent: 1, 5, 10, ["langfuse.trace.metadata.tier": .string("\"span-tier\"")])
        let header = [("x-tracefold-metadata", #"{"team":"rogue","tier":"rogue","cost_center":"0","note":"hi","region":"us"}"#)]
        for requestFirst in [true, false] {
            try await Self.withGoverned { client in
                if requestFirst {
                    try await Self.post(client, [child], key: "a", headers: header)
                    try await Self.post(client, [root], key: "a")
                } else {
                    try await Self.post(client, [root], key: "a")
                    try await Self.post(client, [child], key: "a", headers: header)
                }
                // A REST write after both still loses to the governance layers.
                let write = try await client.execute(
                    uri: "/api/public/traces/\(C.trace.hex)/metadata", method: .post,
                    headers: [.contentType: "application/json", .authorization: Self.basic("a")],
                    body: ByteBuffer(string: #"{"metadata":[{"kind":"default","values":{"team":"rest","extra":"rest"}}]}"#)
                )
                XCTAssertEqual(write.status, .ok)
                let trace = try await Self.trace(client, key: "a")
                let m = Self.metadata(trace)
                XCTAssertEqual(m["team"], .string("alpha"), "workspace > API key > request (request first: \(requestFirst))")
                XCTAssertEqual(m["cost_center"], .string("100"))
                XCTAssertEqual(m["tier"], .string("gold"), "API key > request and span metadata")
                XCTAssertEqual(m["note"], .string("hi"), "ungoverned request keys stay")
                XCTAssertEqual(m["extra"], .string("rest"))
                XCTAssertEqual(m["region"], .string("us"), "a request value beats a schema default")
                XCTAssertEqual(Self.entry(trace, kind: "tracefold.workspace")?["values"], json(#"{"cost_center":"100","team":"alpha"}"#))
                XCTAssertEqual(Self.entry(trace, kind: "tracefold.workspace")?["label"], .string("Workspace Metadata (alpha)"))
                XCTAssertEqual(Self.entry(trace, kind: "tracefold.api_key")?["values"], json(#"{"team":"key-a","tier":"gold"}"#))
                XCTAssertNil(Self.entry(trace, kind: "tracefold.warnings"))
            }
        }
    }

    func testATraceIsGovernedByTheKeyItsRootSpanArrivedUnder() async throws {
        let root = C.S("root", id: 1, 0, 30)
        let child = C.S("child", id: 2, parent: 1, 5, 10)
        for rootFirst in [true, false] {
            try await Self.withGoverned { client in
                let sends: [(Span, String)] = rootFirst ? [(root, "b"), (child, "a")] : [(child, "a"), (root, "b")]
                for (span, key) in sends {
                    try await Self.post(client, [span], key: key, headers: [("x-tracefold-metadata", #"{"team":"request"}"#)])
                }
                let trace = try await Self.trace(client)
                let m = Self.metadata(trace)
                XCTAssertEqual(m["team"], .string("key-b"), "root under pk-b in workspace beta (root first: \(rootFirst))")
                XCTAssertEqual(m["cost_center"], .string("200"))
                XCTAssertNil(m["tier"], "pk-a's layer does not apply")
                XCTAssertEqual(m["region"], .string("eu"), "the schema default fills the gap")
                XCTAssertEqual(
                    Self.entry(trace, kind: "tracefold.warnings")?["values"]?["governance"],
                    .string("spans of this trace arrived under 2 API keys (pk-a (workspace alpha), pk-b (workspace beta)); the key of the root span, pk-b (workspace beta), governs the trace")
                )
            }
        }
    }

    func testClientsCannotForgeTheInternalRequestAttribute() async throws {
        let forged = RequestMetadata(
            metadata: ["team": "forged"],
            governance: Governance(apiKey: "pk-a", workspace: "alpha", apiKeyMetadata: [:], workspaceMetadata: ["cost_center": "forged"], defaults: [:])
        )
        let resource = Resource(attributes: C.r0.attributes + [Attribute(RequestMetadata.attributeKey, .string(forged.encoded))])
        try await Self.withGoverned { client in
            try await Self.post(client, [C.S("root", id: 1, 0, 10)], key: "c", resource: resource)
            let record = try await Self.trace(client)
            let m = Self.metadata(record)
            XCTAssertNil(m["team"])
            XCTAssertNil(m["cost_center"])
            XCTAssertNil(m["resourceAttributes"]?[RequestMetadata.attributeKey])
        }
    }

    // MARK: §5.4 _user

    func testUserIsDerivedFromUserIDAnExplicitValueWinsAndUserIDFallsBack() async throws {
        try await Self.withGoverned { client in
            let derived = TraceID(high: 0x05e, low: 1), explicit = TraceID(high: 0x05e, low: 2), fallback = TraceID(high: 0x05e, low: 3)
            try await Self.post(client, [C.S("root", id: 1, 0, 10, ["user.id": .string("u-1")], trace: derived)])
            try await Self.post(client, [C.S("root", id: 1, 0, 10, ["user.id": .string("u-2")], trace: explicit)],
                                headers: [("x-tracefold-metadata", #"{"_user":"explicit"}"#)])
            try await Self.post(client, [C.S("root", id: 1, 0, 10, trace: fallback)], headers: [("x-tracefold-metadata", #"{"_user":"from-meta"}"#)])

            var t = try await Self.trace(client, derived)
            XCTAssertEqual(Self.metadata(t)["_user"], .string("u-1"))
            t = try await Self.trace(client, explicit)
            XCTAssertEqual(Self.metadata(t)["_user"], .string("explicit"))
            XCTAssertEqual(t["userId"], .string("u-2"))
            t = try await Self.trace(client, fallback)
            XCTAssertEqual(t["userId"], .string("from-meta"))

            // The fallback userId is what the list filters and the summary group by.
            let r = try await client.execute(uri: "/api/public/traces?userId=from-meta", method: .get, headers: [.authorization: Self.basic("c")])
            XCTAssertEqual(QueryAPITests.ids(try JSONParser.parse(Array(buffer: r.body))), [fallback.hex])
        }
    }

    // MARK: Filtering and grouping

    func testGovernedKeysFilterAndGroupLikeAnyMetadataKey() async throws {
        try await Self.withGoverned { client in
            for (i, key) in ["a", "a", "b", "c"].enumerated() {
                let trace = TraceID(high: 0x9, low: UInt64(i + 1))
                try await Self.post(client, [C.S("root", id: 1, UInt64(i), UInt64(i) + 10, trace: trace)], key: key,
                                    headers: [("x-tracefold-metadata", #"{"team":"request","cost_center":"0"}"#)])
            }
            let filter = #"[{"type":"stringObject","column":"metadata","key":"cost_center","operator":"=","value":"100"}]"#
            let encoded = filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            var r = try await client.execute(uri: "/api/public/traces?filter=\(encoded)", method: .get, headers: [.authorization: Self.basic("c")])
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(Set(QueryAPITests.ids(try JSONParser.parse(Array(buffer: r.body)))), [TraceID(high: 0x9, low: 1).hex, TraceID(high: 0x9, low: 2).hex])

            r = try await client.execute(uri: "/api/metrics/summary?groupBy=metadata.team", method: .get, headers: [.authorization: Self.basic("c")])
            let groups = try JSONParser.parse(Array(buffer: r.body))["data"]?.arrayValue ?? []
            XCTAssertEqual(groups.map { $0["group"] }, [.string("alpha"), .string("key-b"), .string("request")])
            XCTAssertEqual(groups.map { $0["traces"] }, [.int(2), .int(1), .int(1)])
        }
    }
}
