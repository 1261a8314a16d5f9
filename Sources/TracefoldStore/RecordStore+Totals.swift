import Foundation
import TracefoldModel

/// What a trace's observations add up to, for the traces list: a list row
/// shows a trace's tokens next to its cost without fetching its
/// observations.
public struct TraceTotals: Sendable, Equatable {
    public var observations = 0
    public var errors = 0
    public var inputTokens: Double = 0
    public var outputTokens: Double = 0
    public var totalTokens: Double = 0

    public init() {}
}

/// One interval of `timeSeries`: traces that started in it, those of them
/// with an ERROR observation, and their cost.
public struct TimeBucket: Sendable, Equatable {
    public var startUnixNano: UInt64
    public var traces = 0
    public var errorTraces = 0
    public var totalCost: Double = 0
}

extension RecordStore {
    /// Totals of the observations of each trace in `traces`; a trace with no
    /// observation stored is left out.
    public func traceTotals(of traces: [TraceID]) throws -> [TraceID: TraceTotals] {
        guard !traces.isEmpty else { return [:] }
        return try read { s in
            var out = [TraceID: TraceTotals]()
            try TraceRows.byID(traces, alias: "t.", in: s) { keys in
                let sql = """
                    SELECT o.trace_id, COUNT(*) AS n, SUM(CASE WHEN o.level = 'ERROR' THEN 1 ELSE 0 END) AS errors,
                      SUM(COALESCE(o.input_tokens, 0)) AS i, SUM(COALESCE(o.output_tokens, 0)) AS o, SUM(COALESCE(o.total_tokens, 0)) AS tt
                    FROM traces t JOIN observations o ON \(TraceRows.joined("o", to: "t"))
                    WHERE \(keys.sql)
                    GROUP BY o.trace_id
                    """
                for row in try s.rows(sql, keys.args) {
                    guard let id = row["trace_id"].data.flatMap({ TraceID(bytes: $0) }) else { continue }
                    var t = TraceTotals()
                    t.observations = Int(row["n"].int ?? 0)
                    t.errors = Int(row["errors"].int ?? 0)
                    t.inputTokens = row["i"].double ?? 0
                    t.outputTokens = row["o"].double ?? 0
                    t.totalTokens = row["tt"].double ?? 0
                    out[id] = t
                }
            }
            return out
        }
    }

    /// Traces per interval of `intervalNano` in `[from, to)`, every interval
    /// present (zeros where nothing started), intervals aligned to the epoch
    /// so that two windows over the same time agree.
    public func timeSeries(fromUnixNano from: UInt64, toUnixNano to: UInt64, intervalNano: UInt64) throws -> [TimeBucket] {
        precondition(intervalNano > 0 && to > from)
        let first = from / intervalNano, last = (to - 1) / intervalNano
        let rows = try read { s in
            try s.rows(
                """
                SELECT start_time / ? AS b, COUNT(*) AS traces, SUM(COALESCE(total_cost, 0)) AS cost,
                  SUM(CASE WHEN EXISTS (SELECT 1 FROM observations o WHERE \(TraceRows.joined("o", to: "traces")) AND o.level = 'ERROR')
                    THEN 1 ELSE 0 END) AS errors
                FROM traces WHERE start_time >= ? AND start_time < ? GROUP BY b
                """,
                [.int(Int64(intervalNano)), .int(Int64(bitPattern: from)), .int(Int64(bitPattern: to))]
            )
        }
        var buckets = (first...last).map { TimeBucket(startUnixNano: $0 * intervalNano) }
        for row in rows {
            guard let b = row["b"].int, UInt64(b) >= first, UInt64(b) <= last else { continue }
            let i = Int(UInt64(b) - first)
            buckets[i].traces = Int(row["traces"].int ?? 0)
            buckets[i].errorTraces = Int(row["errors"].int ?? 0)
            buckets[i].totalCost = row["cost"].double ?? 0
        }
        return buckets
    }
}
