import Compression
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OTLP
import TracefoldConfig
import TracefoldExport
import TracefoldIntake
import TracefoldModel
import XCTest

final class IntakeLogTests: XCTestCase {
    let logger = Logger(label: "test")

    func append(_ log: IntakeLog, _ n: UInt64) async throws -> UInt64 {
        let batch = Fixtures.batch([Fixtures.span(n)])
        return try await log.append(
            body: Gzip.compress(OTLPProtobufEncoder.encode(batch)), encoding: .protobuf, coding: .gzip,
            receivedAtUnixNano: 1000 + n, batch: batch
        )
    }

    /// SPEC §5: a replay after a crash must stamp the batch with the same
    /// request metadata and governance layers the receiver gave it.
    func testRequestMetadataIsLoggedAndReplayed() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let context = RequestMetadata(
            metadata: ["team": "alpha", "emoji": "👩‍👩‍👧‍👦"], warnings: ["x-tracefold-metadata.n": "value is a number, not a string; dropped"],
            governance: Governance(apiKey: "pk-a", workspace: "alpha", apiKeyMetadata: ["tier": "gold"], workspaceMetadata: ["team": "alpha"], defaults: ["region": "eu"]),
            receivedAtUnixNano: 42
        )
        let batch = Fixtures.batch([Fixtures.span(1)])
        do {
            let log = try IntakeLog(directory: dir, segmentSize: 1 << 20, logger: logger)
            try log.start { _, _, _ in }
            _ = try await log.append(body: Array("{}".utf8), encoding: .json, coding: .identity, receivedAtUnixNano: 42, context: context, batch: batch)
            _ = try await log.append(body: Array("{}".utf8), encoding: .json, coding: .identity, receivedAtUnixNano: 43, batch: batch)
            log.close()
        }
        let log = try IntakeLog(directory: dir, segmentSize: 1 << 20, logger: logger)
        var replayed = [IntakeLog.Record]()
        try log.replay(after: 0) { replayed.append($0) }
        XCTAssertEqual(replayed.map(\.context), [context, nil])
        XCTAssertEqual(replayed.map(\.encoding), [.json, .json])
        XCTAssertEqual(replayed.map(\.body), [Array("{}".utf8), Array("{}".utf8)])

        var stamped = batch
        RequestMetadata.stamp(&stamped, with: replayed[0].context)
        XCTAssertEqual(stamped.resourceSpans[0].resource.attributes.last?.key, RequestMetadata.attributeKey)
        XCTAssertEqual(RequestMetadata(resource: stamped.resourceSpans[0].resource), context)
    }

    func testRecordsSurviveReopenAndATornTailIsCut() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let handedOff = LockedList()
        do {
            let log = try IntakeLog(directory: dir, segmentSize: 1 << 20, logger: logger)
            try log.start { _, lsn, _ in handedOff.append(lsn) }
            for n in 1...3 { _ = try await append(log, UInt64(n)) }
            log.close()
        }
        XCTAssertEqual(handedOff.values, [1, 2, 3], "durable batches reach the pipeline in LSN order")

        // A crash in the middle of a write leaves half a frame behind.
        let segment = dir + "/" + (try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".log") }!)
        let before = try Data(contentsOf: URL(fileURLWithPath: segment))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segment))
        handle.seekToEndOfFile()
        handle.write(Data(before.prefix(30)))
        handle.closeFile()

        let log = try IntakeLog(directory: dir, segmentSize: 1 << 20, logger: logger)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: segment)), before, "the torn frame is cut off")
        XCTAssertEqual(log.lastLSN, 3)
        var replayed = [IntakeLog.Record]()
        try log.replay(after: 1) { replayed.append($0) }
        XCTAssertEqual(replayed.map(\.lsn), [2, 3])
        XCTAssertEqual(replayed.map(\.receivedAtUnixNano), [1002, 1003])
        XCTAssertEqual(replayed.first?.coding, .gzip)
        let inflater = StreamingInflater(coding: .gzip, limit: 1 << 20)
        try inflater.feed(replayed[0].body)
        XCTAssertEqual(try OTLPProtobufDecoder.decode(try inflater.finish()).batch, Fixtures.batch([Fixtures.span(2)]))
        // New appends continue the sequence.
        try log.start { _, _, _ in }
        let next = try await append(log, 4)
        XCTAssertEqual(next, 4)
        log.close()
    }

    func testSegmentsRollOverAndAreDiscardedBelowTheCheckpoint() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try IntakeLog(directory: dir, segmentSize: 4096, logger: logger)
        try log.start { _, _, _ in }
        for n in 1...100 { _ = try await append(log, UInt64(n)) }
        let segments = { try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".log") }.sorted() }
        XCTAssertGreaterThan(try segments().count, 2)
        log.discard(through: 100)
        XCTAssertEqual(try segments().count, 1, "only the active segment stays")
        var replayed = 0
        try log.replay(after: 100) { _ in replayed += 1 }
        XCTAssertEqual(replayed, 0)
        log.close()
    }

    func testSpansJSONLRepairsATornLastLineAndRemembersKeys() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = SpansJSONLExporterConfig(directory: dir)
        let first = try SpansJSONLExporter(config: config, logger: logger)
        try first.consume(Fixtures.batch([Fixtures.span(1), Fixtures.span(2)]))
        try first.close()
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: first.filePath))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"traceId":"5b8e"#.utf8))
        handle.closeFile()

        let second = try SpansJSONLExporter(config: config, logger: logger)
        XCTAssertEqual(second.spanCount, 2)
        let repaired = try String(contentsOfFile: first.filePath, encoding: .utf8)
        XCTAssertTrue(repaired.hasSuffix("}\n"))
        XCTAssertEqual(repaired.split(separator: "\n").count, 2)
        try second.consume(Fixtures.batch([Fixtures.span(2), Fixtures.span(3)]))
        try second.close()
        let added = try String(contentsOfFile: second.filePath, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(added.count, 1, "span 2 is not written again")
        XCTAssertEqual(try JSONParser.parse(String(added[0]))["name"], .string("span-3"))
    }
}

/// When the intake log cannot be written, nothing is acknowledged: 503 with
/// Retry-After. The failure is injected; nothing else is mocked.
final class IntakeFailureTests: XCTestCase {
    struct FailingCommitter: IntakeCommitter {
        var isOverloaded: Bool { false }
        var isFailing: Bool { false }
        func commit(body: [UInt8], encoding: OTLPEncoding, coding: ContentCoding, receivedAtUnixNano: UInt64, context: RequestMetadata?, batch: SpanBatch) async throws -> [String] {
            throw IntakeLog.WriteError(description: "No space left on device")
        }
    }

    func testUnwritableLogAnswers503WithRetryAfter() async throws {
        let receiver = OTLPHTTPReceiver(config: OTLPReceiverConfig(), committer: FailingCommitter(), logger: Logger(label: "test"))
        let app = Application(responder: CallbackResponder { (request: Request, _: BasicRequestContext) in try await receiver.handle(request) })
        try await app.test(.router) { client in
            let body = ByteBuffer(bytes: OTLPProtobufEncoder.encode(Fixtures.batch([Fixtures.span(1)])))
            try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}]}"#)) { r in
                XCTAssertEqual(r.status, .serviceUnavailable)
                XCTAssertEqual(r.headers[.retryAfter], "5")
                XCTAssertEqual(String(buffer: r.body), #"{"code":14,"message":"the collector cannot store data right now; retry later"}"#)
            }
            try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"], body: body) { r in
                XCTAssertEqual(r.status, .serviceUnavailable)
                XCTAssertEqual(r.headers[.contentType], "application/x-protobuf")
            }
        }
    }
}

/// SPEC §1.9: with the exporters stalled (an injected fault), intake stops at
/// the pipeline's capacity and answers 503 with Retry-After, then recovers.
final class BackPressureTests: XCTestCase {
    final class StalledSink: SpanSink, @unchecked Sendable {
        let name = "stalled"
        let gate = DispatchSemaphore(value: 0)
        func consume(_ batch: SpanBatch) throws -> [String] {
            gate.wait()
            return []
        }
        func sync() throws {}
        func close() throws {}
    }

    func testFullPipelineAnswers503AndRecovers() async throws {
        let sink = StalledSink()
        let pipeline = SpanPipeline(sinks: [sink], checkpoint: nil, syncInterval: .seconds(1), capacity: 3, logger: Logger(label: "test"))
        pipeline.start()
        let receiver = OTLPHTTPReceiver(config: OTLPReceiverConfig(), committer: DirectCommitter(pipeline: pipeline), logger: Logger(label: "test"))
        let app = Application(responder: CallbackResponder { (request: Request, _: BasicRequestContext) in try await receiver.handle(request) })
        try await app.test(.router) { client in
            func post(_ n: UInt64) async throws -> TestResponse {
                let body = ByteBuffer(bytes: OTLPProtobufEncoder.encode(Fixtures.batch([Fixtures.span(n), Fixtures.span(n + 100)])))
                return try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"], body: body)
            }
            // A request's 200 waits for the sinks to take its batch, so the
            // first two requests hang on the stalled sink while they fill the
            // pipeline.
            async let first = post(1)
            async let second = post(2)
            while !pipeline.isFull { try await Task.sleep(for: .milliseconds(5)) }
            let refused = try await post(3)
            XCTAssertEqual(refused.status, .serviceUnavailable)
            XCTAssertEqual(refused.headers[.retryAfter], "1")
            var reader = WireReader(Array(buffer: refused.body))
            XCTAssertEqual(String(decoding: reader.fields()[2]![0] as! [UInt8], as: UTF8.self), "the collector is overloaded; retry later")
            for _ in 0..<10 { sink.gate.signal() }
            let (a, b) = try await (first, second)
            XCTAssertEqual(a.status, .ok)
            XCTAssertEqual(b.status, .ok)
            pipeline.drain()
            let again = try await post(3)
            XCTAssertEqual(again.status, .ok)
        }
        for _ in 0..<10 { sink.gate.signal() }
        pipeline.shutdown()
    }
}

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [UInt64] = []
    func append(_ v: UInt64) { lock.lock(); items.append(v); lock.unlock() }
    var values: [UInt64] { lock.lock(); defer { lock.unlock() }; return items }
}

/// The pipeline hands a `GroupingSpanSink` (the fold) what was queued
/// together, in groups of at most `maxGroupSpans` spans, and other sinks the
/// same batches one by one; each batch's completion gets its own drops.
final class PipelineGroupingTests: XCTestCase {
    final class Recorder: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        func append(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
        var values: [String] { lock.lock(); defer { lock.unlock() }; return list }
    }

    /// Names a batch by its receive time; the first call waits at the gate,
    /// so that the rest queue up behind it.
    final class GroupSink: GroupingSpanSink, @unchecked Sendable {
        let name = "grouping"
        let gate = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let calls = Recorder()
        private var first = true
        func consume(group batches: [SpanBatch]) throws -> [[String]] {
            if first {
                first = false
                entered.signal()
                gate.wait()
            }
            calls.append(batches.map { "\($0.receivedAtUnixNano):\($0.spanCount)" }.joined(separator: " "))
            return batches.map { ["group drop \($0.receivedAtUnixNano)"] }
        }
        func consume(_ batch: SpanBatch) throws -> [String] { try consume(group: [batch])[0] }
        func sync() throws {}
        func close() throws {}
    }

    final class PlainSink: SpanSink, @unchecked Sendable {
        let name = "plain"
        let calls = Recorder()
        func consume(_ batch: SpanBatch) throws -> [String] {
            calls.append("\(batch.receivedAtUnixNano)")
            return ["plain drop \(batch.receivedAtUnixNano)"]
        }
        func sync() throws {}
        func close() throws {}
    }

    func testQueuedBatchesGoToTheFoldInGroupsUpToTheLimit() {
        check(pressure: false, expected: ["1:1", "2:2 3:2", "4:1 5:3", "6:5", "7:1"])
    }

    /// While the memory limiter reports pressure, the fold gets one batch
    /// at a time.
    func testUnderMemoryPressureBatchesGoOneByOne() {
        check(pressure: true, expected: ["1:1", "2:2", "3:2", "4:1", "5:3", "6:5", "7:1"])
    }

    func check(pressure: Bool, expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        let grouping = GroupSink()
        let plain = PlainSink()
        let pipeline = SpanPipeline(
            sinks: [grouping, plain], checkpoint: nil, syncInterval: .seconds(1), capacity: 100, logger: Logger(label: "test"), maxGroupSpans: 4
        )
        pipeline.memoryPressure(pressure)
        pipeline.start()
        let completions = Recorder()
        // Batch n has receive time n and the given number of spans.
        func enqueue(_ n: UInt64, spans: Int) {
            let batch = SpanBatch(
                resourceSpans: [ResourceSpans(resource: Resource(), scopeSpans: [ScopeSpans(scope: InstrumentationScope(), spans: (0..<spans).map { Fixtures.span(n * 10 + UInt64($0)) })])],
                receivedAtUnixNano: n
            )
            pipeline.enqueue(batch, lsn: n) { dropped in completions.append("\(n): \(dropped.joined(separator: ", "))") }
        }
        enqueue(1, spans: 1)
        // The first batch is at the gate; the others queue behind it.
        grouping.entered.wait()
        enqueue(2, spans: 2)
        enqueue(3, spans: 2)  // 2 + 2: exactly the limit, one group
        enqueue(4, spans: 1)  // 4 + 1: one past it, a new group
        enqueue(5, spans: 3)
        enqueue(6, spans: 5)  // more than the limit alone: a group of its own
        enqueue(7, spans: 1)
        grouping.gate.signal()
        pipeline.drain()
        XCTAssertEqual(grouping.calls.values, expected, file: file, line: line)
        XCTAssertEqual(plain.calls.values, ["1", "2", "3", "4", "5", "6", "7"], file: file, line: line)
        XCTAssertEqual(completions.values, (1...7).map { "\($0): group drop \($0), plain drop \($0)" }, file: file, line: line)
        XCTAssertEqual(pipeline.queuedSpans, 0, file: file, line: line)
        pipeline.shutdown()
    }
}
