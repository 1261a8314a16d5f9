/// The stage after intake. The pipeline calls a sink from one thread, in the
/// order the intake log acknowledged the batches, so a sink needs no locking
/// of its own for `consume`/`sync`.
public protocol SpanSink: AnyObject, Sendable {
    /// The component id, for logs (`spans_jsonl`).
    var name: String { get }
    /// Takes one batch. May buffer; a replayed batch must not be applied twice
    /// (SPEC §1.11), so a sink deduplicates by `SpanKey`.
    func consume(_ batch: SpanBatch) throws
    /// Makes everything consumed so far durable. Once every sink has synced,
    /// the intake log may forget those batches.
    func sync() throws
    /// The last call, after a final `sync` at shutdown.
    func close() throws
}
