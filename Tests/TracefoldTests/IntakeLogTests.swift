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
import TracefoldTelemetry
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

/// `store.max_pending_wait`: a request that finds the queue full waits for
/// room, up to the wait, before its body is read; one at a time takes room
/// that opens; past the wait, past the line of waiters, or once shutdown
/// begins, it gets the same 503 as without a wait.
final class RoomWaitTests: XCTestCase {
    struct Setup {
        let sink = BackPressureTests.StalledSink()
        let pipeline: SpanPipeline
        let receiver: OTLPHTTPReceiver
        let metrics = CollectorMetrics()

        init(roomWait: Duration, maxRoomWaiters: Int = 64) {
            pipeline = SpanPipeline(
                sinks: [sink], checkpoint: nil, syncInterval: .seconds(1), capacity: 3, logger: Logger(label: "test"),
                // One 2-span batch a group: each gate signal delivers one.
                maxGroupSpans: 2, roomWait: roomWait, maxRoomWaiters: maxRoomWaiters
            )
            pipeline.start()
            receiver = OTLPHTTPReceiver(
                config: OTLPReceiverConfig(), committer: DirectCommitter(pipeline: pipeline), logger: Logger(label: "test"), metrics: metrics
            )
        }

        /// The `/metrics` lines of the queue-full counter.
        var queueFullLines: [String] {
            String(decoding: metrics.exposition(), as: UTF8.self).split(separator: "\n").map(String.init)
                .filter { $0.hasPrefix("tracefold_receiver_queue_full_requests_total{") || $0.hasPrefix("tracefold_receiver_refused_requests_total{") }
                .sorted()
        }

        func test(_ body: @escaping @Sendable (_ post: @escaping @Sendable (UInt64) async throws -> TestResponse) async throws -> Void) async throws {
            let receiver = receiver
            let app = Application(responder: CallbackResponder { (request: Request, _: BasicRequestContext) in try await receiver.handle(request) })
            try await app.test(.router) { client in
                try await body { n in
                    let body = ByteBuffer(bytes: OTLPProtobufEncoder.encode(Fixtures.batch([Fixtures.span(n), Fixtures.span(n + 100)])))
                    return try await client.execute(uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"], body: body)
                }
            }
            for _ in 0..<20 { sink.gate.signal() }
            pipeline.shutdown()
        }

        /// The first two requests fill the queue (capacity 3) behind the
        /// stalled sink.
        func fill(_ post: @escaping @Sendable (UInt64) async throws -> TestResponse) async throws -> (Task<TestResponse, any Error>, Task<TestResponse, any Error>) {
            let first = Task { try await post(1) }
            let second = Task { try await post(2) }
            while !pipeline.isFull { try await Task.sleep(for: .milliseconds(5)) }
            return (first, second)
        }

        func waitForWaiters(_ n: Int) async throws {
            while pipeline.roomWaiters < n { try await Task.sleep(for: .milliseconds(5)) }
        }
    }

    static func assertQueueFull(_ response: TestResponse, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, .serviceUnavailable, file: file, line: line)
        XCTAssertEqual(response.headers[.retryAfter], "1", file: file, line: line)
        var reader = WireReader(Array(buffer: response.body))
        XCTAssertEqual(String(decoding: reader.fields()[2]![0] as! [UInt8], as: UTF8.self), "the collector is overloaded; retry later", file: file, line: line)
    }

    func testARequestThatFindsTheQueueFullWaitsAndGets200WhenTheFoldMakesRoom() async throws {
        // A wait no test machine runs out: the request must get its 200
        // because room opened, not because time passed.
        let setup = Setup(roomWait: .seconds(60))
        try await setup.test { post in
            let (first, second) = try await setup.fill(post)
            let third = Task { try await post(3) }
            try await setup.waitForWaiters(1)
            XCTAssertEqual(setup.pipeline.queuedSpans, 4, "the waiting request's batch is not taken while it waits")
            for _ in 0..<10 { setup.sink.gate.signal() }
            let (a, b, c) = try await (first.value, second.value, third.value)
            XCTAssertEqual([a.status, b.status, c.status], [.ok, .ok, .ok])
            XCTAssertEqual(setup.pipeline.roomWaiters, 0)
            setup.pipeline.drain()
            XCTAssertEqual(setup.pipeline.queuedSpans, 0)
            XCTAssertEqual(setup.queueFullLines, [#"tracefold_receiver_queue_full_requests_total{outcome="admitted"} 1"#])
        }
    }

    func testRoomForOneBatchLetsInOneWaitingRequestNotTheWholeLine() async throws {
        let setup = Setup(roomWait: .seconds(60))
        try await setup.test { post in
            _ = try await setup.fill(post)
            let third = Task { try await post(3) }
            try await setup.waitForWaiters(1)
            let fourth = Task { try await post(4) }
            try await setup.waitForWaiters(2)
            // The first batch goes: 2 spans queued, room for one more batch.
            setup.sink.gate.signal()
            let thirdStatus = try await third.value.status
            XCTAssertEqual(thirdStatus, .ok)
            XCTAssertEqual(setup.pipeline.roomWaiters, 1, "the fourth request waits for the next batch to go")
            XCTAssertEqual(setup.pipeline.queuedSpans, 4)
            setup.sink.gate.signal()
            let fourthStatus = try await fourth.value.status
            XCTAssertEqual(fourthStatus, .ok)
            XCTAssertEqual(setup.pipeline.roomWaiters, 0)
        }
    }

    func testTheWaitRunsOutWith503AndNotBefore() async throws {
        let wait = Duration.milliseconds(300)
        let setup = Setup(roomWait: wait)
        try await setup.test { post in
            _ = try await setup.fill(post)
            let start = ContinuousClock.now
            let refused = try await post(3)
            XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, wait)
            Self.assertQueueFull(refused)
            XCTAssertEqual(setup.pipeline.roomWaiters, 0)
            XCTAssertEqual(setup.queueFullLines, [
                #"tracefold_receiver_queue_full_requests_total{outcome="refused"} 1"#,
                #"tracefold_receiver_refused_requests_total{reason="queue_full"} 1"#,
            ])
        }
    }

    func testOneRequestPastTheLineOfWaitersIsTurnedAwayAtOnce() async throws {
        let setup = Setup(roomWait: .seconds(60), maxRoomWaiters: 1)
        try await setup.test { post in
            let (first, second) = try await setup.fill(post)
            // At the limit: one request waits.
            let third = Task { try await post(3) }
            try await setup.waitForWaiters(1)
            // Past it: the next is answered while the first still waits.
            Self.assertQueueFull(try await post(4))
            XCTAssertEqual(setup.pipeline.roomWaiters, 1)
            for _ in 0..<10 { setup.sink.gate.signal() }
            let (a, b, c) = try await (first.value, second.value, third.value)
            XCTAssertEqual([a.status, b.status, c.status], [.ok, .ok, .ok])
        }
    }

    func testShutdownEndsTheWaits() async throws {
        let setup = Setup(roomWait: .seconds(60))
        try await setup.test { post in
            _ = try await setup.fill(post)
            let third = Task { try await post(3) }
            try await setup.waitForWaiters(1)
            setup.pipeline.endRoomWaits()
            Self.assertQueueFull(try await third.value)
            // And no request waits from then on.
            Self.assertQueueFull(try await post(4))
        }
    }

    func testWithoutAWaitAFullQueueIs503AtOnce() async throws {
        let setup = Setup(roomWait: .zero)
        try await setup.test { post in
            _ = try await setup.fill(post)
            Self.assertQueueFull(try await post(3))
            XCTAssertEqual(setup.pipeline.roomWaiters, 0)
        }
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
