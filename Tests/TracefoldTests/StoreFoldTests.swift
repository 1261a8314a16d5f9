import Foundation
import OTLP
import Logging
import TracefoldConfig
import TracefoldExport
import TracefoldFold
import TracefoldMapping
import TracefoldModel
import TracefoldStore
import XCTest

/// The fold through the real stores, SQLite and PostgreSQL: records after
/// random batching, duplicates and eviction equal the pure fold's, and the
/// JSONL export's highest revisions equal the stored records.
final class StoreFoldTests: XCTestCase {
    let logger = Logger(label: "test")

    static func storedRecords(_ store: any RecordStore, traces: [TraceID]) throws -> String {
        var lines = [String]()
        for t in traces.sorted() {
            lines.append(JSONWriter.serialize(try JSONParser.parse(try XCTUnwrap(store.traceRecord(t)))))
            for o in try store.observationRecords(of: t).map({ try JSONParser.parse($0) }).sorted(by: { $0["id"]!.stringValue! < $1["id"]!.stringValue! }) {
                lines.append(JSONWriter.serialize(o))
            }
        }
        return lines.joined(separator: "\n")
    }

    func testBatchesDuplicatesAndEvictionGiveThePureFoldsRecords() throws {
        // One open trace at most: every other trace is rebuilt from the store.
        for backend in StoreBackend.available { try checkBatchesDuplicatesAndEviction(backend, maxOpenTraces: 1, hotTraces: 1) }
    }

    /// Every trace but the last one touched waits in the cache's encoded
    /// tier, keeping only its stand-in observations; updates that target
    /// the others load their spans from the store.
    func testTracesKeptEncodedGiveThePureFoldsRecords() throws {
        for backend in StoreBackend.available { try checkBatchesDuplicatesAndEviction(backend, maxOpenTraces: 100, hotTraces: 1) }
    }

    /// Settled traces leaving the hot tier are released, not encoded, as
    /// the collector does (`TraceFolder.releasedSettledTraceSpans`); the
    /// spans and updates that come for them later rebuild them from the
    /// store, and the records are still the pure fold's.
    func testSettledTracesReleasedFromTheCacheGiveThePureFoldsRecords() throws {
        for backend in StoreBackend.available {
            let released = try checkBatchesDuplicatesAndEviction(
                backend, maxOpenTraces: 100, hotTraces: 1, settledTraceSpans: TraceFolder.releasedSettledTraceSpans)
            XCTAssertGreaterThan(released, 0, "\(backend): some trace was settled and released")
        }
    }

    /// The pipeline hands the fold what was queued together as one group
    /// (`consume(group:)`, one transaction): random groups of the random
    /// batches, with repeats inside a group and across groups, still give
    /// the pure fold's records. With one open trace at most, so that the
    /// traces of a group are rebuilt from the store (the encoded tier has
    /// its own test above; both on PostgreSQL took a minute of the suite).
    func testGroupsOfBatchesGiveThePureFoldsRecords() throws {
        for backend in StoreBackend.available {
            try checkBatchesDuplicatesAndEviction(backend, maxOpenTraces: 1, hotTraces: 1, grouped: true)
        }
    }

    /// Each batch of a group gets back its own drops: the update that
    /// passes the trace's cumulative limit is the second batch's, as when
    /// the batches come one by one.
    func testAGroupReportsEachBatchsOwnDrops() throws {
        let limits = MetadataLimits(maxUpdateBytes: 65_536, maxTraceBytes: 80)
        func batch(_ n: UInt64) -> SpanBatch {
            let span = Conformance.S("s\(n)", id: n, 0, 1, ["langfuse.trace.metadata.k\(n)": .string(String(repeating: "x", count: 50))])
            return SpanBatch(resourceSpans: [ResourceSpans(resource: Conformance.r0, scopeSpans: [ScopeSpans(scope: Conformance.sdk, spans: [span])])])
        }
        for backend in StoreBackend.available {
            var results = [[[String]]]()
            for grouped in [true, false] {
                let dir = Fixtures.temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let store = try backend.makeStore(in: dir)
                defer { store.close() }
                let folder = TraceFolder(store: store, limits: limits, maxOpenTraces: 10, logger: logger)
                let batches = [batch(1), batch(2), batch(3)]
                results.append(grouped ? try folder.consume(group: batches) : try batches.map { try folder.consume($0) })
                XCTAssertEqual(try store.counts().spans, 3, "\(backend)")
            }
            XCTAssertEqual(results[0].map(\.count), [0, 1, 1], "\(backend)")
            XCTAssertEqual(results[0], results[1], "\(backend)")
        }
    }

    /// Returns how many traces the folders released as settled.
    @discardableResult
    func checkBatchesDuplicatesAndEviction(
        _ backend: StoreBackend, maxOpenTraces: Int, hotTraces: Int, settledTraceSpans: Int = 0, grouped: Bool = false
    ) throws -> Int {
        var released = 0
        var rng = OrderIndependenceTests.Rng(state: 7)
        let generator = OrderIndependenceTests.self
        for caseIndex in 0..<40 {
            var all = [(Span, Resource, InstrumentationScope)]()
            for t in 0..<(1 + rng.int(4)) { all += generator.spans(traceIndex: caseIndex * 10 + t, rng: &rng) }
            let traces = Array(Set(all.map(\.0.traceID)))
            let expected = generator.canonical(all)

            let dir = Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try backend.makeStore(in: dir)
            defer { store.close() }
            let folder = TraceFolder(
                store: store, limits: MetadataLimits(), maxOpenTraces: maxOpenTraces, hotTraces: hotTraces, settledTraceSpans: settledTraceSpans,
                logger: logger)
            var delivery = all + (0..<rng.int(all.count + 1)).map { _ in rng.pick(all) }
            for i in stride(from: delivery.count - 1, to: 0, by: -1) { delivery.swapAt(i, rng.int(i + 1)) }
            var rest = delivery[...]
            var group = [SpanBatch]()
            while !rest.isEmpty {
                let n = 1 + rng.int(rest.count)
                var batch = SpanBatch(resourceSpans: [])
                for (span, resource, scope) in rest.prefix(n) {
                    batch.resourceSpans.append(ResourceSpans(resource: resource, scopeSpans: [ScopeSpans(scope: scope, spans: [span])]))
                }
                rest = rest.dropFirst(n)
                if grouped {
                    group.append(batch)
                    if rest.isEmpty || rng.int(3) == 0 {
                        _ = try folder.consume(group: group)
                        group = []
                    }
                } else {
                    _ = try folder.consume(batch)
                }
            }
            XCTAssertEqual(try Self.storedRecords(store, traces: traces), expected, "\(backend) case \(caseIndex)")
            if maxOpenTraces > hotTraces && settledTraceSpans == 0 {
                XCTAssertEqual(folder.cachedTraces.all, traces.count)
                XCTAssertEqual(folder.cachedTraces.encoded, traces.count - 1)
            }
            released += folder.cachedTraces.released
            XCTAssertEqual(try store.counts().spans, Set(all.map(\.0.key)).count)
        }
        return released
    }

    /// A span that came as protobuf is stored as the bytes it came as (under
    /// its resource and scope), not encoded again from its decoded value:
    /// a field the collector does not know survives into the store, the
    /// stored message decodes to the span that was folded, and the records
    /// are those of the same spans folded without their bytes.
    func testASpanThatCameAsProtobufIsStoredAsItsOwnBytes() throws {
        let trace = TraceID(high: 0x51, low: 0x52)
        var w = ProtobufWriter()
        w.message(1) { rs in
            rs.message(1) { r in r.message(1) { kv in kv.string(1, "service.name"); kv.message(2) { $0.string(1, "svc") } } }
            rs.message(2) { ss in
                ss.message(1) { $0.string(1, "scope") }
                for n in 1...3 {
                    ss.message(2) { s in
                        // Fields out of order, one the collector does not
                        // know, a status sent twice (merged): bytes the
                        // collector's encoder would never write.
                        s.string(5, "span-\(n)")
                        s.varint(99, 7)
                        s.bytes(1, trace.bytes)
                        s.bytes(2, SpanID(UInt64(n)).bytes)
                        if n > 1 { s.bytes(4, SpanID(1).bytes) }
                        s.fixed64(7, 1_700_000_000_000_000_000 + UInt64(n))
                        s.fixed64(8, 1_700_000_001_000_000_000)
                        s.message(9) { kv in kv.string(1, "langfuse.observation.metadata.n"); kv.message(2) { $0.int64(3, Int64(n)) } }
                        s.message(15) { $0.string(2, "first") }
                        s.message(15) { $0.varint(3, 2) }
                    }
                }
            }
        }
        let decoded = try OTLPProtobufDecoder.decode(w.bytes)
        let wire = decoded.batch.wire
        XCTAssertEqual(wire.ranges.count, 3)
        try StoreBackend.eachStore { backend, store, dir in
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
            _ = try folder.consume(decoded.batch)
            let bodies = try store.read { s in
                try s.rows("SELECT span_id, body FROM spans WHERE trace_id = ? ORDER BY seq", [.blob(Data(trace.bytes))]).map {
                    try s.rowCompression.expand(try XCTUnwrap($0["body"].data), in: s)
                }
            }
            XCTAssertEqual(bodies.count, 3, "\(backend)")
            var position = 0
            decoded.batch.forEachSpan { span, _, _ in
                let raw = Array(wire.span(position)!)
                let body = bodies[position]
                // The span's own bytes are in its stored message, unknown field and all.
                XCTAssertNotNil(body.indices.first { body[$0...].starts(with: raw) }, "\(backend): span \(position)'s bytes are not in its stored message")
                let stored = try? OTLPProtobufDecoder.decode(body).batch
                XCTAssertEqual(stored?.resourceSpans.first?.scopeSpans.first?.spans, [span], "\(backend)")
                XCTAssertEqual(stored?.resourceSpans.first?.scopeSpans.first?.scope.name, "scope", "\(backend)")
                position += 1
            }
            // The same spans without their bytes fold to the same records.
            try FileManager.default.createDirectory(atPath: dir + "/plain", withIntermediateDirectories: true)
            let plain = try backend.makeStore(in: dir + "/plain")
            defer { plain.close() }
            var withoutWire = decoded.batch
            withoutWire.wire = SpanWire()
            _ = try TraceFolder(store: plain, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger).consume(withoutWire)
            XCTAssertEqual(try Self.storedRecords(store, traces: [trace]), try Self.storedRecords(plain, traces: [trace]), "\(backend)")
            // And a trace rebuilt from the stored messages renders the same.
            let rebuilt = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
            XCTAssertEqual(try rebuilt.allEntries(of: trace), try folder.allEntries(of: trace), "\(backend)")
        }
    }

    func testExportWritesRevisionsRotatesAndMatchesTheStore() throws {
        for backend in StoreBackend.available { try checkExport(backend) }
    }

    func checkExport(_ backend: StoreBackend) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try backend.makeStore(in: dir)
        defer { store.close() }
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
        var config = JSONLExporterConfig(directory: dir + "/export")
        config.maxMegabytes = 1
        config.flushAfter = .seconds(3600)
        let exporter = try JSONLRecordExporter(config: config, store: store, logger: logger)

        // 3 traces, each changed three times; a large attribute makes the
        // files pass 1 MB so that they rotate.
        let big = String(repeating: "p", count: 20_000)
        for round in 0..<3 {
            for t in 0..<3 {
                let trace = TraceID(high: 1, low: UInt64(t + 1))
                var spans = [Span]()
                for k in 0..<20 {
                    spans.append(Conformance.S("s", id: UInt64(t * 1000 + round * 100 + k), parent: round + k == 0 ? nil : UInt64(t * 1000), UInt64(round * 10 + k), UInt64(round * 10 + k + 1),
                                               ["langfuse.observation.input": .string(big), "langfuse.trace.metadata.round": .int(Int64(round))], trace: trace))
                }
                _ = try folder.consume(Fixtures.batch(spans))
            }
            // Idle-based export holds everything back (flush_after is an hour)…
            try exporter.flushAllIdle()
            // …until everything is flushed.
            try exporter.flushAll()
        }
        // An observation changed after its trace went out goes out again
        // with its trace, and no other observation does.
        let changed = Conformance.id(5)
        let update = MetadataUpdate(id: "memo/late", scope: .observation, target: changed, kind: "userland.default",
                                    values: ["late": .bool(true)], order: OrderKey(time: Conformance.T * 1_000_000 + 1, spanID: 0, position: 0))
        XCTAssertNil(try folder.applyAPI([update], to: TraceID(high: 1, low: 1)))
        try exporter.flushAll()
        exporter.shutdown()

        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/export").sorted()
        XCTAssertTrue(files.contains { $0.hasSuffix(".jsonl.gz") }, "\(files)")
        var latest = [String: (Int64, JSONValue)]()
        var lineCount = 0
        for f in files {
            var data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/export/" + f)))
            if f.hasSuffix(".gz") {
                let inflater = StreamingInflaterProbe.gunzip(data)
                data = inflater
            }
            for line in data.split(separator: UInt8(ascii: "\n")) {
                let v = try JSONParser.parse(line)
                lineCount += 1
                guard case .int(let rev)? = v["revision"], let type = v["recordType"]?.stringValue, let id = v["id"]?.stringValue else {
                    return XCTFail("bad line")
                }
                var body = v.objectValue!
                body["revision"] = nil
                body["recordType"] = nil
                if (latest[type + id]?.0 ?? 0) < rev { latest[type + id] = (rev, .object(body)) }
            }
        }
        XCTAssertEqual(lineCount, 3 * (3 + 60) + 2, "each round writes each trace and its new observations once")
        XCTAssertEqual(latest["observation" + changed.hex]?.0, 2)
        XCTAssertEqual(latest["observation" + changed.hex]?.1["metadata"]?["late"], .bool(true))
        XCTAssertEqual(latest["trace" + TraceID(high: 1, low: 1).hex]?.0, 4)
        for t in 0..<3 {
            let trace = TraceID(high: 1, low: UInt64(t + 1))
            XCTAssertEqual(latest["trace" + trace.hex]?.0, t == 0 ? 4 : 3)
            XCTAssertEqual(latest["trace" + trace.hex]?.1, try JSONParser.parse(try XCTUnwrap(store.traceRecord(trace))))
            XCTAssertEqual(latest["trace" + trace.hex]?.1["metadata"]?["round"], .int(2))
        }
        XCTAssertEqual(latest.count, 3 + 180)
    }

    /// Two processes share a PostgreSQL store. One deletes a trace that the
    /// other holds in its cache, and makes it again with as many spans as
    /// the deleted one had: the other's next span of the trace folds into
    /// the trace as stored (its row's new generation tells them apart), not
    /// into its cached state of the deleted one.
    func testATraceDeletedAndMadeAgainByAnotherProcessIsNotTakenForTheOldOne() throws {
        guard StoreBackend.available.contains(.postgres) else { return }
        let url = try StoreBackend.freshPostgresDatabase()
        let one = try PostgresStore(url: url, logger: logger), two = try PostgresStore(url: url, logger: logger)
        defer { [one, two].forEach { $0.close() } }
        let first = TraceFolder(store: one, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
        let second = TraceFolder(store: two, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
        let trace = TraceID(high: 11, low: 1)
        func span(_ n: UInt64, _ key: String) -> [SpanBatch] {
            [Fixtures.batch([Conformance.S("s\(n)", id: n, n, n + 5, ["langfuse.trace.metadata.\(key)": .int(Int64(n))], trace: trace)])]
        }
        _ = try first.consume(group: span(1, "deleted"))
        XCTAssertEqual(try second.delete([trace]), [trace])
        _ = try second.consume(group: span(2, "again"))
        _ = try first.consume(group: span(3, "late"))
        let record = try JSONParser.parse(XCTUnwrap(one.traceRecord(trace)))
        XCTAssertEqual(record["metadata"]?["again"], .int(2))
        XCTAssertEqual(record["metadata"]?["late"], .int(3))
        XCTAssertNil(record["metadata"]?["deleted"], "the deleted trace's span is not folded in again")
        let observations = try one.observationRecords(of: trace).map { try JSONParser.parse($0)["id"]?.stringValue }
        XCTAssertEqual(Set(observations), [Conformance.id(2).hex, Conformance.id(3).hex])
        // The process that made the trace again reads the same.
        _ = try second.consume(group: span(4, "fourth"))
        let again = try JSONParser.parse(XCTUnwrap(two.traceRecord(trace)))
        XCTAssertEqual(again["metadata"]?["late"], .int(3), "the other process's span is caught up on")
        XCTAssertNil(again["metadata"]?["deleted"])
    }

    /// One export pass of `store`: the trace and observation lines it writes.
    static func exportPassLines(_ store: any RecordStore, limit: Int = 100) throws -> String {
        var text = ""
        try store.exportPass(exporter: "x", idleSince: nil, limit: limit) { pending in
            var w = JSONWriter()
            for t in pending.traces {
                try JSONLRecordExporter.line(t.trace, into: &w)
                for (_, o) in t.observations { try JSONLRecordExporter.line(o, into: &w) }
            }
            text = String(decoding: w.bytes, as: UTF8.self)
            return ("f", 0)
        }
        return text
    }

    /// On PostgreSQL the export cache of one process must not serve what
    /// another process changed: every pass writes the lines a store without
    /// the cache writes for the same history. `one` and `two` share a
    /// database, `plain` (no cache) gets the same spans and deletes in a
    /// database of its own. The cache serves a trace only `one` wrote since
    /// its export, and not one that `two` wrote meanwhile, or deleted and
    /// made again up to the same revision.
    func testOnPostgreSQLTheExportCacheServesOnlyWhatItsOwnProcessWrote() throws {
        guard StoreBackend.available.contains(.postgres) else { return }
        let shared = try StoreBackend.freshPostgresDatabase()
        let one = try PostgresStore(url: shared, logger: logger), two = try PostgresStore(url: shared, logger: logger)
        let plain = try PostgresStore(url: StoreBackend.freshPostgresDatabase(), exportCacheBudget: nil, logger: logger)
        defer { [one, two, plain].forEach { $0.close() } }
        func folder(_ store: PostgresStore) -> TraceFolder { TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger) }
        let (first, second, mirror) = (folder(one), folder(two), folder(plain))
        let a = TraceID(high: 12, low: 1), b = TraceID(high: 12, low: 2)
        func span(_ n: UInt64, _ trace: TraceID, parent: UInt64? = nil) -> SpanBatch {
            Fixtures.batch([Conformance.S("s\(n)", id: n, parent: parent, n, n + 5, ["langfuse.trace.metadata.n\(n)": .int(Int64(n))], trace: trace)])
        }
        /// Folds on `folder` and on the mirror.
        func fold(_ folder: TraceFolder, _ batch: SpanBatch) throws {
            _ = try folder.consume(batch)
            _ = try mirror.consume(batch)
        }
        func export(_ step: String, served: Int) throws {
            let before = one.exportCache?.counts.served ?? 0
            let got = try Self.exportPassLines(one), want = try Self.exportPassLines(plain)
            XCTAssertFalse(want.isEmpty, step)
            XCTAssertEqual(got, want, step)
            XCTAssertEqual((one.exportCache?.counts.served ?? 0) - before, served, "\(step): traces the cache served")
        }

        try fold(first, span(1, a))
        try fold(first, span(2, a, parent: 1))
        try export("a new trace", served: 1)

        try fold(first, span(4, a, parent: 1))
        try fold(second, span(5, a, parent: 1))
        try export("a trace the other process wrote after us", served: 0)

        try fold(first, span(6, a, parent: 1))
        try export("our write after theirs was exported", served: 1)

        // b: revisions 1 and 2 by `one`, all in its cache since b began.
        try fold(first, span(3, b))
        try fold(first, span(7, b))
        XCTAssertEqual(try second.delete([b]), [b])
        XCTAssertEqual(try mirror.delete([b]), [b])
        try fold(second, span(8, b))
        try fold(second, span(9, b))  // made again by `two`, revision 2 again
        try export("a trace the other process deleted and made again", served: 0)
    }

    /// The exporter takes what the fold just committed from `ExportCache`
    /// instead of reading the rows back: every pass writes the same lines as
    /// a store without the cache, whether the cache could serve (new traces,
    /// spans added before an export, an update of an observation written
    /// since) or not (an update of an observation exported before, a trace
    /// deleted and sent again, an entry evicted for room).
    func testExportFromTheCacheWritesTheLinesTheRowsGive() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cached = try SQLiteStore(path: dir + "/cached.sqlite")
        let plain = try SQLiteStore(path: dir + "/plain.sqlite", exportCacheBudget: nil)
        let small = try SQLiteStore(path: dir + "/small.sqlite", exportCacheBudget: 4_000)
        defer { [cached, plain, small].forEach { $0.close() } }
        let stores: [SQLiteStore] = [cached, plain, small]
        let folders = stores.map { TraceFolder(store: $0, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger) }
        let a = TraceID(high: 7, low: 1), b = TraceID(high: 7, low: 2)

        func span(_ n: UInt64, _ trace: TraceID, parent: UInt64? = nil) -> Span {
            Conformance.S("s\(n)", id: n, parent: parent, n, n + 5, ["langfuse.observation.input": .string(#"{"q":"\#(n)"}"#),
                                                                  "langfuse.trace.metadata.n": .int(Int64(n))], trace: trace)
        }
        func fold(_ spans: [Span]) throws {
            for f in folders { _ = try f.consume(Fixtures.batch(spans)) }
        }
        func update(_ target: UInt64, of trace: TraceID, _ id: String) throws {
            let u = MetadataUpdate(id: UpdateID(id), scope: .observation, target: Conformance.id(target), kind: "userland.default",
                                   values: ["v": .string(id)], order: OrderKey(time: Conformance.T * 1_000_000 + target, spanID: 0, position: 0))
            for f in folders { XCTAssertNil(try f.applyAPI([u], to: trace)) }
        }
        /// One export pass of each store: its lines, which must agree.
        func export(_ step: String, served: Int) throws {
            var lines = [String]()
            for store in stores {
                let before = store.exportCache?.counts.served ?? 0
                lines.append(try Self.exportPassLines(store))
                if store === cached {
                    XCTAssertEqual((store.exportCache?.counts.served ?? 0) - before, served, "\(step): traces the cache served")
                }
            }
            XCTAssertFalse(lines[0].isEmpty, step)
            XCTAssertEqual(lines[0], lines[1], step)
            XCTAssertEqual(lines[2], lines[1], step)
        }

        try fold([span(1, a), span(2, a, parent: 1), span(3, b)])
        try fold([span(4, a, parent: 1)])
        try update(2, of: a, "since")  // written since the entry began: its row revision is known
        try export("new traces, a later span and an update", served: 2)

        try fold([span(5, a, parent: 1)])
        try export("a span after the export", served: 1)

        try update(1, of: a, "old")  // exported before: its row revision is not known here
        try export("an update of an exported observation", served: 0)

        for f in folders { XCTAssertEqual(try f.delete([b]), [b]) }
        try fold([span(3, b), span(6, b, parent: 3)])
        try export("a trace sent again after its delete", served: 1)
        XCTAssertEqual(cached.exportCache?.counts.traces, 0, "exported entries are dropped")
        XCTAssertGreaterThan(small.exportCache?.counts.missed ?? 0, 0, "the small cache evicted")

        // Under memory pressure the cache holds nothing, and takes again after.
        try fold([span(7, a, parent: 1)])
        XCTAssertEqual(cached.exportCache?.counts.traces, 1)
        cached.exportCache?.pause(true)
        XCTAssertEqual(cached.exportCache?.counts.traces, 0)
        try fold([span(8, a, parent: 1)])
        XCTAssertEqual(cached.exportCache?.counts.bytes, 0)
        try export("while paused", served: 0)
        cached.exportCache?.pause(false)
        try fold([span(9, b, parent: 3)])
        try export("after the pause", served: 1)
    }

    /// An export pass reads the observations of the traces the cache does
    /// not hold from the rows (on PostgreSQL 400 traces a query,
    /// `RecordStore.pendingChunk`; on SQLite a query a trace): a pass of
    /// exactly 400 traces, then one of 402 (a chunk and two more), in which
    /// a trace exported before brings only its new span. The export marks
    /// are written a chunk a statement too.
    func testAPassReadsTheObservationsOfManyTracesFromTheRows() throws {
        for backend in StoreBackend.available {
            let dir = Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let store = try backend.makeStore(in: dir, exportCacheBudget: nil)
            defer { store.close() }
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 1000, logger: logger)
            func trace(_ n: Int) -> TraceID { TraceID(high: 9, low: UInt64(n)) }
            func spans(_ n: Int) -> [Span] {
                [Conformance.S("root", id: UInt64(2 * n), 1, 9, trace: trace(n)), Conformance.S("child", id: UInt64(2 * n + 1), parent: UInt64(2 * n), 2, 8, trace: trace(n))]
            }
            /// One pass: each trace's observation ids, in the order written.
            func pass(limit: Int) throws -> [TraceID: [String]] {
                var seen = [TraceID: [String]]()
                try store.exportPass(exporter: "x", idleSince: nil, limit: limit) { pending in
                    for t in pending.traces { seen[TraceID(bytes: Array(t.traceID))!] = t.observations.map { $0.record.id } }
                    return ("f", 0)
                }
                return seen
            }
            _ = try folder.consume(group: (0..<400).map { Fixtures.batch(spans($0)) })
            let first = try pass(limit: 1000)
            XCTAssertEqual(first.count, 400, "\(backend)")
            XCTAssertEqual(first[trace(7)], [Conformance.id(14).hex, Conformance.id(15).hex], "\(backend)")
            XCTAssertEqual(Set(first.values.map(\.count)), [2], "\(backend)")

            _ = try folder.consume(group: (400..<801).map { Fixtures.batch(spans($0)) })
            _ = try folder.consume(Fixtures.batch([Conformance.S("late", id: 5000, parent: 14, 3, 4, trace: trace(7))]))
            let second = try pass(limit: 1000)
            XCTAssertEqual(second.count, 402, "\(backend)")
            XCTAssertEqual(second[trace(7)], [Conformance.id(5000).hex], "\(backend): only what was written since the export")
            XCTAssertEqual(second[trace(800)], [Conformance.id(1600).hex, Conformance.id(1601).hex], "\(backend)")
            XCTAssertEqual(second.values.reduce(0) { $0 + $1.count }, 401 * 2 + 1, "\(backend)")
            // The marks go 400 traces a statement: both of the last pass's
            // chunks were marked, so nothing is left to export.
            XCTAssertEqual(try pass(limit: 1000).count, 0, "\(backend)")
        }
    }

    /// The cache's budget: a trace whose records take exactly the budget
    /// stays and is served; one byte less and it goes, and its records
    /// come from the rows, the same lines.
    func testExportCacheKeepsATraceAtItsBudgetAndDropsItPastIt() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = TraceID(high: 9, low: 1)
        let spans: [Span] = (UInt64(1)...3).map { (n: UInt64) -> Span in
            let parent: UInt64? = n == 1 ? nil : 1
            let attrs: [String: AttributeValue] = ["langfuse.observation.input": .string("q\(n)")]
            return Conformance.S("s\(n)", id: n, parent: parent, n, n + 5, attrs, trace: trace)
        }
        func exported(budget: Int?) throws -> (lines: String, cache: ExportCache?) {
            let store = try SQLiteStore(path: dir + "/\(budget ?? 0)-\(UUID().uuidString).sqlite", exportCacheBudget: budget)
            defer { store.close() }
            _ = try TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger).consume(Fixtures.batch(spans))
            let text = try Self.exportPassLines(store)
            return (text, store.exportCache)
        }
        // How many bytes the trace's records take, from a cache with room.
        let measure = try SQLiteStore(path: dir + "/measure.sqlite")
        _ = try TraceFolder(store: measure, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger).consume(Fixtures.batch(spans))
        let size = try XCTUnwrap(measure.exportCache?.counts.bytes)
        measure.close()
        XCTAssertGreaterThan(size, 0)

        let plain = try exported(budget: nil)
        let atLimit = try exported(budget: size)
        XCTAssertEqual(atLimit.cache?.counts.served, 1, "at the budget the trace stays")
        XCTAssertEqual(atLimit.lines, plain.lines)
        let past = try exported(budget: size - 1)
        XCTAssertEqual(past.cache?.counts.served, 0, "one byte past the budget it goes")
        XCTAssertEqual(past.cache?.counts.missed, 1)
        XCTAssertEqual(past.lines, plain.lines)
        XCTAssertFalse(plain.lines.isEmpty)
    }

    /// When the fold commits faster than the exporter takes, the cache keeps
    /// the traces it holds, the oldest, which the exporter takes first (by
    /// their last change), and leaves a trace that does not fit to the
    /// rows. With room for two traces of three, passes of one trace each are
    /// served the first two and read the third back; every pass writes the
    /// lines of a store without the cache. An entry older than `staleAfter`
    /// is dropped at the next commit.
    func testAFullExportCacheKeepsTheOldestTracesForTheExporter() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func spans(_ t: UInt64) -> [Span] {
            (UInt64(1)...3).map { n in
                Conformance.S("s\(n)", id: n, parent: n == 1 ? nil : 1, n, n + 5, ["langfuse.observation.input": .string("q\(n)")],
                              trace: TraceID(high: 9, low: t))
            }
        }
        let measure = try SQLiteStore(path: dir + "/measure.sqlite")
        _ = try TraceFolder(store: measure, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger).consume(Fixtures.batch(spans(1)))
        let size = try XCTUnwrap(measure.exportCache?.counts.bytes)
        measure.close()

        let cached = try SQLiteStore(path: dir + "/cached.sqlite", exportCacheBudget: 2 * size + size / 2)
        let plain = try SQLiteStore(path: dir + "/plain.sqlite", exportCacheBudget: nil)
        defer { [cached, plain].forEach { $0.close() } }
        let folders = [cached, plain].map { TraceFolder(store: $0, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger) }
        for t in UInt64(1)...3 {
            for f in folders { _ = try f.consume(Fixtures.batch(spans(t))) }
        }
        XCTAssertEqual(cached.exportCache?.counts.traces, 2, "the third trace did not fit")
        for (pass, served) in [1, 1, 0].enumerated() {
            let before = cached.exportCache?.counts.served ?? 0
            let lines = try Self.exportPassLines(cached, limit: 1)
            XCTAssertTrue(lines.contains(TraceID(high: 9, low: UInt64(pass + 1)).hex), "pass \(pass): the oldest trace left")
            XCTAssertEqual(lines, try Self.exportPassLines(plain, limit: 1), "pass \(pass)")
            XCTAssertEqual((cached.exportCache?.counts.served ?? 0) - before, served, "pass \(pass): traces the cache served")
        }

        // Stale entries go at the next commit, with or without room.
        cached.exportCache?.staleAfter = .zero
        _ = try folders[0].consume(Fixtures.batch(spans(4)))
        XCTAssertEqual(cached.exportCache?.counts.traces, 1)
        _ = try folders[0].consume(Fixtures.batch(spans(5)))
        XCTAssertEqual(cached.exportCache?.counts.traces, 1, "the entry of trace 4 was stale")
        XCTAssertEqual(cached.exportCache?.counts.bytes, size)
    }

    /// Entries are rendered when read (SPEC §7.3): after a restart, with
    /// nothing cached, the trace rebuilt from the store gives the same bytes.
    func testEntriesOfARebuiltTraceEqualTheCachedOnes() throws {
        try StoreBackend.eachStore { backend, store, dir in
            var events = [MetadataModelTests.metadataEvent(#"{"plan":"pro"}"#, kind: "billing", scope: "trace", at: 1)]
            events.append(MetadataModelTests.metadataEvent(#"{"route":"/x"}"#, kind: "net", scope: "extended_trace", spanID: "00f067aa0ba902b7", at: 2))
            let spans = [
                Conformance.S("root", id: 1, 0, 10, ["langfuse.observation.metadata.step": .string("\"parse\""), "gen_ai.request.model": .string("m")], events: events),
                Conformance.S("child", id: 2, parent: 1, 1, 2, ["langfuse.trace.metadata.tier": .string("gold")]),
            ]
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
            _ = try folder.consume(Fixtures.batch(spans))
            let cached = try XCTUnwrap(folder.allEntries(of: Conformance.trace))
            let kinds = try JSONParser.parse(cached).arrayValue?.compactMap { $0["kind"]?.stringValue }
            XCTAssertEqual(Set(kinds ?? []), ["tracefold.ai", "userland.net", "userland.default", "userland.billing"], "\(backend)")

            let restarted = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
            XCTAssertEqual(try restarted.allEntries(of: Conformance.trace), cached, "\(backend)")
            XCTAssertNil(try restarted.allEntries(of: TraceID(high: 9, low: 9)), "\(backend): an unknown trace")
        }
    }

    /// A crash after a new export file's first lines are fsynced and before
    /// their marks commit: the next start must cut those lines, not leave
    /// them in a file the store never named while it writes them again.
    func testACrashBeforeANewFilesFirstMarksWritesNothingTwice() throws {
        try StoreBackend.eachStore { backend, store, dir in
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 100, logger: logger)
            _ = try folder.consume(Fixtures.batch([Conformance.S("root", id: 1, 0, 5), Conformance.S("child", id: 2, parent: 1, 1, 2)]))
            let config = JSONLExporterConfig(directory: dir + "/export")

            // The crash: the lines reach the file and their marks never commit.
            let crashing = MarksFailStore(base: store) { (try? self.exportLines(dir + "/export").isEmpty) == false }
            let first = try JSONLRecordExporter(config: config, store: crashing, logger: logger)
            XCTAssertThrowsError(try first.flushAll())
            let written = try exportLines(dir + "/export")
            XCTAssertEqual(written.count, 3, "the lines reached the file before the marks failed")

            let restarted = try JSONLRecordExporter(config: config, store: store, logger: logger)
            try restarted.flushAll()
            restarted.shutdown()
            let lines = try exportLines(dir + "/export")
            let keys = lines.map { "\($0["recordType"]!.stringValue!) \($0["id"]!.stringValue!) \($0["revision"]!)" }
            XCTAssertEqual(keys.count, 3, "\(backend): \(keys.sorted())")
            XCTAssertEqual(Set(keys).count, keys.count, "\(backend): a revision was written twice")
        }
    }

    func exportLines(_ dir: String) throws -> [JSONValue] {
        try FileManager.default.contentsOfDirectory(atPath: dir).sorted().flatMap { f in
            try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))).split(separator: UInt8(ascii: "\n")).map { try JSONParser.parse($0) }
        }
    }
}

/// A store whose write transactions roll back once export lines have
/// reached a file: what a kill -9 between the lines and the commit of their
/// marks leaves behind, on either backend (PostgreSQL marks in the pass's
/// own transaction, SQLite in a second one).
final class MarksFailStore: RecordStore, @unchecked Sendable {
    let base: any RecordStore
    let linesWritten: () -> Bool

    init(base: any RecordStore, linesWritten: @escaping () -> Bool) {
        self.base = base
        self.linesWritten = linesWritten
    }

    var dialect: SQLDialect { base.dialect }
    var location: String { base.location }
    var traceEpochs: TraceEpochs { base.traceEpochs }
    func read<T>(_ body: (any SQLSession) throws -> T) throws -> T { try base.read(body) }
    func write<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try base.write { s in
            let result = try body(s)
            if linesWritten() { throw StoreError("killed before the marks committed") }
            return result
        }
    }
    func lock(_ traces: [TraceID], in session: any SQLSession) throws { try base.lock(traces, in: session) }
    func sync() throws { try base.sync() }
    func close() {}
}

import Compression

enum StreamingInflaterProbe {
    static func gunzip(_ data: [UInt8]) -> [UInt8] {
        let inflater = StreamingInflater(coding: .gzip, limit: Int.max)
        try! inflater.feed(data)
        return try! inflater.finish()
    }
}

final class RetentionTests: XCTestCase {
    func testOldTracesGoWithTheirObservationsAndSpans() throws {
        for backend in StoreBackend.available { try checkRetention(backend) }
    }

    func checkRetention(_ backend: StoreBackend) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try backend.makeStore(in: dir)
        defer { store.close() }
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, retention: .seconds(30 * 86400), logger: Logger(label: "test"))
        let day: UInt64 = 86_400_000_000_000
        let now = Conformance.T * 1_000_000 + 40 * day
        let old = TraceID(high: 7, low: 1)
        let young = TraceID(high: 7, low: 2)
        // The old trace started 40 days before "now", the young one 10 days before.
        _ = try folder.consume(Fixtures.batch([Conformance.S("old", id: 1, 0, 5, trace: old), Conformance.S("old-child", id: 2, parent: 1, 1, 2, trace: old)]))
        _ = try folder.consume(Fixtures.batch([Conformance.S("young", id: 3, 30 * 86_400_000, 30 * 86_400_000 + 5, trace: young)]))
        XCTAssertEqual(try store.counts().traces, 2)
        XCTAssertEqual(try folder.enforceRetention(nowUnixNano: now), 1)
        XCTAssertNil(try store.traceRecord(old))
        XCTAssertNotNil(try store.traceRecord(young))
        XCTAssertEqual(try store.counts().spans, 1)
        XCTAssertEqual(try store.counts().observations, 1)
        // A late span of the deleted trace starts it afresh: nothing deleted comes back.
        _ = try folder.consume(Fixtures.batch([Conformance.S("late", id: 4, parent: 1, 3, 4, trace: old)]))
        let record = try JSONParser.parse(try XCTUnwrap(store.traceRecord(old)))
        XCTAssertEqual(record["observations"], .array([.string(Conformance.id(4).hex)]))
    }

    func testPostgresURLIsConfigurable() throws {
        func yaml(_ store: String) -> String {
            "receivers:\n  otlp: {}\nstore:\n\(store)service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        }
        let ok = yaml("  postgres:\n    url: ${env:PG}\n")
        XCTAssertEqual(try CollectorConfig.parse(yaml: ok, environment: ["PG": "postgres://u@127.0.0.1:5432/db"]).store.postgresURL, "postgres://u@127.0.0.1:5432/db")
        XCTAssertNil(try CollectorConfig.parse(yaml: CollectorConfig.embeddedDefaultYAML, environment: [:]).store.postgresURL)
        XCTAssertThrowsError(try CollectorConfig.parse(yaml: yaml("  postgres:\n    url: mysql://x/db\n"), environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("store.postgres.url must start with postgres://"), "\(error)")
        }
        XCTAssertThrowsError(try CollectorConfig.parse(yaml: yaml("  postgres:\n    host: x\n"), environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("unknown key \"host\""), "\(error)")
        }
        // A URL that parses as config but names no host fails when the store opens.
        XCTAssertThrowsError(try PostgresStore(url: "postgres:///db", logger: Logger(label: "test"))) { error in
            XCTAssertTrue("\(error)".contains("postgres://user:password@host:port/database"), "\(error)")
        }
    }

    func testRetentionIsConfigurable() throws {
        let yaml = "receivers:\n  otlp: {}\nstore:\n  retention: 30d\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        XCTAssertEqual(try CollectorConfig.parse(yaml: yaml, environment: [:]).store.retention, .seconds(30 * 86400))
        XCTAssertNil(try CollectorConfig.parse(yaml: CollectorConfig.embeddedDefaultYAML, environment: [:]).store.retention)
        XCTAssertThrowsError(try CollectorConfig.parse(yaml: yaml.replacingOccurrences(of: "30d", with: "forever"), environment: [:]))
    }
}

final class BatchExportTests: XCTestCase {
    func testPagesCoverTheRangeOnceInStartOrder() throws {
        for backend in StoreBackend.available { try checkPages(backend) }
    }

    func checkPages(_ backend: StoreBackend) throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try backend.makeStore(in: dir)
        defer { store.close() }
        let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
        for i in 0..<5 {
            let trace = TraceID(high: 9, low: UInt64(5 - i))
            _ = try folder.consume(Fixtures.batch([Conformance.S("t\(i)", id: UInt64(10 * i + 1), UInt64(i * 100), UInt64(i * 100 + 5), trace: trace)]))
        }
        // Scores made at 50, 100, 150, 250, 350 and 400 ms; "s150" deleted
        // and made again, so its line counts on from its tombstone.
        func score(_ ms: UInt64) -> ScoreWrite {
            ScoreWrite(id: "s\(ms)", sessionID: "chat", name: "q", dataType: "NUMERIC", value: Double(ms), stringValue: nil,
                       timestampUnixNano: (Conformance.T + ms) * 1_000_000)
        }
        try store.writeScores([50, 100, 150, 250, 350, 400].map(score))
        XCTAssertTrue(try store.deleteScore(id: "s150"))
        try store.writeScores([score(150)])
        var export = BatchExport(store: store, fromUnixNano: (Conformance.T + 100) * 1_000_000, toUnixNano: (Conformance.T + 400) * 1_000_000, gzip: false)
        export.pageSize = 2
        var bytes = [UInt8]()
        var progress = [(Int, Int)]()
        let count = try export.run(write: { bytes += $0 }, progress: { progress.append(($0, $1)) })
        XCTAssertEqual(count, 3, "start times 100, 200 and 300 are in [100, 400)")
        XCTAssertEqual(progress.map(\.0), [2, 3])
        XCTAssertEqual(progress.map(\.1), [3, 3])
        let lines = try bytes.split(separator: UInt8(ascii: "\n")).map { try JSONParser.parse($0) }
        XCTAssertEqual(lines.filter { $0["recordType"] == .string("trace") }.compactMap { $0["name"]?.stringValue }, ["t1", "t2", "t3"])
        let scores = lines.filter { $0["recordType"] == .string("score") }
        XCTAssertEqual(scores.compactMap { $0["id"]?.stringValue }, ["s100", "s150", "s250", "s350"], "made in [100, 400), after the traces, oldest first")
        XCTAssertEqual(scores[1]["revision"], .int(3), "after its tombstone's revision 2")
        XCTAssertEqual(scores[1]["value"]?.numberValue, 150)
        XCTAssertEqual(lines.count, 10)
        XCTAssertTrue(lines.filter { $0["id"] != .string("s150") }.allSatisfy { $0["revision"] == .int(1) })
    }
}

/// Observation records are stored in `ObservationRecord`'s binary form and
/// rendered when read; records stored as JSON text before it still read.
final class ObservationRecordStoreTests: XCTestCase {
    func testStoredFormRendersTheRecordAndOlderJSONRecordsStillRead() throws {
        try StoreBackend.eachStore { backend, store, _ in
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
            let spans = [
                Conformance.S("root", id: 1, 0, 50, ["langfuse.observation.metadata.step": .int(1), "langfuse.trace.metadata.tenant": .string("a")]),
                Conformance.S(
                    "llm \"call\"", id: 2, parent: 1, 5, 40, status: SpanStatus(code: .error, message: "bad\nthing"),
                    [
                        "langfuse.observation.type": .string("generation"), "gen_ai.request.model": .string("gpt-4o"),
                        "gen_ai.usage.input_tokens": .int(10), "gen_ai.usage.output_tokens": .int(5),
                        "langfuse.observation.input": .string(#"{"q":"é"}"#), "langfuse.observation.completion_start_time": .string("2023-11-14T22:13:20.010Z"),
                    ]
                ),
            ]
            let batch = Fixtures.batch(spans)
            _ = try folder.consume(batch)
            let expected = Conformance.fold(spans, resource: batch.resourceSpans[0].resource, scope: batch.resourceSpans[0].scopeSpans[0].scope)
            for n: UInt64 in [1, 2] {
                let id = Conformance.id(n)
                let stored = try XCTUnwrap(store.read { try $0.rows("SELECT record FROM observations WHERE span_id = ?", [.blob(Data(id.bytes))]).first }?["record"])
                guard case .blob(let compressed) = stored else { return XCTFail("\(backend): record is \(stored)") }
                // Deflated against its column's dictionary (`RowCompression`);
                // inflated, it is the binary form.
                XCTAssertEqual(compressed.first, 0xDC, "\(backend): the compressed form's first byte")
                let bytes = try store.read { try $0.rowCompression.expand(compressed, in: $0) }
                XCTAssertEqual(bytes.first, 2, "\(backend): the stored form's first byte")
                let json = try XCTUnwrap(store.observation(id))
                XCTAssertLessThan(bytes.count, json.utf8.count / 2, "\(backend)")
                // A binary record stored before compression reads as it is.
                try store.write { try $0.execute("UPDATE observations SET record = ? WHERE span_id = ?", [.blob(Data(bytes)), .blob(Data(id.bytes))]) }
                XCTAssertEqual(try store.observation(id), json, "\(backend)")
                XCTAssertEqual(record(Array(json.utf8)), expected.obs(n), "\(backend)")
            }

            // A row written as JSON text before the stored form reads as it is
            // (PostgreSQL keeps such text as its UTF-8 bytes).
            let old = #"{"id":"00000000000000ff","name":"from before","traceId":"2cce18f7a1b2c3d4e5f60718293a8391"}"#
            let column: SQLValue = backend == .sqlite ? .text(old) : .blob(Data(old.utf8))
            try store.write {
                try $0.execute(
                    // Under its trace's epoch, as every row of a trace is.
                    """
                    INSERT INTO observations (trace_id, span_id, revision, trace_revision, start_time, record, epoch)
                    VALUES (?, ?, 1, 1, 0, ?, (SELECT epoch FROM traces WHERE trace_id = ?))
                    """,
                    [.blob(Data(Conformance.trace.bytes)), .blob(Data(SpanID(0xFF).bytes)), column, .blob(Data(Conformance.trace.bytes))]
                )
            }
            XCTAssertEqual(try store.observation(SpanID(0xFF)), old, "\(backend)")
            XCTAssertEqual(try store.observationRecords(of: Conformance.trace).first, old, "\(backend)")

            // Bytes that are neither are an error, not an empty answer.
            try store.write { try $0.execute("UPDATE observations SET record = ? WHERE span_id = ?", [.blob(Data([1, 2, 3])), .blob(Data(SpanID(0xFF).bytes))]) }
            XCTAssertThrowsError(try store.observation(SpanID(0xFF)), "\(backend)") { error in
                XCTAssertTrue("\(error)".contains("does not decode"), "\(error)")
            }
        }
    }

    /// The stored form writes each JSON-valued field after its length, a
    /// varint that widens once the field passes 127 bytes (and again past
    /// 16,383): records whose metadata, entries and costs take one, two and
    /// three length bytes render as the reference fold renders them.
    func testLongJSONFieldsRenderAsTheReferenceFold() throws {
        try StoreBackend.eachStore { backend, store, _ in
            let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
            let spans = [
                Conformance.S("root", id: 1, 0, 50, ["langfuse.observation.metadata.short": .string("x")]),
                Conformance.S("two", id: 2, parent: 1, 5, 40, [
                    "langfuse.observation.metadata.mid": .string(String(repeating: "m", count: 200)),
                    "http.url": .string("https://example.com/" + String(repeating: "u", count: 150)),
                ]),
                Conformance.S("three", id: 3, parent: 1, 6, 30, [
                    "langfuse.observation.metadata.long": .string(String(repeating: "é", count: 10_000)),
                    "gen_ai.request.model": .string(String(repeating: "g", count: 20_000)),
                ]),
            ]
            let batch = Fixtures.batch(spans)
            _ = try folder.consume(batch)
            let expected = Conformance.fold(spans, resource: batch.resourceSpans[0].resource, scope: batch.resourceSpans[0].scopeSpans[0].scope)
            for n: UInt64 in [1, 2, 3] {
                let json = try XCTUnwrap(store.observation(Conformance.id(n)), "\(backend)")
                XCTAssertEqual(record(Array(json.utf8)), expected.obs(n), "\(backend): observation \(n)")
            }
        }
    }

    /// A PostgreSQL database made before the stored form has a text record
    /// column: opening it turns the column into bytea, and its records
    /// still read.
    func testPostgresTextRecordsBecomeBytes() throws {
        guard StoreBackend.postgresURL != nil else { return }
        let url = try StoreBackend.freshPostgresDatabase()
        let json = #"{"id":"0000000000000001","name":"n"}"#
        let first = try PostgresStore(url: url, logger: Logger(label: "test"))
        try first.write { s in
            // CASCADE: the `spans` view reads observations.
            try s.execute("DROP TABLE observations CASCADE", [])
            try s.execute(
                """
                CREATE TABLE observations (
                  trace_id bytea NOT NULL, span_id bytea NOT NULL, revision bigint NOT NULL, exported_revision bigint NOT NULL DEFAULT 0,
                  start_time bigint NOT NULL, record text NOT NULL, type text, name text, level text, version text, parent_id text,
                  environment text, model text, latency double precision, input_tokens double precision, output_tokens double precision,
                  total_tokens double precision, cost double precision, trace_revision bigint, PRIMARY KEY (trace_id, span_id))
                """, [])
            try s.execute("INSERT INTO observations (trace_id, span_id, revision, start_time, record) VALUES (?, ?, 1, 0, ?)",
                          [.blob(Data([9])), .blob(Data(SpanID(1).bytes)), .text(json)])
        }
        first.close()
        let store = try PostgresStore(url: url, logger: Logger(label: "test"))
        defer { store.close() }
        let type = try store.read {
            try $0.rows("SELECT data_type FROM information_schema.columns WHERE table_name = 'observations' AND column_name = 'record'", []).first
        }
        XCTAssertEqual(type?["data_type"], SQLValue.text("bytea"))
        XCTAssertEqual(try store.observation(SpanID(1)), json)
    }
}

/// An observation is found by its id alone through
/// `observations_by_epoch_span`, whichever epoch its row went in
/// (`TraceEpochs`).
final class ObservationEpochTests: XCTestCase {
    func testAnEpochTakesItsSizeThenTheNextBegins() {
        let epochs = TraceEpochs()
        var reads = 0
        let stored = { () -> Int64 in
            reads += 1
            return 6
        }
        XCTAssertEqual(epochs.epoch(ofRows: TraceEpochs.size - 1, greatestStored: stored), 7, "a process starts after the greatest stored")
        XCTAssertEqual(epochs.epoch(ofRows: 1, greatestStored: stored), 7, "one row short of the size: same epoch")
        XCTAssertEqual(epochs.epoch(ofRows: 4096, greatestStored: stored), 8, "at the size: the next")
        XCTAssertEqual(epochs.epoch(ofRows: TraceEpochs.size - 4096, greatestStored: stored), 8)
        XCTAssertEqual(epochs.epoch(ofRows: 1, greatestStored: stored), 9)
        XCTAssertEqual(reads, 1, "the store is read once")
    }

    func testObservationsAreFoundByIdInEveryEpoch() throws {
        try StoreBackend.eachStore { backend, store, dir in
            func fold(_ trace: TraceID, _ ids: ClosedRange<UInt64>, into store: any RecordStore) throws {
                let folder = TraceFolder(store: store, limits: MetadataLimits(), maxOpenTraces: 10, logger: Logger(label: "test"))
                _ = try folder.consume(Fixtures.batch(ids.map { Conformance.S("s\($0)", id: $0, parent: $0 == ids.lowerBound ? nil : ids.lowerBound, 0, 10, trace: trace) }))
            }
            func epochs(_ store: any RecordStore) throws -> [SpanID: Int64] {
                Dictionary(uniqueKeysWithValues: try store.read { try $0.rows("SELECT span_id, epoch FROM observations", []) }.map {
                    (SpanID(bytes: [UInt8]($0["span_id"].data ?? Data()))!, $0["epoch"].int ?? -1)
                })
            }
            let a = TraceID(hex: "aa000000000000000000000000000001")!, b = TraceID(hex: "bb000000000000000000000000000002")!
            try fold(a, 1...3, into: store)
            XCTAssertEqual(Set(try epochs(store).values), [1], "\(backend): an empty store's first epoch")
            // A second process on the same store starts the next epoch.
            let again: any RecordStore = backend == .sqlite ? try SQLiteStore(path: dir + "/t.sqlite") : store
            if backend == .sqlite {
                try fold(b, 4...5, into: again)
                XCTAssertEqual(try epochs(again).filter { $0.key.value >= Conformance.id(4).value }.values.sorted(), [2, 2], "\(backend)")
                // A late span goes in its trace's epoch, not the newest.
                try fold(a, 7...7, into: again)
                XCTAssertEqual(try epochs(again)[Conformance.id(7)], 1, "\(backend)")
                XCTAssertEqual(try again.observationRecords(of: a).count, 4, "\(backend): the trace's rows, read through its epoch")
                XCTAssertNotNil(try again.observation(Conformance.id(7)))
                again.close()
            } else {
                try fold(b, 4...5, into: store)
            }
            // A row made before the column is in epoch 0; the rest are spread
            // over epochs with gaps between them.
            try store.write {
                try $0.execute("UPDATE observations SET epoch = 0 WHERE span_id = ?", [.blob(Conformance.id(1).data)])
                try $0.execute("UPDATE observations SET epoch = 40 WHERE span_id = ?", [.blob(Conformance.id(3).data)])
                try $0.execute("UPDATE observations SET epoch = 41 WHERE span_id = ?", [.blob(Conformance.id(5).data)])
            }
            XCTAssertEqual(Set(try epochs(store).values), backend == .sqlite ? [0, 1, 2, 40, 41] : [0, 1, 40, 41], "\(backend)")
            for n: UInt64 in 1...5 {
                let json = try XCTUnwrap(store.observation(Conformance.id(n)), "\(backend): span \(n)")
                XCTAssertEqual(try JSONParser.parse(json)["name"], .string("s\(n)"), "\(backend)")
            }
            XCTAssertNil(try store.observation(Conformance.id(6)), "\(backend): an id no row has")
        }
    }
}
