import Compression
import Foundation
import TracefoldModel
import TracefoldStore

/// `tracefold export` (SPEC §6.4): the JSONL exporter's lines for the traces
/// that started in a time range, then for the scores made in it, read from the store a page at a time so
/// memory stays flat however much is exported.
public struct BatchExport {
    public var store: any RecordStore
    public var fromUnixNano: UInt64
    public var toUnixNano: UInt64
    /// Each page becomes its own gzip member; concatenated members are one
    /// valid gzip stream, and nothing needs the whole output in memory.
    public var gzip: Bool
    public var pageSize = 200

    public init(store: any RecordStore, fromUnixNano: UInt64, toUnixNano: UInt64, gzip: Bool) {
        self.store = store
        self.fromUnixNano = fromUnixNano
        self.toUnixNano = toUnixNano
        self.gzip = gzip
    }

    /// Writes every page through `write`; `progress` gets (traces done, total).
    @discardableResult
    public func run(write: ([UInt8]) throws -> Void, progress: (Int, Int) -> Void = { _, _ in }) throws -> Int {
        let total = try store.traceCount(fromUnixNano: fromUnixNano, toUnixNano: toUnixNano)
        var done = 0
        var after: (Int64, Data)?
        while true {
            let page = try store.exportPage(fromUnixNano: fromUnixNano, toUnixNano: toUnixNano, after: after, limit: pageSize)
            if page.isEmpty { break }
            var w = JSONWriter(reservingCapacity: 64 * 1024)
            for (_, p) in page {
                try JSONLRecordExporter.line(p.trace, into: &w)
                for o in p.observations { try JSONLRecordExporter.line(o.record, into: &w) }
            }
            try write(gzip ? Gzip.compress(w.bytes) : w.bytes)
            done += page.count
            progress(done, total)
            after = page.last.map { ($0.start, $0.trace.traceID) }
        }
        // Then the scores made in the range, as the exporter writes them.
        var scoresAfter: (Int64, String)?
        while true {
            let page = try store.exportScores(fromUnixNano: fromUnixNano, toUnixNano: toUnixNano, after: scoresAfter, limit: pageSize)
            if page.isEmpty { break }
            var w = JSONWriter(reservingCapacity: 64 * 1024)
            for (_, record) in page { try JSONLRecordExporter.line(record, into: &w) }
            try write(gzip ? Gzip.compress(w.bytes) : w.bytes)
            scoresAfter = page.last?.cursor
        }
        return done
    }
}
