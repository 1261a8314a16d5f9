import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import OTLP
import TracefoldConfig
import TracefoldModel
import XCTest

/// SPEC §7.5 with the REST cases of reference/metadata-rules.md §(c).
final class MetadataWriteAPITests: XCTestCase, @unchecked Sendable {
    typealias C = Conformance
    static let trace = C.trace.hex

    static func post(_ client: any TestClientProtocol, _ body: String, path: String = "/api/public/traces/\(trace)/metadata") async throws -> (HTTPResponse.Status, String) {
        let r = try await client.execute(uri: path, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
        return (r.status, String(buffer: r.body))
    }

    static func entries(_ client: any TestClientProtocol) async throws -> JSONValue {
        let (_, v) = try await QueryAPITests.get(client, "/api/traces/\(trace)/metadata")
        return v["metadata"] ?? .null
    }

    static func usage(_ client: any TestClientProtocol) async throws -> JSONValue? {
        let (_, t) = try await QueryAPITests.get(client, "/api/public/traces/\(trace)")
        return t["metadataEntries"]?.arrayValue?.first { $0["kind"] == .string("tracefold.usage") }?["values"]
    }

    func testAcceptedWritesMergeByKindAndTarget() async throws {
        try await QueryAPITests.withCollector { client in
            var (status, body) = try await Self.post(client, #"{"metadata":[{"kind":"userland.default","values":{"status":"processing"}}]}"#)  // T1
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(body, "{}")
            (status, _) = try await Self.post(client, #"{"metadata":[{"kind":"billing","op":"MERGE","values":{"a":1,"b":{"x":1}}},{"kind":"billing","values":{"b":{"y":2}}}]}"#)  // T11, T13
            XCTAssertEqual(status, .ok)
            (status, _) = try await Self.post(client, #"{"metadata":[{"kind":"billing","values":{"c":1,"c":2}},{"kind":"","values":{"n":null}},{"kind":"other","values":{"a":2}}]}"#)  // T15, T10, T14, T24
            XCTAssertEqual(status, .ok)
            (status, _) = try await Self.post(client, #"{"metadata":[{"kind":"billing","values":null}]}"#)  // T46
            XCTAssertEqual(status, .ok)
            (status, _) = try await Self.post(client, #"{"target":{"observation_id":"\#(C.id(1).hex)"},"metadata":[{"kind":"step","values":{"s":1}}]}"#, path: "/v1/runs/\(Self.trace)/metadata")
            XCTAssertEqual(status, .ok)
            (status, _) = try await Self.post(client, #"{"target":{"step_id":"\#(C.id(1).hex)","span_id":"00f067aa0ba902b7"},"metadata":[{"kind":"net","values":{"e":1}}]}"#)  // T21
            XCTAssertEqual(status, .ok)

            let m = try await Self.entries(client)
            XCTAssertEqual(m["trace"]?["userland.default"]?.arrayValue?.first?["values"], json(#"{"n":null,"status":"processing"}"#))
            XCTAssertEqual(m["trace"]?["userland.billing"]?.arrayValue?.first?["values"], json(#"{"a":1,"b":{"y":2},"c":2}"#))
            XCTAssertEqual(m["trace"]?["userland.other"]?.arrayValue?.first?["values"], json(#"{"a":2}"#))
            XCTAssertEqual(m["observation"]?["userland.step"]?.arrayValue?.first?["spanId"], .string(C.id(1).hex))
            XCTAssertEqual(m["extended_trace"]?["userland.net"]?.arrayValue?.first?["spanId"], .string("00f067aa0ba902b7"))

            // The spans arrive after their metadata; both end up on the records.
            let spans = OTLPProtobufEncoder.encode(Fixtures.batch([C.S("root", id: 1, 0, 10, ["langfuse.trace.metadata.tenant": .string("\"acme\"")])]))
            let r = try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"], body: ByteBuffer(bytes: spans))
            XCTAssertEqual(r.status, .ok)
            let (_, trace) = try await QueryAPITests.get(client, "/api/public/traces/\(Self.trace)")
            XCTAssertEqual(trace["metadata"]?["status"], .string("processing"))
            XCTAssertEqual(trace["metadata"]?["tenant"], .string("acme"))
            XCTAssertEqual(trace["observations"]?.arrayValue?.first?["metadataEntries"]?.arrayValue?.first { $0["kind"] == .string("userland.step") }?["values"], json(#"{"s":1}"#))
        }
    }

    func testInvalidRequestsWriteNothing() async throws {
        try await QueryAPITests.withCollector { client in
            let cases: [(String, String, String)] = [
                (#"{"metadata":[{"kind":"a","values":{"x":1}},{"kind":"tracefold.internal","values":{"x":1}}]}"#, "Invalid metadata", "T7"),
                (#"{"metadata":[{"kind":"tracefold.score.accuracy","values":{"x":1}}]}"#, "Invalid metadata", "T8"),
                (#"{"metadata":[{"kind":"\#(String(repeating: "k", count: 129))","values":{"x":1}}]}"#, "Invalid metadata", "T9"),
                (#"{"metadata":[{"kind":"a","op":"delete","values":{"x":1}}]}"#, "Invalid metadata", "T12"),
                (#"{"metadata":[{"kind":"a","op":"replace","values":{"x":1}}]}"#, "Invalid metadata", "T12"),
                (#"{"metadata":[{"kind":"a","values":[1,2]}]}"#, "Invalid metadata", "T16"),
                (#"{"target":{"step_attempt":2},"metadata":[{"kind":"a","values":{"x":1}}]}"#, "Invalid metadata target", "T20"),
                (#"{"target":{"attempt":1},"metadata":[{"kind":"a","values":{"x":1}}]}"#, "Invalid metadata target", "M2.2"),
                (#"{"target":{"span_id":"xyz"},"metadata":[{"kind":"a","values":{"x":1}}]}"#, "Invalid metadata target", "bad span id"),
                (#"{"metadata":[]}"#, "Invalid metadata", "empty"),
                ("not json", "Invalid metadata", "not JSON"),
            ]
            for (body, error, label) in cases {
                let (status, text) = try await Self.post(client, body)
                XCTAssertEqual(status, .badRequest, label)
                let v = try JSONParser.parse(text)
                XCTAssertEqual(v["error"], .string(error), label)
                XCTAssertEqual(v["status"], .int(400), label)
            }
            let (status, text) = try await Self.post(client, #"{"metadata":[{"kind":"a","op":"delete","values":{"x":1}}]}"#)
            XCTAssertEqual(status, .badRequest)
            XCTAssertEqual(try JSONParser.parse(text)["detail"], .string("unsupported op"))
            let (bad, _) = try await Self.post(client, #"{"metadata":[{"kind":"a","values":{"x":1}}]}"#, path: "/api/public/traces/nothex/metadata")
            XCTAssertEqual(bad, .badRequest)
            // A 128-byte kind is fine (T9).
            let (ok, _) = try await Self.post(client, #"{"metadata":[{"kind":"userland.\#(String(repeating: "k", count: 119))","values":{"x":1}}]}"#)
            XCTAssertEqual(ok, .ok)
            let m = try await Self.entries(client)
            XCTAssertEqual(m["trace"]?.objectValue?.keys.sorted(), ["userland." + String(repeating: "k", count: 119)], "nothing from the refused requests")
        }
    }

    func testSizeLimitsAtAndOverTheByte() async throws {
        try await QueryAPITests.withCollector { client in
            // key "k" (1) + a JSON string of n bytes including its quotes.
            func update(_ valueBytes: Int, key: String = "k") -> String {
                #"{"kind":"big","values":{"\#(key)":"\#(String(repeating: "v", count: valueBytes - 2))"}}"#
            }
            var (status, body) = try await Self.post(client, #"{"metadata":[\#(update(65_535))]}"#)  // T2: exactly 65 536
            XCTAssertEqual(status, .ok)
            (status, body) = try await Self.post(client, #"{"metadata":[\#(update(65_536))]}"#)  // T3: 65 537
            XCTAssertEqual(status, .contentTooLarge)
            XCTAssertEqual(body, #"{"error":"Metadata span exceeds maximum size of 64KB","status":413}"#)
            // T25: a batch with one oversized update writes nothing.
            (status, _) = try await Self.post(client, #"{"metadata":[{"kind":"t25","values":{"a":1}},\#(update(70_000)),{"kind":"t25","values":{"b":1}}]}"#)
            XCTAssertEqual(status, .contentTooLarge)
            var m = try await Self.entries(client)
            XCTAssertNil(m["trace"]?["userland.t25"])
            // Fill to 1 048 576 − 65 536 with 14 more updates of 65 536 bytes (15 in all).
            for i in 0..<14 {
                (status, _) = try await Self.post(client, #"{"metadata":[\#(update(65_535, key: String(UnicodeScalar(UInt8(97 + i)))))]}"#)
                XCTAssertEqual(status, .ok)
            }
            // T26: two updates that together pass 1 MiB: nothing written.
            (status, body) = try await Self.post(client, #"{"metadata":[\#(update(65_535, key: "y")),{"kind":"t26","values":{"z":1}}]}"#)
            XCTAssertEqual(status, .contentTooLarge)
            XCTAssertEqual(body, #"{"error":"Cumulative metadata size exceeds limit","status":413}"#)
            m = try await Self.entries(client)
            XCTAssertNil(m["trace"]?["userland.t26"])
            // T4: the last update that lands exactly on 1 048 576 is accepted.
            (status, _) = try await Self.post(client, #"{"metadata":[\#(update(65_535, key: "y"))]}"#)
            XCTAssertEqual(status, .ok)
            let filled = try await Self.usage(client)
            XCTAssertEqual(filled?["acceptedUpdateBytes"], .int(1_048_576))
            // T5: one byte more is refused; the counter is unchanged.
            (status, _) = try await Self.post(client, #"{"metadata":[{"kind":"x","values":{"":1}}]}"#)
            XCTAssertEqual(status, .contentTooLarge)
            let unchanged = try await Self.usage(client)
            XCTAssertEqual(unchanged?["acceptedUpdateBytes"], .int(1_048_576))
        }
    }

    func testMemoIdReplayIsANoOpAndCountsOnce() async throws {  // SPEC §4.7, T6
        try await QueryAPITests.withCollector { client in
            let body = #"{"metadata":[{"id":"memo-1","kind":"default","values":{"a":"xxxx"}}]}"#
            for _ in 0..<3 {
                let (status, text) = try await Self.post(client, body)
                XCTAssertEqual(status, .ok)
                XCTAssertEqual(text, "{}")
            }
            var usage = try await Self.usage(client)
            XCTAssertEqual(usage?["acceptedUpdateBytes"], .int(7))
            let (status, _) = try await Self.post(client, #"{"metadata":[{"kind":"default","values":{"a":"xxxx"}}]}"#)
            XCTAssertEqual(status, .ok)
            usage = try await Self.usage(client)
            XCTAssertEqual(usage?["acceptedUpdateBytes"], .int(14), "two distinct updates count twice")
            XCTAssertEqual(usage?["metadataBytes"], .int(7), "the merged view counts once")
        }
    }

    func testWritesNeedCredentialsWhenAuthIsOn() async throws {
        let auth = AuthConfig(apiKeys: [.init(publicKey: "pk", secretKey: "sk")])
        try await QueryAPITests.withCollector(auth: auth) { client in
            let (status, _) = try await Self.post(client, #"{"metadata":[{"kind":"a","values":{"x":1}}]}"#)
            XCTAssertEqual(status, .unauthorized)
            let r = try await client.execute(uri: "/api/public/traces/\(Self.trace)/metadata", method: .post,
                                             headers: [.contentType: "application/json", .authorization: "Basic " + Base64.encode(Array("pk:sk".utf8))],
                                             body: ByteBuffer(string: #"{"metadata":[{"kind":"a","values":{"x":1}}]}"#))
            XCTAssertEqual(r.status, .ok)
        }
    }
}
