import Instrumentation
import Synchronization
import Tracing
// Only the id types: TracefoldModel's Span, SpanKind, … would shadow Tracing's.
import struct TracefoldModel.SpanID
import struct TracefoldModel.TraceID

/// The ids of a span, as carried in an `InstrumentationContext`: what a
/// child started anywhere (our `observe`, Hummingbird's tracing middleware,
/// AsyncHTTPClient) reads to find its trace and parent.
public struct TracefoldSpanContext: Sendable, Hashable {
    public var traceID: TraceID
    public var spanID: SpanID
    /// True for a parent that came from elsewhere (a `traceparent` header):
    /// it is not exported from this process, so its child is an app root.
    public var isRemote: Bool
}

enum SpanContextKey: InstrumentationContextKey {
    typealias Value = TracefoldSpanContext
    static var nameOverride: String? { "tracefold.span" }
}

extension InstrumentationContext {
    /// The current span's ids when the tracer is a `TracefoldTracer`.
    public var tracefoldSpan: TracefoldSpanContext? {
        get { self[SpanContextKey.self] }
        set { self[SpanContextKey.self] = newValue }
    }
}

/// A swift-distributed-tracing `Tracer` that exports to tracefold (or any
/// OTLP/HTTP endpoint). Bootstrapped with `InstrumentationSystem`, it is the
/// tracer of every instrumented library in the process, so their spans nest
/// under observations; and like Langfuse's span processor it stamps the
/// propagated trace attributes on every span that starts in their scope.
public final class TracefoldTracer: Tracer, Sendable {
    public typealias Span = TracefoldSpan

    let exporter: any SpanExporting
    /// `langfuse.environment` / `langfuse.release`, written on every span as
    /// the Python SDK does.
    let commonAttributes: [(String, SpanAttribute)]
    private let active = Mutex<[SpanID: TracefoldSpan]>([:])

    init(exporter: any SpanExporting, commonAttributes: [(String, SpanAttribute)] = []) {
        self.exporter = exporter
        self.commonAttributes = commonAttributes
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> TracefoldSpan {
        var context = context()
        let parent = context.tracefoldSpan
        var random = SystemRandomNumberGenerator()
        // All-zero ids are invalid in OTLP.
        var traceID = parent?.traceID ?? TraceID(high: random.next(), low: random.next())
        if traceID.isZero { traceID.low = 1 }
        var spanID = SpanID(random.next())
        if spanID.isZero { spanID.value = 1 }
        let own = TracefoldSpanContext(traceID: traceID, spanID: spanID, isRemote: false)
        context.tracefoldSpan = own
        let span = TracefoldSpan(
            name: operationName, kind: kind, context: context, ids: own, parentID: parent?.spanID,
            parentIsRemote: parent?.isRemote ?? false, start: instant().nanosecondsSinceEpoch, tracer: self
        )
        span.updateAttributes { attributes in
            for (key, value) in commonAttributes { attributes[key] = value }
            PropagatedAttributes.current(in: context)?.apply(to: &attributes)
        }
        active.withLock { $0[spanID] = span }
        return span
    }

    public func activeSpan(identifiedBy context: InstrumentationContext) -> TracefoldSpan? {
        guard let ids = context.tracefoldSpan else { return nil }
        return active.withLock { $0[ids.spanID] }
    }

    func ended(_ span: TracefoldSpan, record: FinishedSpan) {
        active.withLock { _ = $0.removeValue(forKey: span.ids.spanID) }
        exporter.export(record)
    }

    public func forceFlush() {
        let exporter = self.exporter
        Task { await exporter.flush() }
    }

    /// W3C `traceparent`, so that an outgoing AsyncHTTPClient request
    /// carries the observation as its parent.
    public func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let ids = context.tracefoldSpan else { return }
        injector.inject("00-\(ids.traceID.hex)-\(ids.spanID.hex)-01", forKey: "traceparent", into: &carrier)
    }

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = header.split(separator: "-")
        guard parts.count == 4, parts[0] == "00", let traceID = TraceID(hex: parts[1]), let spanID = SpanID(hex: parts[2]), !traceID.isZero,
            !spanID.isZero
        else { return }
        context.tracefoldSpan = TracefoldSpanContext(traceID: traceID, spanID: spanID, isRemote: true)
    }
}

/// What a span is once it has ended: handed to the exporter, never mutated.
struct FinishedSpan: Sendable {
    var name: String
    var kind: SpanKind
    var traceID: TraceID
    var spanID: SpanID
    var parentID: SpanID?
    var start: UInt64
    var end: UInt64
    var attributes: SpanAttributes
    var events: [SpanEvent]
    var links: [TracefoldSpanContext]
    var status: SpanStatus?
}

/// A span of `TracefoldTracer`. Its state is behind a lock because the
/// handle may be updated from any task; once ended it ignores updates, as
/// OTel spans do.
public final class TracefoldSpan: Tracing.Span, Sendable {
    public let context: InstrumentationContext
    let ids: TracefoldSpanContext
    private let tracer: TracefoldTracer
    private let state: Mutex<State>

    struct State {
        var record: FinishedSpan
        var ended = false
    }

    init(
        name: String, kind: SpanKind, context: InstrumentationContext, ids: TracefoldSpanContext, parentID: SpanID?, parentIsRemote: Bool,
        start: UInt64, tracer: TracefoldTracer
    ) {
        self.context = context
        self.ids = ids
        self.tracer = tracer
        var attributes = SpanAttributes()
        // Langfuse marks the first exported span of a process-local tree.
        if parentID == nil || parentIsRemote { attributes["langfuse.internal.is_app_root"] = true }
        state = Mutex(
            State(
                record: FinishedSpan(
                    name: name, kind: kind, traceID: ids.traceID, spanID: ids.spanID, parentID: parentID, start: start, end: start,
                    attributes: attributes, events: [], links: [], status: nil
                )
            )
        )
    }

    public var operationName: String {
        get { state.withLock { $0.record.name } }
        set { state.withLock { if !$0.ended { $0.record.name = newValue } } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.record.attributes } }
        set { state.withLock { if !$0.ended { $0.record.attributes = newValue } } }
    }

    /// Read-modify-write under one lock, so concurrent updates of different
    /// keys both survive (the protocol's default reads and writes apart).
    public func updateAttributes(_ update: (inout SpanAttributes) -> Void) {
        state.withLock { if !$0.ended { update(&$0.record.attributes) } }
    }

    public var isRecording: Bool { state.withLock { !$0.ended } }

    public func setStatus(_ status: SpanStatus) {
        state.withLock { if !$0.ended { $0.record.status = status } }
    }

    public func addEvent(_ event: SpanEvent) {
        state.withLock { if !$0.ended { $0.record.events.append(event) } }
    }

    public func recordError<Instant: TracerInstant>(_ error: Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        var eventAttributes = attributes
        eventAttributes["exception.type"] = "\(type(of: error))"
        eventAttributes["exception.message"] = "\(error)"
        addEvent(SpanEvent(name: "exception", at: instant(), attributes: eventAttributes))
    }

    public func addLink(_ link: SpanLink) {
        guard let other = link.context.tracefoldSpan else { return }
        state.withLock { if !$0.ended { $0.record.links.append(other) } }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let finished: FinishedSpan? = state.withLock {
            guard !$0.ended else { return nil }
            $0.ended = true
            $0.record.end = max($0.record.start, instant().nanosecondsSinceEpoch)
            return $0.record
        }
        if let finished { tracer.ended(self, record: finished) }
    }
}
