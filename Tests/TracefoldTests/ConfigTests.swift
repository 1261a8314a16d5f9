import Foundation
import TracefoldConfig
import XCTest

final class ConfigTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    func testRepositoryConfigIsTheEmbeddedDefaultAndLoadsWithNoEdits() throws {
        let file = try String(contentsOfFile: Self.repoRoot + "/collector.yaml", encoding: .utf8)
        XCTAssertEqual(file, CollectorConfig.embeddedDefaultYAML, "run scripts/embed-default-config.sh")
        let config = try CollectorConfig.parse(yaml: file, environment: [:])
        XCTAssertEqual(config.receiver.endpoint, "127.0.0.1:4318")
        XCTAssertEqual(config.receiver.maxRequestBodySize, 64 << 20)
        // OTLP/gRPC is on by default, as in the Collector.
        XCTAssertEqual(config.grpc?.endpoint, "127.0.0.1:4317")
        XCTAssertEqual(config.grpc?.maxRecvMsgSize, 4 << 20)
        XCTAssertFalse(config.receiver.auth.isEnabled)
        XCTAssertEqual(config.store.directory, "./data")
        XCTAssertEqual(config.store.durability, .fsync)
        XCTAssertNil(config.activeSpansJSONL)
        XCTAssertEqual(config.activeJSONL?.directory, "./data/export")
        XCTAssertEqual(config.activeJSONL?.flushAfter, .seconds(5))
        XCTAssertEqual(config.activeJSONL?.maxMegabytes, 100)
        XCTAssertEqual(config.activeJSONL?.gzipLevel, 1)
        XCTAssertEqual(config.activeFold?.maxUpdateBytes, 65_536)
        XCTAssertEqual(config.activeFold?.maxTraceMetadataBytes, 1_048_576)
        XCTAssertEqual(config.store.resolvedSQLitePath, "./data/tracefold.sqlite")
        XCTAssertEqual(config.service.logLevel, "info")
    }

    func testEnvironmentVariablesOverrideTheDefaults() throws {
        let config = try CollectorConfig.parse(
            yaml: CollectorConfig.embeddedDefaultYAML,
            environment: ["TRACEFOLD_ENDPOINT": "127.0.0.1:9999", "TRACEFOLD_DATA_DIR": "/tmp/x", "TRACEFOLD_LOG_LEVEL": "debug", "TRACEFOLD_FLUSH_AFTER": "250ms"]
        )
        XCTAssertEqual(config.receiver.port, 9999)
        XCTAssertEqual(config.store.directory, "/tmp/x")
        XCTAssertEqual(config.activeJSONL?.directory, "/tmp/x/export")
        XCTAssertEqual(config.activeJSONL?.flushAfter, .milliseconds(250))
        XCTAssertEqual(config.store.resolvedSQLitePath, "/tmp/x/tracefold.sqlite")
        XCTAssertEqual(config.service.logLevel, "debug")
    }

    func testEnvironmentExpansionForms() throws {
        let e = EnvironmentExpansion(environment: ["A": "1", "EMPTY": ""])
        XCTAssertEqual(try e.expand("${env:A}"), "1")
        XCTAssertEqual(try e.expand("x-${env:A}-y"), "x-1-y")
        XCTAssertEqual(try e.expand("${env:MISSING:-fallback}"), "fallback")
        XCTAssertEqual(try e.expand("${env:A:-fallback}"), "1")
        XCTAssertEqual(try e.expand("${env:EMPTY:-fallback}"), "fallback")
        XCTAssertEqual(try e.expand("${env:MISSING}"), "")
        XCTAssertEqual(try e.expand("${A}"), "1")
        XCTAssertEqual(try e.expand("$$literal"), "$literal")
        XCTAssertEqual(try e.expand("price $5"), "price $5")
        XCTAssertThrowsError(try e.expand("${env:A"))
        XCTAssertThrowsError(try e.expand("${env:1BAD}"))
    }

    private func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try CollectorConfig.parse(yaml: yaml, source: "test.yaml", environment: [:])
            return nil
        } catch {
            return error
        }
    }

    func testUnknownKeysAreErrorsWithLineNumbers() throws {
        let yaml = """
            receivers:
              otlp:
                protocols:
                  http:
                    endpoint: 127.0.0.1:4318
                    max_body: 5
            service:
              pipelines:
                traces:
                  receivers: [otlp]
            """
        let e = try XCTUnwrap(error(yaml))
        XCTAssertEqual(e.line, 6)
        XCTAssertEqual(e.description, #"test.yaml:6:9: unknown key "max_body" in receivers.otlp.protocols.http (expected one of: endpoint, max_request_body_size, max_in_flight_bytes, auth, idle_timeout, read_timeout, rate_limit, tls)"#)

        let top = try XCTUnwrap(error("receiverz: {}\n"))
        XCTAssertEqual(top.line, 1)
        XCTAssertTrue(top.message.contains(#"unknown key "receiverz""#), top.message)
    }

    func testGRPCProtocolIsOptionalAndValidatedWithLineNumbers() throws {
        let pipeline = "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        let httpOnly = try CollectorConfig.parse(yaml: "receivers:\n  otlp:\n    protocols:\n      http: {}\n" + pipeline, environment: [:])
        XCTAssertNil(httpOnly.grpc, "a config without protocols.grpc serves HTTP only")
        let grpc = "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
        let config = try CollectorConfig.parse(yaml: grpc + "        endpoint: 0.0.0.0:14317\n        max_recv_msg_size: 1MiB\n" + pipeline, environment: [:])
        XCTAssertEqual(config.grpc?.port, 14317)
        XCTAssertEqual(config.grpc?.host, "0.0.0.0")
        XCTAssertEqual(config.grpc?.maxRecvMsgSize, 1 << 20)
        XCTAssertEqual(error(grpc + "        endpoint: nope\n" + pipeline)?.line, 5)
        XCTAssertEqual(error(grpc + "        max_recv_msg_size: 0\n" + pipeline)?.line, 5)
        XCTAssertEqual(error(grpc + "        keepalive: {}\n" + pipeline)?.line, 5, "unknown keys are errors")
    }

    func testTLSOnEitherReceiverIsParsedAndItsShapeValidatedWithLineNumbers() throws {
        let pipeline = "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        let yaml = """
            receivers:
              otlp:
                protocols:
                  grpc:
                    tls:
                      cert_file: /etc/tf/server.pem
                      key_file: /etc/tf/server.key
                      client_ca_file: /etc/tf/ca.pem
                      min_version: "1.3"
                  http:
                    tls: {cert_file: a.pem, key_file: a.key}

            """
        let config = try CollectorConfig.parse(yaml: yaml + pipeline, environment: [:])
        let grpc = try XCTUnwrap(config.grpc?.tls)
        XCTAssertEqual([grpc.certFile, grpc.keyFile, grpc.clientCAFile], ["/etc/tf/server.pem", "/etc/tf/server.key", "/etc/tf/ca.pem"])
        XCTAssertEqual(grpc.minVersion, .tls13)
        XCTAssertEqual(grpc.origin.lines["key_file"], 7, "a file's problems found later point at its line")
        XCTAssertEqual(grpc.origin.error("key_file", "x").description, "collector.yaml:7: receivers.otlp.protocols.grpc.tls.key_file: x")
        let http = try XCTUnwrap(config.receiver.tls)
        XCTAssertEqual([http.certFile, http.keyFile], ["a.pem", "a.key"])
        XCTAssertNil(http.clientCAFile)
        XCTAssertEqual(http.minVersion, .tls12, "configtls's default")
        XCTAssertNil(try CollectorConfig.parse(yaml: "receivers:\n  otlp:\n    protocols:\n      http:\n        tls:\n" + pipeline, environment: [:]).receiver.tls)

        let http5 = "receivers:\n  otlp:\n    protocols:\n      http:\n        tls:\n"
        let missingKey = error(http5 + "          cert_file: a.pem\n" + pipeline)
        XCTAssertEqual(missingKey?.line, 6)
        XCTAssertTrue(missingKey?.message.contains("needs key_file") ?? false, "\(String(describing: missingKey))")
        XCTAssertTrue(error(http5 + "          key_file: a.key\n" + pipeline)?.message.contains("needs cert_file") ?? false)
        let old = error(http5 + "          cert_file: a.pem\n          key_file: a.key\n          min_version: \"1.1\"\n" + pipeline)
        XCTAssertEqual(old?.line, 8)
        XCTAssertTrue(old?.message.contains("must be \"1.2\" or \"1.3\"") ?? false)
        XCTAssertEqual(error(http5 + "          cert_file: \"\"\n          key_file: a.key\n" + pipeline)?.line, 6, "an empty path names no file")
        XCTAssertEqual(error(http5 + "          ca_file: a.pem\n" + pipeline)?.line, 6, "unknown keys are errors (configtls's client-side ca_file is not a server setting)")
    }

    func testInvalidValuesAreReported() throws {
        let base = "receivers:\n  otlp:\n    protocols:\n      http:\n"
        let pipeline = "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        XCTAssertEqual(error(base + "        endpoint: nope\n" + pipeline)?.line, 5)
        XCTAssertEqual(error(base + "        max_request_body_size: lots\n" + pipeline)?.line, 5)
        XCTAssertEqual(error(base + "        max_request_body_size: 0\n" + pipeline)?.line, 5)
        XCTAssertEqual(error(base + "        auth:\n          api_keys:\n            - public_key: pk\n" + pipeline)?.line, 7)
        XCTAssertEqual(error("store:\n  durability: sometimes\n" + base + pipeline)?.line, 2)
        XCTAssertNotNil(error(base + "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [nope]\n"))
        XCTAssertNotNil(error(base + "exporters:\n  spans_jsonl: {}\n" + pipeline), "a declared exporter must be used")
        XCTAssertNotNil(error(base + "processors:\n  batch: {}\n" + pipeline))
        XCTAssertNotNil(error(base + "processors:\n  fold: {}\n" + pipeline), "a declared processor must be used")
        XCTAssertNotNil(error(base + "exporters:\n  jsonl: {}\n" + pipeline + "      exporters: [jsonl]\n"), "jsonl needs the fold")
        XCTAssertEqual(error(base + "exporters:\n  jsonl:\n    rotation:\n      compress: zstd\n" + pipeline)?.line, 8)
        XCTAssertNotNil(error("receivers: [\n"), "invalid YAML")
        XCTAssertNotNil(error(""), "empty file")
    }

    /// `rotation.gzip_level` takes libdeflate's levels, 1 to 12, and
    /// nothing past either end.
    func testJSONLGzipLevelIsOneToTwelve() throws {
        func yaml(_ level: String) -> String {
            "receivers:\n  otlp:\n    protocols:\n      http:\n"
                + "processors:\n  fold: {}\n"
                + "exporters:\n  jsonl:\n    rotation:\n      gzip_level: \(level)\n"
                + "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [fold]\n      exporters: [jsonl]\n"
        }
        for level in [1, 12] {
            XCTAssertEqual(try CollectorConfig.parse(yaml: yaml("\(level)"), environment: [:]).activeJSONL?.gzipLevel, level)
        }
        for level in ["0", "13", "fast"] {
            let e = error(yaml(level))
            XCTAssertEqual(e?.line, 10, level)
        }
        XCTAssertTrue(error(yaml("13"))?.description.contains("gzip_level must be from 1 to 12, got 13") ?? false, error(yaml("13"))?.description ?? "parsed")
    }

    /// `store.max_pending_wait` is a duration from 0 (no wait) to 10 s,
    /// 1 s when not given, and nothing past 10 s.
    func testMaxPendingWaitIsZeroToTenSeconds() throws {
        func yaml(_ wait: String?) -> String {
            (wait.map { "store:\n  max_pending_wait: \($0)\n" } ?? "")
                + "receivers:\n  otlp:\n    protocols:\n      http:\n"
                + "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        }
        XCTAssertEqual(try CollectorConfig.parse(yaml: yaml(nil), environment: [:]).store.maxPendingWait, .seconds(1))
        for (text, wait) in [("0s", Duration.zero), ("250ms", .milliseconds(250)), ("10s", .seconds(10))] {
            XCTAssertEqual(try CollectorConfig.parse(yaml: yaml(text), environment: [:]).store.maxPendingWait, wait, text)
        }
        for text in ["10001ms", "1m", "soon"] {
            XCTAssertEqual(error(yaml(text))?.line, 2, text)
        }
        XCTAssertTrue(
            error(yaml("11s"))?.description.contains("store.max_pending_wait must be at most 10s (an OTLP exporter's default timeout), got 11s") ?? false,
            error(yaml("11s"))?.description ?? "parsed"
        )
    }

    func testAuthAndSizes() throws {
        let yaml = """
            receivers:
              otlp:
                protocols:
                  http:
                    endpoint: 0.0.0.0:4318
                    max_request_body_size: 1MiB
                    auth:
                      api_keys:
                        - public_key: pk-lf-1
                          secret_key: ${env:SK}
                      bearer_tokens: [tok]
            store:
              durability: none
            service:
              pipelines:
                traces:
                  receivers: [otlp]
            """
        let c = try CollectorConfig.parse(yaml: yaml, environment: ["SK": "sk-lf-1"])
        XCTAssertEqual(c.receiver.maxRequestBodySize, 1 << 20)
        XCTAssertEqual(c.receiver.auth.apiKeys, [.init(publicKey: "pk-lf-1", secretKey: "sk-lf-1")])
        XCTAssertEqual(c.receiver.auth.bearerTokens, ["tok"])
        XCTAssertFalse(c.receiver.isLoopback)
        XCTAssertEqual(c.store.durability, .none)
        XCTAssertNil(c.activeSpansJSONL)
        XCTAssertEqual(DurationParser.parse("500ms"), .milliseconds(500))
        XCTAssertEqual(DurationParser.parse("5s"), .seconds(5))
        XCTAssertEqual(DurationParser.parse("30d"), .seconds(30 * 86400))
        XCTAssertNil(DurationParser.parse("soon"))
    }
}
