import Foundation
import Prometheus
import Synchronization

/// The collector's own metrics (SPEC §9.3), in Prometheus text through
/// swift-prometheus. One instance per collector, handed to each stage that
/// counts something; no global registry, so tests can run collectors side by
/// side and read each one's numbers.
public final class CollectorMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public let exportedRecords: Counter
    public let exportedBytes: Counter
    /// How long one fold transaction (the store commit of a batch) takes.
    public let storeCommit: DurationHistogram
    let residentMemory: Gauge
    /// Gauges whose value lives in another stage and is read at scrape time.
    private let sampled = Mutex<[(gauge: Gauge, read: @Sendable () -> Int)]>([])

    public init() {
        exportedRecords = registry.makeCounter(name: "tracefold_exporter_records_total", labels: [("exporter", "jsonl")], help: "Record revisions written as JSON lines.")
        exportedBytes = registry.makeCounter(name: "tracefold_exporter_bytes_total", labels: [("exporter", "jsonl")], help: "Bytes of JSON lines written.")
        storeCommit = registry.makeDurationHistogram(
            name: "tracefold_store_commit_duration_seconds",
            buckets: [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                      .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)],
            help: "Time to fold and commit one batch to the store."
        )
        residentMemory = registry.makeGauge(name: "tracefold_process_resident_memory_bytes", help: "Resident set size of the process.")
    }

    /// One OTLP receiver's counters, labelled with its transport (`http` or
    /// `grpc`), as the Collector's `otelcol_receiver_*{transport}` are.
    public struct Receiver: Sendable {
        let metrics: CollectorMetrics
        let transport: String
        /// Spans in requests that were made durable and acknowledged.
        public let acceptedSpans: Counter
        /// Invalid spans rejected one by one (`partial_success.rejected_spans`).
        public let rejectedSpans: Counter
        /// Valid spans in requests the collector could not take (503/429,
        /// UNAVAILABLE/RESOURCE_EXHAUSTED).
        public let refusedSpans: Counter

        /// Counts one Export answer: an HTTP status (`200`) or a gRPC
        /// status name (`OK`, `UNAVAILABLE`).
        public func request(code: String) {
            metrics.registry.makeCounter(
                name: "tracefold_receiver_requests_total", labels: [("transport", transport), ("code", code)],
                help: "OTLP export requests by transport and answer."
            ).increment()
        }
    }

    public func receiver(transport: String) -> Receiver {
        let labels = [("transport", transport)]
        return Receiver(
            metrics: self, transport: transport,
            acceptedSpans: registry.makeCounter(name: "tracefold_receiver_accepted_spans_total", labels: labels, help: "Spans made durable and acknowledged."),
            rejectedSpans: registry.makeCounter(name: "tracefold_receiver_rejected_spans_total", labels: labels, help: "Invalid spans rejected in partial_success."),
            refusedSpans: registry.makeCounter(
                name: "tracefold_receiver_refused_spans_total", labels: labels, help: "Valid spans refused for overload, a rate limit or a storage failure."
            )
        )
    }

    /// Counts one HTTP answer by handler and status code.
    public func request(handler: String, code: Int) {
        registry.makeCounter(
            name: "tracefold_http_requests_total", labels: [("handler", handler), ("code", String(code))], help: "HTTP requests by handler and status code."
        ).increment()
    }

    /// A request turned away before its spans were taken: `memory_limiter`,
    /// `queue_full`, `in_flight_bytes`, `storage`, `shutdown` (503) or
    /// `rate_limit` (429).
    public func refusedRequest(reason: String) {
        registry.makeCounter(
            name: "tracefold_receiver_refused_requests_total", labels: [("reason", reason)], help: "Requests refused with 503 or 429, by reason."
        ).increment()
    }

    /// A request that found the pipeline queue full: `admitted` once the
    /// fold made room within `store.max_pending_wait`, `refused` when it got
    /// the 503 (also counted in `tracefold_receiver_refused_requests_total`).
    public func queueFullRequest(admitted: Bool) {
        registry.makeCounter(
            name: "tracefold_receiver_queue_full_requests_total", labels: [("outcome", admitted ? "admitted" : "refused")],
            help: "Requests that found the pipeline queue full, by outcome: admitted after waiting for room, or refused."
        ).increment()
    }

    /// Why a metadata update was dropped: `update_too_large`,
    /// `trace_limit`, `invalid_event` or `request_header`.
    public func droppedMetadata(reason: String, count: Int = 1) {
        guard count > 0 else { return }
        registry.makeCounter(
            name: "tracefold_metadata_updates_dropped_total", labels: [("reason", reason)], help: "Metadata updates dropped, by reason."
        ).increment(by: Int64(count))
    }

    /// A gauge read from `read` at each scrape, for a level another stage
    /// keeps (for example the request-body bytes being read).
    public func sampledGauge(name: String, help: String, read: @escaping @Sendable () -> Int) {
        let gauge = registry.makeGauge(name: name, help: help)
        sampled.withLock { $0.append((gauge, read)) }
    }

    /// A counter read from `read` at each scrape, for a count another stage
    /// keeps under its own lock (for example the export cache's): it goes
    /// up by what `read` gained since the last scrape.
    public func sampledCounter(name: String, labels: [(String, String)], help: String, read: @escaping @Sendable () -> Int) {
        let counter = registry.makeCounter(name: name, labels: labels, help: help)
        sampledCounters.withLock { $0.append((counter, read, 0)) }
    }

    private let sampledCounters = Mutex<[(counter: Counter, read: @Sendable () -> Int, last: Int)]>([])

    /// The Prometheus text exposition, with the RSS and the sampled gauges
    /// and counters read now.
    public func exposition() -> [UInt8] {
        if let rss = Self.residentBytes() { residentMemory.set(Double(rss)) }
        sampled.withLock { gauges in
            for entry in gauges { entry.gauge.set(Double(entry.read())) }
        }
        sampledCounters.withLock { counters in
            for index in counters.indices {
                let now = counters[index].read()
                if now > counters[index].last { counters[index].counter.increment(by: Int64(now - counters[index].last)) }
                counters[index].last = now
            }
        }
        return registry.emitToBuffer()
    }

    /// From /proc/self/statm: resident pages times the page size.
    public static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
