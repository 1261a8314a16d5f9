import Foundation
import TracefoldModel

/// The span attributes the Langfuse v5 SDK writes for each call
/// (reference/langfuse.md §(a).4–§(a).6), so that a Swift app's spans fold
/// exactly like a Python app's. Each function is one SDK call's worth.
public enum LangfuseAttributes {
    public enum MetadataScope: String, Sendable {
        case trace = "langfuse.trace.metadata"
        case observation = "langfuse.observation.metadata"
    }

    /// One attribute per top-level key, each value JSON-encoded (strings
    /// too, so `"123"` stays distinct from `123`); a non-object goes to the
    /// bare key. Null-valued keys are skipped, so an update does not
    /// overwrite them.
    public static func metadata(_ value: MetadataValue, scope: MetadataScope) -> [Attribute] {
        guard case .object(let fields) = value else {
            return [Attribute(scope.rawValue, .string(PythonJSON.string(value, style: .metadata)))]
        }
        return fields.filter { $0.value != .null }.map {
            Attribute("\(scope.rawValue).\($0.key)", .string(PythonJSON.string($0.value, style: .metadata)))
        }
    }

    /// `langfuse.observation.input` / `.output`: a string verbatim, anything
    /// else as `json.dumps` writes it.
    public static func io(_ value: MetadataValue) -> AttributeValue {
        if case .string(let s) = value { return .string(s) }
        return .string(PythonJSON.string(value, style: .standard))
    }

    /// What `@observe` records as input: `{"args": [...], "kwargs": {...}}`.
    public static func observeInput(args: [MetadataValue], kwargs: [MetadataValue.Field] = []) -> AttributeValue {
        io(.object([.init("args", .array(args)), .init("kwargs", .object(kwargs))]))
    }

    /// The trace-level keys `propagate_attributes` writes on every span in
    /// its scope.
    public static func trace(
        userId: String? = nil, sessionId: String? = nil, tags: [String]? = nil, traceName: String? = nil, version: String? = nil,
        metadata: MetadataValue? = nil
    ) -> [Attribute] {
        var out = [Attribute]()
        if let userId { out.append(Attribute("user.id", .string(userId))) }
        if let sessionId { out.append(Attribute("session.id", .string(sessionId))) }
        if let tags { out.append(Attribute("langfuse.trace.tags", .array(tags.map(AttributeValue.string)))) }
        if let traceName { out.append(Attribute("langfuse.trace.name", .string(traceName))) }
        if let version { out.append(Attribute("langfuse.version", .string(version))) }
        if let metadata { out += Self.metadata(metadata, scope: .trace) }
        return out
    }

    public static func level(_ level: String, statusMessage: String?) -> [Attribute] {
        var out = [Attribute("langfuse.observation.level", .string(level))]
        if let statusMessage { out.append(Attribute("langfuse.observation.status_message", .string(statusMessage))) }
        return out
    }

    /// `update_current_generation`'s model fields.
    public static func generation(
        model: String? = nil, modelParameters: MetadataValue? = nil, usageDetails: MetadataValue? = nil, costDetails: MetadataValue? = nil,
        completionStartTime: Date? = nil
    ) -> [Attribute] {
        var out = [Attribute]()
        if let model { out.append(Attribute("langfuse.observation.model.name", .string(model))) }
        if let modelParameters { out.append(Attribute("langfuse.observation.model.parameters", io(modelParameters))) }
        if let usageDetails { out.append(Attribute("langfuse.observation.usage_details", io(usageDetails))) }
        if let costDetails { out.append(Attribute("langfuse.observation.cost_details", io(costDetails))) }
        if let completionStartTime {
            out.append(Attribute("langfuse.observation.completion_start_time", .string(PythonJSON.string(.string(isoTime(completionStartTime)), style: .standard))))
        }
        return out
    }

    public static func observationType(_ type: String) -> Attribute { Attribute("langfuse.observation.type", .string(type)) }
    public static let publicTrace = Attribute("langfuse.trace.public", .bool(true))

    /// Python's `isoformat()` of an aware UTC datetime with `+00:00` as `Z`:
    /// microseconds only when there are any.
    static func isoTime(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        var s = "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
        if fraction != 0 { s += "." + pad(Int(fraction), 6) }
        return s + "Z"
    }
}
