import Yams

public enum Durability: String, Sendable, Equatable, CaseIterable {
    /// Spans are appended to the intake log and fsynced before the 200.
    case fsync
    /// No intake log: for benchmarks only (SPEC §1.10).
    case none
}

public struct StoreConfig: Sendable, Equatable {
    /// Holds the intake log and the store; SPEC §9.6 `TRACEFOLD_DATA_DIR`.
    public var directory: String = "./data"
    public var durability: Durability = .fsync
    /// Intake log segments roll over at this size.
    public var segmentSize: Int = 64 << 20
    /// Accepted spans that may wait for the fold and the exporters before
    /// intake answers 503 with Retry-After; bounds the memory between intake
    /// and export and, since acks come before the fold, how far visibility
    /// lags (about 0.7 s of fold work at 8192; a queued span holds about
    /// 8 KB decoded and mapped).
    public var maxPendingSpans: Int = 8192
    /// `store.max_pending_wait`: how long a request that finds
    /// `maxPendingSpans` queued waits for the fold to make room, before its
    /// body is read, instead of being turned away at once. The fold drains
    /// the queue in groups of thousands of spans, so a full queue has room
    /// again within a fraction of a second while the fold keeps working;
    /// turning the request away at once sent its client to sleep out
    /// `Retry-After` (1 s) while the fold sat idle. On the §10.1 load run
    /// unpaced, 4 closed-loop clients got 8.4k spans/s acknowledged with the
    /// fold thread busy 23% of the time. The wait holds no body, so it
    /// costs no memory; the queue bound, and so the visibility bound, stay
    /// as they are. 0 turns the wait off. At most 10 s: an OTLP exporter
    /// gives up on a request after 10 s by default, and would then send it
    /// again rather than honour a `Retry-After`.
    public var maxPendingWait: Duration = .seconds(1)
    public static let maxPendingWaitLimit: Duration = .seconds(10)

    public init() {}

    public var intakeLogDirectory: String { directory + "/intake" }
    /// SPEC §8.3: traces older than this (by their first span) are deleted
    /// with their observations and spans; nil keeps everything.
    public var retention: Duration?
    /// SPEC §8.1: `<data>/tracefold.sqlite` unless `sqlite.path` says otherwise.
    public var sqlitePath: String?
    public var resolvedSQLitePath: String { sqlitePath ?? directory + "/tracefold.sqlite" }
    /// SPEC §8.2: `store.postgres.url`; when set, records go to PostgreSQL
    /// instead of SQLite, and several processes may share the database.
    public var postgresURL: String?
    /// `store.postgres.request_timeout`: the longest wait for PostgreSQL to
    /// answer one round trip before the connection is given up and the call
    /// fails (a frozen server or a partition otherwise stalls the fold and
    /// the exporter for ever).
    public var postgresRequestTimeout: Duration = .seconds(30)

    static func parse(_ node: Node, _ r: YAMLReader) throws(ConfigError) -> StoreConfig {
        var c = StoreConfig()
        for (key, _, value) in try r.mapping(node, at: "store", allowed: ["directory", "durability", "segment_size", "max_pending_spans", "max_pending_wait", "sqlite", "postgres", "retention"]) ?? [] {
            switch key {
            case "directory":
                c.directory = try r.string(value, at: "store.directory")
                guard !c.directory.isEmpty else { throw r.error(value, "store.directory is empty") }
            case "durability":
                let s = try r.string(value, at: "store.durability")
                guard let d = Durability(rawValue: s) else {
                    throw r.error(value, "store.durability must be one of \(Durability.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(s)\"")
                }
                c.durability = d
            case "sqlite":
                for (_, _, v) in try r.mapping(value, at: "store.sqlite", allowed: ["path"]) ?? [] {
                    let p = try r.string(v, at: "store.sqlite.path")
                    guard !p.isEmpty else { throw r.error(v, "store.sqlite.path is empty") }
                    c.sqlitePath = p
                }
            case "postgres":
                for (k, _, v) in try r.mapping(value, at: "store.postgres", allowed: ["url", "request_timeout"]) ?? [] {
                    if k == "request_timeout" {
                        let d = try r.duration(v, at: "store.postgres.request_timeout")
                        guard d > .zero else { throw r.error(v, "store.postgres.request_timeout must be positive") }
                        c.postgresRequestTimeout = d
                        continue
                    }
                    let url = try r.string(v, at: "store.postgres.url")
                    guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                        throw r.error(v, "store.postgres.url must start with postgres://")
                    }
                    c.postgresURL = url
                }
            case "retention":
                let d = try r.duration(value, at: "store.retention")
                guard d > .zero else { throw r.error(value, "store.retention must be positive") }
                c.retention = d
            case "max_pending_spans":
                c.maxPendingSpans = try r.int(value, at: "store.max_pending_spans")
                guard c.maxPendingSpans > 0 else { throw r.error(value, "store.max_pending_spans must be positive") }
            case "max_pending_wait":
                c.maxPendingWait = try r.duration(value, at: "store.max_pending_wait")
                guard c.maxPendingWait <= maxPendingWaitLimit else {
                    throw r.error(value, "store.max_pending_wait must be at most 10s (an OTLP exporter's default timeout), got \(try r.string(value, at: "store.max_pending_wait"))")
                }
            default:
                c.segmentSize = try r.byteSize(value, at: "store.segment_size")
                guard c.segmentSize >= 4096 else { throw r.error(value, "store.segment_size must be at least 4096 bytes") }
            }
        }
        return c
    }
}
