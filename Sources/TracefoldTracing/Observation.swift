import Foundation
import Instrumentation
import Tracing

/// `langfuse.observation.type` (reference/langfuse.md §(a).4).
public enum ObservationType: String, Sendable, CaseIterable {
    case span, generation, event, agent, tool, chain, retriever, evaluator, guardrail, embedding
}

/// `langfuse.observation.level`.
public enum ObservationLevel: String, Sendable, CaseIterable {
    case debug = "DEBUG", `default` = "DEFAULT", warning = "WARNING", error = "ERROR"
}

/// The handle `observe` gives its body: Langfuse's span wrapper. Updates
/// write the same attributes as the Python SDK's `span.update(...)`, so the
/// fold treats a Swift observation exactly like a Python one. It works on
/// the span of any swift-distributed-tracing tracer; with `TracefoldTracer`
/// it also knows its ids.
public struct Observation: Sendable {
    public let span: any Tracing.Span

    public init(span: any Tracing.Span) { self.span = span }

    /// The span id, 16 hex digits: what `metadata(...).span(_:)` addresses.
    public var id: String? { span.context.tracefoldSpan?.spanID.hex }
    public var traceID: String? { span.context.tracefoldSpan?.traceID.hex }

    /// `span.update(...)`: metadata accumulates per top-level key (a later
    /// update of a key replaces it, the other keys stay); `nil` values are
    /// skipped. Level ERROR also sets the OTel status to ERROR.
    public func update(
        input: MetadataValue? = nil, output: MetadataValue? = nil, metadata: MetadataValue? = nil, level: ObservationLevel? = nil,
        statusMessage: String? = nil, version: String? = nil
    ) {
        span.updateAttributes { attributes in
            if let input { attributes.set("langfuse.observation.input", value: SpanAttribute(LangfuseAttributes.io(input))) }
            if let output { attributes.set("langfuse.observation.output", value: SpanAttribute(LangfuseAttributes.io(output))) }
            if let metadata { attributes.set(LangfuseAttributes.metadata(metadata, scope: .observation)) }
            if let version { attributes["langfuse.version"] = version }
            if let level {
                attributes.set(LangfuseAttributes.level(level.rawValue, statusMessage: statusMessage))
            } else if let statusMessage {
                attributes["langfuse.observation.status_message"] = statusMessage
            }
        }
        if level == .error { span.setStatus(SpanStatus(code: .error, message: statusMessage)) }
    }

    /// `update_current_generation(...)`'s model fields. Usage details are
    /// integers and cost details numbers, as the server expects them.
    public func updateGeneration(
        model: String? = nil, modelParameters: MetadataValue? = nil, usageDetails: [String: Int]? = nil, costDetails: [String: Double]? = nil,
        completionStartTime: Date? = nil
    ) {
        // Sorted, so that the JSON a run writes is the same every time.
        func object<V>(_ d: [String: V]?, _ wrap: (V) -> MetadataValue) -> MetadataValue? {
            d.map { .object($0.sorted { $0.key < $1.key }.map { MetadataValue.Field($0.key, wrap($0.value)) }) }
        }
        let written = LangfuseAttributes.generation(
            model: model, modelParameters: modelParameters, usageDetails: object(usageDetails) { .int(Int64($0)) },
            costDetails: object(costDetails) { .double($0) }, completionStartTime: completionStartTime
        )
        span.updateAttributes { $0.set(written) }
    }

    /// v3's `update_trace`: the trace-level keys on this span only, not
    /// propagated. Several calls from different spans each carry a part, and
    /// the fold merges them.
    public func updateTrace(
        name: String? = nil, userId: String? = nil, sessionId: String? = nil, version: String? = nil, tags: [String]? = nil,
        metadata: MetadataValue? = nil, input: MetadataValue? = nil, output: MetadataValue? = nil, public isPublic: Bool? = nil
    ) {
        let written = LangfuseAttributes.trace(userId: userId, sessionId: sessionId, tags: tags, traceName: name, version: version, metadata: metadata)
        span.updateAttributes { attributes in
            attributes.set(written)
            if let input { attributes.set("langfuse.trace.input", value: SpanAttribute(LangfuseAttributes.io(input))) }
            if let output { attributes.set("langfuse.trace.output", value: SpanAttribute(LangfuseAttributes.io(output))) }
            if let isPublic { attributes["langfuse.trace.public"] = isPublic }
        }
    }

    /// `span.set_trace_as_public()`: only this span carries the flag.
    public func setTraceAsPublic() { span.updateAttributes { $0["langfuse.trace.public"] = true } }

    func start(type: ObservationType, input: MetadataValue?) {
        span.updateAttributes { attributes in
            attributes["langfuse.observation.type"] = type.rawValue
            if let input { attributes.set("langfuse.observation.input", value: SpanAttribute(LangfuseAttributes.io(input))) }
        }
    }

    /// `@observe`'s exception path: level ERROR, `str(e)` (or the type name
    /// when that is empty) as the status message, OTel status ERROR.
    func fail(_ error: any Error) {
        var message = String(describing: error)
        if message.isEmpty { message = String(describing: type(of: error)) }
        update(level: .error, statusMessage: message)
    }
}

enum ObservationKey: InstrumentationContextKey {
    typealias Value = Observation
    static var nameOverride: String? { "tracefold.observation" }
}

/// The observation of the innermost `observe` (or the tracer's innermost
/// active span, when it knows it), like Langfuse's "current span".
public func currentObservation() -> Observation? {
    let context = InstrumentationContext.current ?? .topLevel
    if let span = InstrumentationSystem.tracer.activeSpan(identifiedBy: context) { return Observation(span: span) }
    return context[ObservationKey.self]
}
