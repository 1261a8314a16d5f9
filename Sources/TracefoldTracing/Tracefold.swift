import Instrumentation
import Tracing

/// The entry point: a tracer and its exporter, configured from the
/// environment like the Langfuse SDK's client.
///
///     let tracefold = Tracefold.bootstrap()          // InstrumentationSystem's tracer
///     try await observe("answer") { obs in … }
///     await tracefold.shutdown()                     // flushes first
///
/// `bootstrap` may run once per process (InstrumentationSystem's rule);
/// `Tracefold(configuration:)` plus `withTracer(tracefold.tracer) { … }`
/// scopes one to a task instead, as tests do.
public final class Tracefold: Sendable {
    public let tracer: TracefoldTracer
    public let configuration: TracingConfiguration
    private let exporter: any SpanExporting

    public init(configuration: TracingConfiguration = .fromEnvironment()) {
        self.configuration = configuration
        exporter = configuration.enabled ? OTLPHTTPSpanExporter(configuration: configuration) : DisabledExporter()
        var common = [(String, SpanAttribute)]()
        if let e = configuration.environment { common.append(("langfuse.environment", .string(e))) }
        if let r = configuration.release { common.append(("langfuse.release", .string(r))) }
        tracer = TracefoldTracer(exporter: exporter, commonAttributes: common)
    }

    /// Makes this the process's tracer, so every instrumented library's
    /// spans go through it.
    @discardableResult
    public static func bootstrap(_ configuration: TracingConfiguration = .fromEnvironment()) -> Tracefold {
        let tracefold = Tracefold(configuration: configuration)
        InstrumentationSystem.bootstrap(tracefold.tracer)
        return tracefold
    }

    /// Sends everything ended so far; returns when it was sent or dropped.
    public func flush() async { await exporter.flush() }

    /// Flushes, then stops the exporter. Spans that end later are dropped.
    public func shutdown() async { await exporter.shutdown() }

    /// Spans acknowledged by the collector and spans dropped so far.
    public var exportCounts: (exported: Int, dropped: Int) { (exporter as? OTLPHTTPSpanExporter)?.counts ?? (0, 0) }
}

/// `TRACEFOLD_TRACING_ENABLED=false`: observations still run their bodies,
/// nothing leaves the process.
struct DisabledExporter: SpanExporting {
    func export(_ span: FinishedSpan) {}
    func flush() async {}
    func shutdown() async {}
}
