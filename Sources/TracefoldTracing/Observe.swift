import Foundation
import Instrumentation
import Logging
import Tracing

// Langfuse's decorator API as functions. Each observation is a span of the
// process's tracer (`InstrumentationSystem.tracer`, or `withTracer`'s), made
// current in the task-local context for its body, so that child tasks, task
// groups and other instrumented libraries nest under it.

let tracingLogger = Logger(label: "tracefold.tracing")

/// Runs `body` as an observation named `name`. An `Encodable` result is
/// recorded as the output (pass `captureOutput: false` to keep it out); a
/// thrown error makes the observation level ERROR with the error as its
/// status message, and is rethrown.
@discardableResult
@_disfavoredOverload
public func observe<T>(
    _ name: String, as type: ObservationType = .span, input: MetadataValue? = nil, isolation: isolated (any Actor)? = #isolation,
    _ body: (Observation) async throws -> T
) async rethrows -> T {
    try await observing(name, type: type, input: input, record: { _, _ in }, body)
}

@discardableResult
public func observe<T: Encodable>(
    _ name: String, as type: ObservationType = .span, input: MetadataValue? = nil, captureOutput: Bool = true,
    isolation: isolated (any Actor)? = #isolation, _ body: (Observation) async throws -> T
) async rethrows -> T {
    try await observing(name, type: type, input: input, record: { if captureOutput { recordOutput($1, on: $0) } }, body)
}

@discardableResult
@_disfavoredOverload
public func observe<T>(_ name: String, as type: ObservationType = .span, input: MetadataValue? = nil, _ body: (Observation) throws -> T) rethrows -> T {
    try observingSync(name, type: type, input: input, record: { _, _ in }, body)
}

@discardableResult
public func observe<T: Encodable>(
    _ name: String, as type: ObservationType = .span, input: MetadataValue? = nil, captureOutput: Bool = true, _ body: (Observation) throws -> T
) rethrows -> T {
    try observingSync(name, type: type, input: input, record: { if captureOutput { recordOutput($1, on: $0) } }, body)
}

/// Starts the span and the context its body runs in: the parent is the
/// current context's span, and the propagated trace attributes are written
/// on it as on every span started in their scope.
private func begin(
    _ name: String, type: ObservationType, input: MetadataValue?, at instant: DefaultTracerClock.Instant = DefaultTracerClock.now
) -> (Observation, InstrumentationContext) {
    let parent = InstrumentationContext.current ?? .topLevel
    let span = InstrumentationSystem.tracer.startSpan(name, context: parent, ofKind: .internal, at: instant)
    let propagated = PropagatedAttributes.current(in: parent)
    // TracefoldTracer stamps them on every span it starts; another tracer
    // (swift-otel, say) does not know them.
    if !(span is TracefoldSpan), let propagated { span.updateAttributes { propagated.apply(to: &$0) } }
    let observation = Observation(span: span)
    observation.start(type: type, input: input)
    var context = span.context
    context[ObservationKey.self] = observation
    // A tracer whose span context lacks the propagated scope still passes it on.
    if let propagated { context[PropagatedAttributesKey.self] = propagated }
    return (observation, context)
}

private func observing<T>(
    _ name: String, type: ObservationType, input: MetadataValue?, isolation: isolated (any Actor)? = #isolation,
    record: (Observation, T) -> Void, _ body: (Observation) async throws -> T
) async rethrows -> T {
    let (observation, context) = begin(name, type: type, input: input)
    defer { observation.span.end() }
    do {
        let result = try await InstrumentationContext.withValue(context) { try await body(observation) }
        record(observation, result)
        return result
    } catch {
        observation.fail(error)
        throw error
    }
}

private func observingSync<T>(
    _ name: String, type: ObservationType, input: MetadataValue?, record: (Observation, T) -> Void, _ body: (Observation) throws -> T
) rethrows -> T {
    let (observation, context) = begin(name, type: type, input: input)
    defer { observation.span.end() }
    do {
        let result = try InstrumentationContext.withValue(context) { try body(observation) }
        record(observation, result)
        return result
    } catch {
        observation.fail(error)
        throw error
    }
}

private func recordOutput<T: Encodable>(_ result: T, on observation: Observation) {
    do {
        observation.update(output: try MetadataValue(encoding: result))
    } catch {
        tracingLogger.warning("observe: the output of \(observation.span.operationName) could not be encoded: \(error)")
    }
}

/// `create_event(...)`: a zero-duration observation of type `event`, a child
/// of the current one.
public func event(_ name: String, input: MetadataValue? = nil, output: MetadataValue? = nil, metadata: MetadataValue? = nil, level: ObservationLevel? = nil) {
    let now = DefaultTracerClock.now
    let (observation, _) = begin(name, type: .event, input: input, at: now)
    observation.update(output: output, metadata: metadata, level: level)
    observation.span.end(at: now)
}

/// `update_current_span(...)` on the current observation; nothing when
/// there is none.
public func updateCurrentObservation(
    input: MetadataValue? = nil, output: MetadataValue? = nil, metadata: MetadataValue? = nil, level: ObservationLevel? = nil,
    statusMessage: String? = nil, version: String? = nil
) {
    currentObservation()?.update(input: input, output: output, metadata: metadata, level: level, statusMessage: statusMessage, version: version)
}

/// `update_current_generation(...)`.
public func updateCurrentGeneration(
    model: String? = nil, modelParameters: MetadataValue? = nil, usageDetails: [String: Int]? = nil, costDetails: [String: Double]? = nil,
    completionStartTime: Date? = nil
) {
    currentObservation()?.updateGeneration(
        model: model, modelParameters: modelParameters, usageDetails: usageDetails, costDetails: costDetails, completionStartTime: completionStartTime
    )
}

/// v3's `update_current_trace(...)`: the current span only.
public func updateCurrentTrace(
    name: String? = nil, userId: String? = nil, sessionId: String? = nil, version: String? = nil, tags: [String]? = nil,
    metadata: MetadataValue? = nil, input: MetadataValue? = nil, output: MetadataValue? = nil, public isPublic: Bool? = nil
) {
    currentObservation()?.updateTrace(
        name: name, userId: userId, sessionId: sessionId, version: version, tags: tags, metadata: metadata, input: input, output: output,
        public: isPublic
    )
}

/// `set_current_trace_as_public()`.
public func setCurrentTraceAsPublic() { currentObservation()?.setTraceAsPublic() }

/// `propagate_attributes(...)`: the trace-level keys go on the current span
/// now and on every span started inside `body`, by any library. Nested
/// scopes union their tags and merge their metadata; an inner value
/// replaces an outer one. Values over 200 characters are dropped with a
/// warning, as v5 drops them.
public func propagateAttributes<T>(
    userId: String? = nil, sessionId: String? = nil, tags: [String]? = nil, traceName: String? = nil, version: String? = nil,
    metadata: [String: MetadataValue]? = nil, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
) async rethrows -> T {
    let context = propagating(userId: userId, sessionId: sessionId, tags: tags, traceName: traceName, version: version, metadata: metadata)
    return try await InstrumentationContext.withValue(context) { try await body() }
}

public func propagateAttributes<T>(
    userId: String? = nil, sessionId: String? = nil, tags: [String]? = nil, traceName: String? = nil, version: String? = nil,
    metadata: [String: MetadataValue]? = nil, _ body: () throws -> T
) rethrows -> T {
    let context = propagating(userId: userId, sessionId: sessionId, tags: tags, traceName: traceName, version: version, metadata: metadata)
    return try InstrumentationContext.withValue(context) { try body() }
}

private func propagating(
    userId: String?, sessionId: String?, tags: [String]?, traceName: String?, version: String?, metadata: [String: MetadataValue]?
) -> InstrumentationContext {
    var context = InstrumentationContext.current ?? .topLevel
    let merged = (PropagatedAttributes.current(in: context) ?? PropagatedAttributes()).merging(
        userId: userId, sessionId: sessionId, tags: tags, traceName: traceName, version: version, metadata: metadata, logger: tracingLogger
    )
    context[PropagatedAttributesKey.self] = merged
    currentObservation()?.span.updateAttributes { merged.apply(to: &$0) }
    return context
}

/// The pieces of `@Observed`'s input, `{"args": [...], "kwargs": {...}}`.
/// `value` has an overload per capability, so an argument that is not
/// `Encodable` is left out at compile time rather than failing at run time.
public enum ObservedInput {
    public static func value<T: Encodable>(_ value: T) -> MetadataValue? { try? MetadataValue(encoding: value) }
    @_disfavoredOverload
    public static func value<T>(_ value: T) -> MetadataValue? { nil }

    public static func arguments(_ args: [MetadataValue?], _ kwargs: KeyValuePairs<String, MetadataValue?>) -> MetadataValue {
        .object([
            .init("args", .array(args.compactMap { $0 })),
            .init("kwargs", .object(kwargs.compactMap { pair in pair.value.map { MetadataValue.Field(pair.key, $0) } })),
        ])
    }
}

/// @Observed wraps a function's body in an observation named after the
/// function: `Encodable` arguments become the input, an `Encodable` result
/// the output, a thrown error level ERROR. Works on `async throws` functions.
@attached(body)
public macro Observed(_ name: String? = nil, as type: ObservationType = .span) =
    #externalMacro(module: "TracefoldTracingMacros", type: "ObservedMacro")
