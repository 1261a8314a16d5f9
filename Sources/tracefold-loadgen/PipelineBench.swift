import ArgumentParser
import Foundation
import Logging
import OTLP
import TracefoldConfig
import TracefoldExport
import TracefoldFold
import TracefoldMapping
import TracefoldModel
import TracefoldStore

extension LoadGenerator {
    /// The collector's work after the ack, in this process and without
    /// HTTP: decode each body (inflated before the clock starts), prepare
    /// and fold it in groups of eight batches (4,096 spans, what the
    /// pipeline gives the fold under load) into a real SQLite store, and
    /// write every record as a JSON line with the JSONL exporter, rotating
    /// (and gzipping) every 8 MB as `max_megabytes` does at its own size.
    /// Each round starts from an empty store and an empty export directory,
    /// so every round does the same work; the figure is the round with the
    /// least process CPU time, in µs a span. The intake log and the
    /// receiver are left out.
    ///
    /// Why: the whole-pipeline run of `make bench` moves by up to 10%
    /// between two runs of the same build on these shared machines, so a
    /// change worth a few percent cannot be told from the noise there. The
    /// least of several short rounds moves far less, and compares builds
    /// when each is run in turn (`bench/pipeline_pairs.py`).
    func runPipelineBench(rounds: Int) throws {
        let raw = try benchBodies().raw
        let logger = Logger(label: "pipeline-bench")
        let pricer = ModelPricer(ModelDefinition.builtIns)
        var best = Duration.seconds(1e9)
        var times = [Double]()
        var exportedBytes = 0
        var storedBytes = 0
        let profile = sqlProfile ? SQLStatementProfile() : nil
        for _ in 0..<rounds {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("tracefold-pipeline-bench-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            let store = try SQLiteStore(path: work + "/tracefold.sqlite", statementProfile: profile)
            // The round's statements, not the schema's.
            profile?.reset()
            // As the collector makes it (`Collector`).
            let folder = TraceFolder(
                store: store, limits: MetadataLimits(), maxOpenTraces: FoldProcessorConfig().maxOpenTraces,
                settledTraceSpans: TraceFolder.releasedSettledTraceSpans, logger: logger, pricer: pricer)
            var exportConfig = JSONLExporterConfig(directory: work + "/export")
            exportConfig.maxMegabytes = 8
            let exporter = try JSONLRecordExporter(config: exportConfig, store: store, logger: logger)
            let began = processCPUTime()
            var group = [SpanBatch]()
            for (i, body) in raw.enumerated() {
                var batch = try OTLPDecoder.decode(body, encoding: .protobuf).batch
                _ = folder.prepare(&batch)
                group.append(batch)
                if group.count == 8 || i == raw.count - 1 {
                    _ = try folder.consume(group: group)
                    group.removeAll(keepingCapacity: true)
                }
            }
            try exporter.flushAll()
            let took = processCPUTime() - began
            exporter.shutdown()
            // After the checkpoint that `close` makes, the file holds every
            // commit: what the footprint bench counts after truncating the
            // WAL (which a FULL checkpoint leaves at its size).
            try folder.close()
            storedBytes = (try? FileManager.default.attributesOfItem(atPath: work + "/tracefold.sqlite")[.size] as? Int) ?? 0
            best = min(best, took)
            times.append(took.inSeconds)
            exportedBytes = try FileManager.default.contentsOfDirectory(atPath: work + "/export").reduce(0) { sum, name in
                sum + ((try? FileManager.default.attributesOfItem(atPath: work + "/export/" + name)[.size] as? Int) ?? 0)
            }
            // A round that exported nothing measured less than it claims.
            guard exportedBytes > 0 else { throw ValidationError("--pipeline-bench: the round exported nothing") }
        }
        let spans = Double(requests * batch)
        // The statements of the last round, in µs a span, and how many
        // times each ran.
        let statements: [String: JSONValue] = profile.map { profile in
            ["sqliteStatementsLastRound": .array(profile.totals.map { e in
                .object(["statement": .string(e.statement), "usPerSpan": .double((e.seconds / spans * 1e8).rounded() / 100), "runs": .int(Int64(e.runs))])
            })]
        } ?? [:]
        print(JSONWriter.serialize(.object(statements.merging([
            "requests": .int(Int64(requests)), "spansPerRequest": .int(Int64(batch)), "rounds": .int(Int64(rounds)),
            "usPerSpanBest": .double((best.inSeconds / spans * 1e8).rounded() / 100),
            "usPerSpanEachRound": .array(times.map { .double(($0 / spans * 1e8).rounded() / 100) }),
            "spansPerCpuSecondBest": .double((spans / best.inSeconds).rounded()),
            "exportBytesLastRound": .int(Int64(exportedBytes)),
            // Bytes a span: the SQLite file after a checkpoint, and
            // the load's uncompressed protobuf (Done-when: stored <= wire).
            "storedBytesPerSpanLastRound": .int(Int64(storedBytes) / Int64(spans)),
            "wireBytesPerSpan": .int(Int64(raw.reduce(0) { $0 + $1.count }) / Int64(spans)),
        ]) { $1 })))
    }
}

/// The process's CPU time, every thread's (the fold maps on a thread of
/// its own), not the wall clock: time another tenant of the machine takes
/// does not count.
func processCPUTime() -> Duration {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return .seconds(t.tv_sec) + .nanoseconds(t.tv_nsec)
}
