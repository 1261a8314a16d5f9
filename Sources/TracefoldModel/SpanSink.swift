/// The stage after intake. The pipeline calls a sink from one thread, in the
/// order the intake log acknowledged the batches, so a sink needs no locking
/// of its own for `consume`/`sync`.
public protocol SpanSink: AnyObject, Sendable {
    /// The component id, for logs (`spans_jsonl`).
    var name: String { get }
    /// Runs on the request, before the batch is committed and acknowledged,
    /// concurrently with other requests and with `consume`: it may read only
    /// the sink's immutable configuration. It may leave its work in
    /// `batch.prepared` for `consume`, and returns what the sink will drop
    /// whatever else arrives (metadata updates over the per-update limit),
    /// for the request's `partial_success` (SPEC §4.6).
    func prepare(_ batch: inout SpanBatch) -> [String]
    /// Takes one batch. May buffer; a replayed batch must not be applied twice
    /// (SPEC §1.11), so a sink deduplicates by `SpanKey`. Returns what it had
    /// to drop (metadata updates over a limit); the request was answered
    /// before, with what `prepare` returned.
    func consume(_ batch: SpanBatch) throws -> [String]
    /// Makes everything consumed so far durable. Once every sink has synced,
    /// the intake log may forget those batches.
    func sync() throws
    /// Makes everything consumed so far readable, not durable: the
    /// pipeline calls it whenever its queue runs dry, and `sync` only once
    /// a sync interval.
    func flush() throws
    /// The last call, after a final `sync` at shutdown.
    func close() throws
}

/// A sink that takes the batches queued together in one call, all or
/// nothing, in log order: the fold writes a group in one store transaction.
/// The pipeline gives a group of at most `SpanPipeline.defaultMaxGroupSpans` spans
/// (one batch when a single batch is larger); other sinks get the batches
/// one by one.
public protocol GroupingSpanSink: SpanSink {
    /// What each batch had to drop, in the order given. When it throws,
    /// none of the batches was taken.
    func consume(group batches: [SpanBatch]) throws -> [[String]]
}

extension SpanSink {
    /// Most sinks have nothing to work out ahead.
    public func prepare(_ batch: inout SpanBatch) -> [String] { [] }
    /// Most sinks' data is readable once consumed (the store's commits
    /// are, before its checkpoint).
    public func flush() throws {}
}
