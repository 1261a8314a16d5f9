import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import TracefoldConfig
import TracefoldMapping
import TracefoldModel
import TracefoldStore
import XCTest

/// SPEC §7.9 and issue 19: Langfuse's projects, health, scores, deletes and
/// sessions, over real HTTP on every store backend.
final class ScoresAPITests: XCTestCase, @unchecked Sendable {
    typealias C = Conformance
    static let trace = C.trace.hex

    static func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, headers: HTTPFields = [:]
    ) async throws -> (HTTPResponse.Status, JSONValue) {
        var h = headers
        h[.contentType] = "application/json"
        let r = try await client.execute(uri: path, method: method, headers: h, body: body.map { ByteBuffer(string: $0) })
        let bytes = Array(buffer: r.body)
        return (r.status, bytes.isEmpty ? .null : try JSONParser.parse(bytes))
    }

    static func score(_ fields: String) -> String { "{\"traceId\":\"\(trace)\",\(fields)}" }

    func testProjectsAndHealthAnswerTheSDKsShapes() async throws {
        var config = CollectorConfig()
        config.query.project = "acme"
        try await QueryAPITests.withCollector(.sqlite, auth: AuthConfig(), config: config) { client in
            var (status, body) = try await Self.send(client, .get, "/api/public/projects")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["data"]?.arrayValue?.count, 1)
            XCTAssertEqual(body["data"]?[0]?["id"], .string("acme"))
            XCTAssertEqual(body["data"]?[0]?["name"], .string("acme"))
            XCTAssertNotNil(body["data"]?[0]?["organization"]?["id"]?.stringValue)
            XCTAssertEqual(body["data"]?[0]?["metadata"], .object([:]))
            try await QueryAPITests.post(client)
            (_, body) = try await QueryAPITests.get(client, "/api/public/traces/\(Self.trace)")
            XCTAssertEqual(body["projectId"], .string("acme"), "records carry the configured project")
            (status, body) = try await Self.send(client, .get, "/api/public/health")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["status"], .string("OK"))
            XCTAssertNotNil(body["version"]?.stringValue)
        }
        let auth = AuthConfig(apiKeys: [.init(publicKey: "pk-a", secretKey: "sk-a", workspace: "research"), .init(publicKey: "pk-b", secretKey: "sk-b")])
        try await QueryAPITests.withCollector(.sqlite, auth: auth) { client in
            func basic(_ pair: String) -> HTTPFields { [.authorization: "Basic " + Base64.encode(Array(pair.utf8))] }
            var (status, body) = try await Self.send(client, .get, "/api/public/projects", headers: basic("pk-a:sk-a"))
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["data"]?[0]?["name"], .string("research"), "a key's workspace is its project")
            (_, body) = try await Self.send(client, .get, "/api/public/projects", headers: basic("pk-b:sk-b"))
            XCTAssertEqual(body["data"]?[0]?["name"], .string("tracefold"), "a key without a workspace: the configured project")
            (status, _) = try await Self.send(client, .get, "/api/public/projects", headers: basic("pk-a:wrong"))
            XCTAssertEqual(status, .unauthorized)
            (status, _) = try await Self.send(client, .get, "/api/public/health")
            XCTAssertEqual(status, .ok, "health needs no credentials")
            for (method, path) in [(HTTPRequest.Method.post, "/api/public/scores"), (.get, "/api/public/v3/scores"), (.delete, "/api/public/traces/\(Self.trace)"),
                                   (.delete, "/api/public/scores/x"), (.get, "/api/public/sessions")] {
                (status, _) = try await Self.send(client, method, path, "[]")
                XCTAssertEqual(status, .unauthorized, "\(method) \(path) needs credentials")
            }
        }
    }

    func testProjectNameIsValidatedInTheConfig() throws {
        let base = "receivers: {otlp: {protocols: {http: {}}}}\nservice: {pipelines: {traces: {receivers: [otlp]}}}\n"
        XCTAssertEqual(try CollectorConfig.parse(yaml: base + "query: {project: team-1.prod}", environment: [:]).query.project, "team-1.prod")
        XCTAssertEqual(try CollectorConfig.parse(yaml: base + "query: {project: \(String(repeating: "p", count: 64))}", environment: [:]).query.project.count, 64)
        for bad in ["\"\"", String(repeating: "p", count: 65), "\"a b\"", "a/b"] {
            XCTAssertThrowsError(try CollectorConfig.parse(yaml: base + "query: {project: \(bad)}", environment: [:]), bad) { e in
                XCTAssertTrue("\(e)".contains("query.project"), "\(e)")
            }
        }
        XCTAssertThrowsError(try CollectorConfig.parse(yaml: base + "query: {projekt: x}", environment: [:]))
    }

    func testScoreBatchesAre202Or207WithAMessagePerRejectedScore() async throws {
        try await QueryAPITests.withCollector { client in
            var (status, body) = try await Self.send(client, .post, "/api/public/scores", "[\(Self.score(#""name":"a","value":1"#)),\(Self.score(#""name":"b","value":"good""#))]")
            XCTAssertEqual(status, .accepted)
            XCTAssertEqual(body, .object(["message": .string("Accepted")]))
            let bad: [(String, String)] = [
                (#"{"traceId":"\#(Self.trace)","value":1}"#, "name is required"),
                (Self.score(#""name":"n","value":"x","dataType":"NUMERIC""#), "finite number"),
                (Self.score(#""name":"n","value":2,"dataType":"BOOLEAN""#), "0, 1, true or false"),
                (Self.score(#""name":"n","value":1,"id":"""#), "id must not be empty"),
                (Self.score(#""name":"n","value":1,"id":"a\u0001b""#), "control characters"),
                (Self.score(#""name":"n","value":1,"id":"\#(String(repeating: "i", count: 257))""#), "at most 256 bytes"),
                (Self.score(#""name":"n","value":1,"id":7"#), "id must be a string"),
                (#"{"name":"n","value":1}"#, "needs a subject"),
                (Self.score(#""name":"n","value":1,"sessionId":"s""#), "exactly one subject"),
                (#"{"name":"n","value":1,"observationId":"0000000000000001","sessionId":"s"}"#, "observationId needs the traceId"),
                (Self.score(#""name":"n","value":1,"dataType":"CORRECTION""#), "dataType must be one of"),
                (Self.score(#""name":"n","value":"\#(String(repeating: "t", count: 501))","dataType":"TEXT""#), "1 to 500 characters"),
                (Self.score(#""name":"n","value":1,"environment":"Prod""#), "environment"),
                (Self.score(#""name":"n","value":1,"environment":"langfuse-x""#), "environment"),
                (Self.score(#""name":"n","value":1,"environment":"\#(String(repeating: "e", count: 41))""#), "environment"),
                (Self.score(#""name":"n","value":1,"metadata":"m""#), "metadata must be a JSON object"),
                (Self.score(#""name":"n","value":1,"source":"EVAL""#), "source must be API or ANNOTATION"),
                (Self.score(#""name":"n","value":1,"timestamp":"yesterday""#), "timestamp"),
                (Self.score(#""name":"n""#), "value is required"),
            ]
            for (score, message) in bad {
                (status, body) = try await Self.send(client, .post, "/api/public/scores", "[\(Self.score(#""name":"ok","value":1"#)),\(score)]")
                XCTAssertEqual(status.code, 207, score)
                XCTAssertEqual(body["accepted"], .int(1), score)
                XCTAssertEqual(body["rejected"], .int(1), score)
                let got = body["errors"]?[0]?["message"]?.stringValue ?? ""
                XCTAssertTrue(got.hasPrefix("scores[1]: ") && got.contains(message), "\(score): \(got)")
            }
            // At the limits: a 256-byte id, a 500-character text, a 40-character environment.
            (status, _) = try await Self.send(client, .post, "/api/public/scores", "[\(Self.score(#""name":"n","value":1,"environment":"\#(String(repeating: "e", count: 40))""#))]")
            XCTAssertEqual(status, .accepted)
            (status, _) = try await Self.send(client, .post, "/api/public/scores", "[\(Self.score(#""name":"n","value":"\#(String(repeating: "é", count: 500))","dataType":"TEXT","id":"\#(String(repeating: "i", count: 256))""#))]")
            XCTAssertEqual(status, .accepted)
            (_, body) = try await Self.send(client, .get, "/api/public/scores/\(String(repeating: "i", count: 256))")
            XCTAssertEqual(body["stringValue"]?.stringValue?.count, 500)
            // Not a list of scores, or not JSON.
            (status, body) = try await Self.send(client, .post, "/api/public/scores", "42")
            XCTAssertEqual(status, .badRequest)
            (status, _) = try await Self.send(client, .post, "/api/public/scores", "[{")
            XCTAssertEqual(status, .badRequest)
        }
    }

    func testScoreBodyLimitAtAndOverOneMebibyte() async throws {
        try await QueryAPITests.withCollector { client in
            let one = "[" + Self.score(#""name":"big","value":1"#)
            let exact = one + String(repeating: " ", count: (1 << 20) - one.utf8.count - 1) + "]"
            XCTAssertEqual(exact.utf8.count, 1 << 20)
            var (status, _) = try await Self.send(client, .post, "/api/public/scores", exact)
            XCTAssertEqual(status, .accepted)
            (status, _) = try await Self.send(client, .post, "/api/public/scores", exact + " ")
            XCTAssertEqual(status, .contentTooLarge)
            func padded(_ body: String, to size: Int) -> String { body + String(repeating: " ", count: size - body.utf8.count) }
            (status, _) = try await Self.send(client, .post, "/api/public/ingestion", padded("{\"batch\":[]}", to: 1 << 20))
            XCTAssertEqual(status.code, 207)
            (status, _) = try await Self.send(client, .post, "/api/public/ingestion", padded("{\"batch\":[]}", to: (1 << 20) + 1))
            XCTAssertEqual(status, .contentTooLarge)
            let delete = "{\"traceIds\":[\"\(Self.trace)\"]}"
            (status, _) = try await Self.send(client, .delete, "/api/public/traces", padded(delete, to: 1 << 20))
            XCTAssertEqual(status, .ok)
            (status, _) = try await Self.send(client, .delete, "/api/public/traces", padded(delete, to: (1 << 20) + 1))
            XCTAssertEqual(status, .contentTooLarge)
        }
    }

    func testSingleScoreOfOlderSDKsAndIngestionEvents() async throws {
        try await QueryAPITests.withCollector { client in
            var (status, body) = try await Self.send(client, .post, "/api/public/scores", Self.score(#""id":"s-1","name":"single","value":0.5"#))
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body, .object(["id": .string("s-1")]))
            (status, body) = try await Self.send(client, .post, "/api/public/scores", Self.score(#""name":"single","value":"x","dataType":"NUMERIC""#))
            XCTAssertEqual(status, .badRequest)
            XCTAssertTrue(body["message"]?.stringValue?.contains("finite number") == true)

            let batch = """
                {"batch":[
                  {"id":"e1","type":"score-create","timestamp":"2026-01-01T00:00:00Z","body":\(Self.score(#""id":"s-2","name":"judge","value":1,"dataType":"BOOLEAN""#))},
                  {"id":"e2","type":"trace-create","timestamp":"2026-01-01T00:00:00Z","body":{"id":"t"}},
                  {"id":"e3","type":"score-create","body":{"name":"judge","value":1}}
                ]}
                """
            (status, body) = try await Self.send(client, .post, "/api/public/ingestion", batch)
            XCTAssertEqual(status.code, 207)
            XCTAssertEqual(body["successes"], .array([.object(["id": .string("e1"), "status": .int(201)])]))
            let errors = body["errors"]?.arrayValue ?? []
            XCTAssertEqual(errors.compactMap { $0["id"]?.stringValue }, ["e2", "e3"])
            XCTAssertTrue(errors[0]["message"]?.stringValue?.contains("OTLP") == true, "\(errors[0])")
            XCTAssertTrue(errors[1]["message"]?.stringValue?.contains("subject") == true, "\(errors[1])")
            XCTAssertEqual(errors.compactMap { $0["status"] }, [.int(400), .int(400)])
            (status, body) = try await Self.send(client, .get, "/api/public/scores/s-2")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["stringValue"], .string("True"))
            XCTAssertEqual(body["value"]?.numberValue, 1)
            (status, _) = try await Self.send(client, .post, "/api/public/ingestion", "[]")
            XCTAssertEqual(status, .badRequest)
        }
    }

    func testScoreReadsFiltersCursorUpsertAndDelete() async throws {
        try await QueryAPITests.withCollector { client in
            let o = C.id(2).hex
            let scores = [
                Self.score(#""id":"n1","name":"answer quality","value":0.25,"timestamp":"2026-01-01T00:00:01Z","comment":"meh","metadata":{"judge":"gpt"}"#),
                Self.score(#""id":"n2","name":"answer quality","value":0.75,"timestamp":"2026-01-01T00:00:02Z","environment":"prod""#),
                Self.score(#""id":"b1","name":"thumbs","value":true,"observationId":"\#(o.uppercased())","timestamp":"2026-01-01T00:00:03Z""#),
                Self.score(#""id":"c1","name":"tone","value":"friendly","timestamp":"2026-01-01T00:00:04Z""#),
                #"{"id":"s1","sessionId":"chat one","name":"csat","value":4,"timestamp":"2026-01-01T00:00:05Z"}"#,
            ]
            var (status, body) = try await Self.send(client, .post, "/api/public/scores", "[\(scores.joined(separator: ","))]")
            XCTAssertEqual(status, .accepted)
            func v3(_ query: String) async throws -> (HTTPResponse.Status, JSONValue) { try await Self.send(client, .get, "/api/public/v3/scores" + query) }
            func ids(_ v: JSONValue) -> [String] { v["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] }

            (status, body) = try await v3("")
            XCTAssertEqual(ids(body), ["s1", "c1", "b1", "n2", "n1"], "newest first")
            XCTAssertNil(body["data"]?[0]?["comment"], "details only when asked")
            (_, body) = try await v3("?name=answer+quality&fields=details,subject")
            XCTAssertEqual(ids(body), ["n2", "n1"])
            XCTAssertEqual(body["data"]?[1]?["comment"], .string("meh"))
            XCTAssertEqual(body["data"]?[1]?["metadata"], .object(["judge": .string("gpt")]))
            XCTAssertEqual(body["data"]?[1]?["subject"], .object(["kind": .string("trace"), "id": .string(Self.trace)]))
            (_, body) = try await v3("?traceId=\(Self.trace)&observationId=\(o)&fields=subject")
            XCTAssertEqual(ids(body), ["b1"])
            XCTAssertEqual(body["data"]?[0]?["value"], .bool(true))
            XCTAssertEqual(body["data"]?[0]?["subject"], .object(["kind": .string("observation"), "id": .string(o), "traceId": .string(Self.trace)]))
            (_, body) = try await v3("?sessionId=chat%20one&fields=subject")
            XCTAssertEqual(body["data"]?[0]?["subject"], .object(["kind": .string("session"), "id": .string("chat one")]))
            (_, body) = try await v3("?dataType=numeric&valueMin=0.5&valueMax=4")
            XCTAssertEqual(ids(body), ["s1", "n2"])
            (_, body) = try await v3("?dataType=BOOLEAN&value=true")
            XCTAssertEqual(ids(body), ["b1"])
            (_, body) = try await v3("?dataType=CATEGORICAL&value=friendly")
            XCTAssertEqual(body["data"]?[0]?["value"], .string("friendly"))
            (_, body) = try await v3("?environment=prod")
            XCTAssertEqual(ids(body), ["n2"])
            (_, body) = try await v3("?fromTimestamp=2026-01-01T00:00:02Z&toTimestamp=2026-01-01T00:00:04Z")
            XCTAssertEqual(ids(body), ["b1", "n2"], "from inclusive, to exclusive")

            // The cursor walks every score once.
            var seen = [String]()
            var cursor: String?
            repeat {
                (status, body) = try await v3("?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                XCTAssertEqual(status, .ok)
                seen += ids(body)
                cursor = body["meta"]?["cursor"]?.stringValue
                XCTAssertEqual(body["meta"]?["limit"], .int(2))
            } while cursor != nil && seen.count < 10
            XCTAssertEqual(seen, ["s1", "c1", "b1", "n2", "n1"])

            for (query, parameter) in [("?limit=101", "limit"), ("?limit=0", "limit"), ("?fields=io", "fields"), ("?cursor=nope", "cursor"),
                                       ("?observationId=\(o)", "observationId"), ("?sessionId=a&traceId=\(Self.trace)", "sessionId"),
                                       ("?value=1", "dataType"), ("?dataType=BOOLEAN&value=yes", "value"), ("?dataType=BOOLEAN&valueMin=0", "valueMin"),
                                       ("?dataType=NUMERIC&value=abc", "value"), ("?fromTimestamp=x", "fromTimestamp"), ("?dataType=X", "dataType")] {
                (status, body) = try await v3(query)
                XCTAssertEqual(status, .badRequest, query)
                XCTAssertTrue(body["message"]?.stringValue?.contains(parameter) == true, "\(query): \(body)")
            }
            (status, _) = try await v3("?limit=100")
            XCTAssertEqual(status, .ok)

            // v2: pages, Langfuse's v2 shape.
            (status, body) = try await Self.send(client, .get, "/api/public/scores?limit=2&page=2")
            XCTAssertEqual(ids(body), ["b1", "n2"])
            XCTAssertEqual(body["meta"], .object(["page": .int(2), "limit": .int(2), "totalItems": .int(5), "totalPages": .int(3)]))
            XCTAssertEqual(body["data"]?[0]?["stringValue"], .string("True"))
            XCTAssertEqual(body["data"]?[0]?["observationId"], .string(o), "hex ids in lower case")
            (_, body) = try await Self.send(client, .get, "/api/public/scores?scoreIds=n1,c1")
            XCTAssertEqual(ids(body), ["c1", "n1"])

            // The same id again replaces the score.
            (status, _) = try await Self.send(client, .post, "/api/public/scores", "[\(Self.score(#""id":"n1","name":"answer quality","value":0.5"#))]")
            XCTAssertEqual(status, .accepted)
            (status, body) = try await Self.send(client, .get, "/api/public/scores/n1")
            XCTAssertEqual(body["value"], .double(0.5))
            XCTAssertEqual(body["comment"], .null)
            (_, body) = try await v3("")
            XCTAssertEqual(ids(body).count, 5)

            (status, _) = try await Self.send(client, .delete, "/api/public/scores/n1")
            XCTAssertEqual(status, .noContent)
            (status, _) = try await Self.send(client, .get, "/api/public/scores/n1")
            XCTAssertEqual(status, .notFound)
            (status, _) = try await Self.send(client, .delete, "/api/public/scores/n1")
            XCTAssertEqual(status, .notFound)
        }
    }

    func testTracesShowTheirScoresInListsMetadataAndSummary() async throws {
        try await QueryAPITests.withCollector { client in
            try await QueryAPITests.post(client)
            let batch = [
                Self.score(#""id":"h1","name":"helpfulness","value":0.5"#), Self.score(#""id":"h2","name":"helpfulness","value":1,"timestamp":"2030-01-01T00:00:00Z""#),
                Self.score(#""id":"ok","name":"ok","value":false,"observationId":"\#(C.id(3).hex)""#),
                #"{"id":"o1","traceId":"\#(QueryAPITests.other.hex)","name":"helpfulness","value":0}"#,
                #"{"id":"t1","traceId":"\#(QueryAPITests.other.hex)","name":"tone","value":"dry"}"#,
            ]
            var (status, body) = try await Self.send(client, .post, "/api/public/scores", "[\(batch.joined(separator: ","))]")
            XCTAssertEqual(status, .accepted)
            (_, body) = try await QueryAPITests.get(client, "/api/public/traces?userId=u1")
            XCTAssertEqual(Set(body["data"]?[0]?["scores"]?.arrayValue ?? []), [.string("h1"), .string("h2"), .string("ok")], "ids in the list")
            (_, body) = try await QueryAPITests.get(client, "/api/public/traces/\(Self.trace)")
            XCTAssertEqual(body["scores"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["helpfulness", "ok", "helpfulness"], "full objects, oldest first")
            XCTAssertEqual(body["scores"]?[0]?["projectId"], .string("tracefold"))

            (_, body) = try await QueryAPITests.get(client, "/api/traces/\(Self.trace)/metadata")
            let traceScores = body["metadata"]?["trace"]?["tracefold.score"]?[0]
            XCTAssertEqual(traceScores?["label"], .string("Scores"))
            XCTAssertEqual(traceScores?["values"], .object(["helpfulness": .int(1)]), "the latest score of a name wins")
            let observationScores = body["metadata"]?["observation"]?["tracefold.score"]?[0]
            XCTAssertEqual(observationScores?["spanId"], .string(C.id(3).hex))
            XCTAssertEqual(observationScores?["values"], .object(["ok": .bool(false)]))

            (_, body) = try await QueryAPITests.get(client, "/api/metrics/summary?groupBy=userId")
            let rows = body["data"]?.arrayValue ?? []
            let u1 = rows.first { $0["group"] == .string("u1") }, u2 = rows.first { $0["group"] == .string("u2") }
            XCTAssertEqual(u1?["scores"]?["helpfulness"], .object(["count": .int(2), "average": .double(0.75)]))
            XCTAssertEqual(u1?["scores"]?["ok"], .object(["count": .int(1), "average": .int(0)]))
            XCTAssertEqual(u2?["scores"], .object(["helpfulness": .object(["count": .int(1), "average": .int(0)])]), "text scores are not averaged")
            (_, body) = try await QueryAPITests.get(client, "/api/metrics/summary?groupBy=metadata.tenant")
            XCTAssertEqual(body["data"]?.arrayValue?.first { $0["group"] == .string("acme") }?["scores"]?["helpfulness"]?["average"], .double(0.75))
        }
    }

    func testTraceDeleteRemovesEverythingAndASpanStartsItAnew() async throws {
        try await QueryAPITests.withCollector { client in
            try await QueryAPITests.post(client)
            var (status, body) = try await Self.send(client, .post, "/api/public/scores", "[\(Self.score(#""id":"d1","name":"x","value":1"#))]")
            XCTAssertEqual(status, .accepted)
            (status, body) = try await Self.send(client, .delete, "/api/public/traces/\(Self.trace)")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["message"], .string("Trace deleted"))
            for path in ["/api/public/traces/\(Self.trace)", "/api/public/observations/\(C.id(1).hex)", "/api/public/scores/d1", "/api/traces/\(Self.trace)/metadata"] {
                (status, _) = try await QueryAPITests.get(client, path)
                XCTAssertEqual(status, .notFound, path)
            }
            (_, body) = try await QueryAPITests.get(client, "/api/public/traces")
            XCTAssertEqual(QueryAPITests.ids(body), [QueryAPITests.other.hex])
            (status, _) = try await Self.send(client, .delete, "/api/public/traces/\(Self.trace)")
            XCTAssertEqual(status, .notFound, "gone already")
            (status, _) = try await Self.send(client, .delete, "/api/public/traces/not-hex")
            XCTAssertEqual(status, .notFound)

            // The same spans again make the trace again, from scratch.
            try await QueryAPITests.post(client)
            (status, body) = try await QueryAPITests.get(client, "/api/public/traces/\(Self.trace)")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["observations"]?.arrayValue?.count, 3)
            XCTAssertEqual(body["scores"], .array([]))

            // Bulk: 1 to 1,000 ids; unknown and non-hex ids delete nothing.
            let many = (0..<999).map { "\"\(String(format: "%032x", $0 + 1))\"" }.joined(separator: ",")
            (status, body) = try await Self.send(client, .delete, "/api/public/traces", "{\"traceIds\":[\"\(Self.trace)\",\(many)]}")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["deleted"], .int(1))
            (status, body) = try await Self.send(client, .delete, "/api/public/traces", "{\"traceIds\":[\(many),\"a\",\"b\"]}")
            XCTAssertEqual(status, .badRequest)
            XCTAssertTrue(body["message"]?.stringValue?.contains("1 to 1000") == true, "\(body)")
            for bad in ["{}", "{\"traceIds\":[]}", "{\"traceIds\":[1]}", "nope"] {
                (status, _) = try await Self.send(client, .delete, "/api/public/traces", bad)
                XCTAssertEqual(status, .badRequest, bad)
            }
            (_, body) = try await QueryAPITests.get(client, "/api/public/traces")
            XCTAssertEqual(QueryAPITests.ids(body), [QueryAPITests.other.hex])
        }
    }

    func testSessionsListAndOneSessionWithItsTraces() async throws {
        try await QueryAPITests.withCollector { client in
            try await QueryAPITests.post(client)
            var (status, body) = try await Self.send(client, .get, "/api/public/sessions")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["s1"])
            XCTAssertEqual(body["data"]?[0]?["environment"], .string("prod"))
            XCTAssertEqual(body["data"]?[0]?["projectId"], .string("tracefold"))
            XCTAssertEqual(body["meta"]?["totalItems"], .int(1))
            let created = body["data"]?[0]?["createdAt"]?.stringValue ?? ""
            (_, body) = try await Self.send(client, .get, "/api/public/sessions?environment=dev")
            XCTAssertEqual(body["data"], .array([]))
            (_, body) = try await Self.send(client, .get, "/api/public/sessions?fromTimestamp=\(created)")
            XCTAssertEqual(body["meta"]?["totalItems"], .int(1), "from is inclusive")
            (_, body) = try await Self.send(client, .get, "/api/public/sessions?toTimestamp=\(created)")
            XCTAssertEqual(body["meta"]?["totalItems"], .int(0), "to is exclusive")
            (status, body) = try await Self.send(client, .get, "/api/public/sessions/s1")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body["traces"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [Self.trace])
            XCTAssertEqual(body["createdAt"]?.stringValue, created)
            (status, _) = try await Self.send(client, .get, "/api/public/sessions/nope")
            XCTAssertEqual(status, .notFound)
            (status, _) = try await Self.send(client, .get, "/api/public/sessions?limit=101")
            XCTAssertEqual(status, .badRequest)
            (status, body) = try await Self.send(client, .get, "/api/public/sessions?limit=100")
            XCTAssertEqual(body["meta"]?["limit"], .int(100))
        }
    }

    /// What an API call is answered for has no intake log behind it: on
    /// SQLite its transaction runs with synchronous FULL (the WAL fsynced at
    /// commit), and the fold's commits stay NORMAL.
    func testAPIWritesAreSyncedAtCommitAndFoldWritesAreNot() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/t.sqlite")
        defer { store.close() }
        func level(_ s: any SQLSession) throws -> Int64? { try s.rows("PRAGMA synchronous", []).first?["synchronous"].int }
        XCTAssertEqual(try store.durableWrite(level), 2)
        XCTAssertEqual(try store.write(level), 1)
        XCTAssertEqual(try store.durableWrite(level), 2)
    }

    func testATraceMadeByAMetadataWriteStartsWhenTheWriteArrived() async throws {
        try await QueryAPITests.withCollector { client in
            let before = WallClock.nowUnixNano()
            let (status, _) = try await MetadataWriteAPITests.post(client, #"{"metadata":[{"kind":"billing","values":{"plan":"pro"}}]}"#)
            XCTAssertEqual(status, .ok)
            let (_, body) = try await QueryAPITests.get(client, "/api/public/traces/\(Self.trace)")
            let t = body["timestamp"]?.stringValue.flatMap(ISOTime.parse) ?? 0
            XCTAssertGreaterThanOrEqual(t + 1_000_000, before, "not the epoch: \(body["timestamp"] ?? .null)")
            XCTAssertLessThanOrEqual(t, WallClock.nowUnixNano())
            // Its first span replaces it.
            try await QueryAPITests.post(client)
            let (_, after) = try await QueryAPITests.get(client, "/api/public/traces/\(Self.trace)")
            XCTAssertEqual(after["timestamp"], .string(ISOTime.format(unixNano: C.T * 1_000_000)))
        }
    }
}

extension JSONValue {
    /// An array element, nil past the end or for a non-array.
    subscript(_ index: Int) -> JSONValue? {
        guard case .array(let a) = self, a.indices.contains(index) else { return nil }
        return a[index]
    }
}
