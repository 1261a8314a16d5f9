import Tracing
import struct TracefoldModel.SpanID

/// Inngest's `step.metadata(id)`: typed metadata updates with a kind and a
/// scope, carried to the collector as `tracefold.metadata` span events on
/// the current observation (SPEC §4.2). The collector merges them per
/// (target, kind) and lists them as metadata entries.
///
///     metadata("plan").update(["tier": "pro"], kind: "billing")        // this observation
///     metadata("run").trace().update(["region": "eu"])                  // the whole trace
///     metadata("cache").span(retrieval.id!).update(["hit": true])      // extended_trace
///     metadata("costs").do { batch in                                   // one batch
///         batch.update(["usd": 0.02], kind: "billing")
///         batch.update(["tokens": 812], kind: "usage")
///     }
///
/// The address is chosen at most once, and the types enforce it: `.trace()`,
/// `.observation()` and `.span(_:)` exist only on a builder that has no
/// address yet and return one that has, so `metadata("x").trace().span(id)`
/// or `.trace().trace()` does not compile ("referencing instance method
/// 'span' on 'MetadataBuilder' requires the types 'Addressed' and
/// 'Unaddressed' be equivalent"); scripts/typecheck-misuse.sh checks it.
public func metadata(_ id: String) -> MetadataBuilder<Unaddressed> { MetadataBuilder(id: id, target: .observation) }

/// The builder states. They have no values; they only select which methods
/// a builder has.
public enum Unaddressed {}
public enum Addressed {}

public struct MetadataBuilder<State>: Sendable {
    /// The memoisation id the update was made under; sent as
    /// `tracefold.metadata.id` so that it can be told apart in the raw span.
    public let id: String
    let target: Target

    enum Target: Sendable, Equatable {
        case trace, observation
        case span(String)
    }

    /// Merges `values` into this target's `kind` (default `default`, stored
    /// as `userland.default`). A `nil` value is sent as JSON null.
    public func update(_ values: [String: MetadataValue], kind: String = "default") {
        emit([MetadataUpdate(values: .sortedObject(values), kind: kind)])
    }

    /// The same with an `Encodable` value, which must encode to an object.
    public func update<T: Encodable>(encoding values: T, kind: String = "default") {
        do {
            let value = try MetadataValue(encoding: values)
            guard case .object = value else {
                tracingLogger.warning("metadata(\(id)): values must encode to an object, not \(value); the update is dropped")
                return
            }
            emit([MetadataUpdate(values: value, kind: kind)])
        } catch {
            tracingLogger.warning("metadata(\(id)): values could not be encoded (\(error)); the update is dropped")
        }
    }

    /// Several updates made together: they reach the span as one batch of
    /// events with one timestamp, in the order made, and none is sent if
    /// `body` throws.
    public func `do`(_ body: (inout MetadataBatch) throws -> Void) rethrows {
        var batch = MetadataBatch()
        try body(&batch)
        emit(batch.updates)
    }

    private func emit(_ updates: [MetadataUpdate]) {
        guard !updates.isEmpty else { return }
        guard let observation = currentObservation() else {
            tracingLogger.warning("metadata(\(id)): no current observation to carry the update; it is dropped")
            return
        }
        var extendedSpan: SpanID?
        if case .span(let text) = target {
            guard let spanID = SpanID(hex: text), !spanID.isZero else {
                tracingLogger.warning("metadata(\(id)): span id \(text) is not 16 hex digits; the update is dropped")
                return
            }
            extendedSpan = spanID
        }
        let now = DefaultTracerClock.now
        for update in updates {
            var attributes: SpanAttributes = [
                "tracefold.metadata.id": .string(id),
                "tracefold.metadata.kind": .string(update.kind.isEmpty ? "default" : update.kind),
                "tracefold.metadata.values": .string(PythonJSON.string(update.values, style: .metadata)),
            ]
            switch target {
            case .trace: attributes["tracefold.metadata.scope"] = "trace"
            case .observation: attributes["tracefold.metadata.scope"] = "observation"
            case .span: attributes["tracefold.metadata.scope"] = "extended_trace"
            }
            if let extendedSpan { attributes["tracefold.metadata.span_id"] = extendedSpan.hex }
            observation.span.addEvent(SpanEvent(name: "tracefold.metadata", at: now, attributes: attributes))
        }
    }

}

extension MetadataBuilder where State == Unaddressed {
    /// Inngest's `run` scope: the trace this observation belongs to.
    public func trace() -> MetadataBuilder<Addressed> { MetadataBuilder<Addressed>(id: id, target: .trace) }
    /// Inngest's `step` scope: the current observation (also the default).
    public func observation() -> MetadataBuilder<Addressed> { MetadataBuilder<Addressed>(id: id, target: .observation) }
    /// `extended_trace`: the span with this id, which may be elsewhere and
    /// may arrive before or after this update.
    public func span(_ spanID: String) -> MetadataBuilder<Addressed> { MetadataBuilder<Addressed>(id: id, target: .span(spanID)) }
}

/// The updates of one `.do { }` block.
public struct MetadataBatch: Sendable {
    var updates: [MetadataUpdate] = []

    public mutating func update(_ values: [String: MetadataValue], kind: String = "default") {
        updates.append(.init(values: .sortedObject(values), kind: kind))
    }

    public mutating func update<T: Encodable>(encoding values: T, kind: String = "default") throws {
        let value = try MetadataValue(encoding: values)
        guard case .object = value else { throw MetadataBatchError.notAnObject }
        updates.append(.init(values: value, kind: kind))
    }
}

public enum MetadataBatchError: Error, CustomStringConvertible {
    case notAnObject
    public var description: String { "metadata values must encode to a JSON object" }
}

struct MetadataUpdate: Sendable {
    var values: MetadataValue
    var kind: String
}

extension MetadataValue {
    /// A Swift dictionary has no order; sorted keys make the JSON a run
    /// sends the same every time.
    static func sortedObject(_ values: [String: MetadataValue]) -> MetadataValue {
        .object(values.sorted { $0.key < $1.key }.map { Field($0.key, $0.value) })
    }
}
