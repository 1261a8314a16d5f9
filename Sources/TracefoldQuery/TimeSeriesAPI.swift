import Foundation
import Hummingbird
import TracefoldMapping
import TracefoldModel
import TracefoldStore

/// `GET /api/metrics/timeseries`: traces per interval, those with an ERROR
/// observation, and their cost, every interval present; the dashboard's
/// traces-per-minute chart, and anyone's.
extension QueryAPI {
    /// More intervals than this in one answer is a 400: a wider window
    /// takes a longer interval.
    static let maxIntervals = 10_000

    func timeSeries(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        do {
            var seconds: UInt64 = 60
            if let text = q.one("interval") {
                guard let v = UInt64(text), (1...86_400).contains(v) else {
                    throw QueryError("interval must be a whole number of seconds from 1 to 86400, got \"\(text)\"")
                }
                seconds = v
            }
            let interval = seconds * 1_000_000_000
            // The hour up to now unless the window is given.
            let to = try q.time("to") ?? UInt64(Date().timeIntervalSince1970 * 1e9)
            let from = try q.time("from") ?? (to > 3_600_000_000_000 ? to - 3_600_000_000_000 : 0)
            guard from < to else { throw QueryError("from must be before to") }
            let count = (to - 1) / interval - from / interval + 1
            guard count <= UInt64(Self.maxIntervals) else {
                throw QueryError("from..to holds \(count) intervals of \(seconds) s, over the limit of \(Self.maxIntervals); take a longer interval")
            }
            let buckets = try store.timeSeries(fromUnixNano: from, toUnixNano: to, intervalNano: interval)
            let data: [JSONValue] = buckets.map { b in
                .object([
                    "timestamp": .string(ISOTime.format(unixNano: b.startUnixNano)), "traces": .int(Int64(b.traces)),
                    "errorTraces": .int(Int64(b.errorTraces)), "totalCost": .double(b.totalCost),
                ])
            }
            return Self.json(.ok, .object([
                "from": .string(ISOTime.format(unixNano: from)), "to": .string(ISOTime.format(unixNano: to)),
                "interval": .int(Int64(seconds)), "data": .array(data),
            ]))
        } catch let e as QueryError {
            return e.response
        }
    }
}
