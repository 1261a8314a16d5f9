import Foundation
import TracefoldMapping
import TracefoldFold
import TracefoldModel
import TracefoldStore

/// One score of a `POST /api/public/scores` batch or a `score-create`
/// event, checked as Langfuse checks it and with its defaults filled in
/// (SPEC §7.9). Every problem is reported with the field it is about.
enum ScoreInput {
    static let dataTypes = ["NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT"]
    static let sources = ["API", "ANNOTATION"]
    /// Ids and names are bounded so one score cannot be most of a batch.
    static let maxIDBytes = 256
    static let maxNameBytes = 1_000
    /// Langfuse: text scores hold 1–500 characters.
    static let maxTextCharacters = 500

    struct Invalid: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    /// `newID` makes the id of a score that brings none; `receivedAt` is
    /// its timestamp when it has none.
    static func parse(_ value: JSONValue, receivedAt: UInt64, newID: () -> String) throws(Invalid) -> ScoreWrite {
        guard case .object(let o) = value else { throw Invalid("a score must be a JSON object") }
        func string(_ key: String, max: Int = maxIDBytes) throws(Invalid) -> String? {
            guard let v = o[key], v != .null else { return nil }
            guard let s = v.stringValue else { throw Invalid("\(key) must be a string") }
            guard !s.isEmpty else { throw Invalid("\(key) must not be empty") }
            guard s.utf8.count <= max else { throw Invalid("\(key) must be at most \(max) bytes") }
            guard !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw Invalid("\(key) must not contain control characters")
            }
            return s
        }
        let id = try string("id") ?? newID()
        guard let name = try string("name", max: maxNameBytes) else { throw Invalid("name is required") }

        // Exactly one subject; an observation is scoped to its trace.
        var traceID = try string("traceId")
        var observationID = try string("observationId")
        let sessionID = try string("sessionId")
        let datasetRunID = try string("datasetRunId")
        let subjects = [traceID, sessionID, datasetRunID].compactMap { $0 }.count
        guard subjects == 1 else {
            throw Invalid(subjects == 0
                ? "a score needs a subject: traceId (with observationId for an observation), sessionId or datasetRunId"
                : "a score has exactly one subject: traceId, sessionId or datasetRunId, not several")
        }
        if observationID != nil && traceID == nil { throw Invalid("observationId needs the traceId of its trace") }
        // Our ids are hex; the same id in capitals is the same trace.
        if let t = traceID, let parsed = TraceID(hex: t) { traceID = parsed.hex }
        if let s = observationID, let parsed = SpanID(hex: s) { observationID = parsed.hex }

        let dataType = try dataType(o)
        var number: Double?
        var text: String?
        let raw = o["value"] ?? .null
        switch dataType {
        case "NUMERIC":
            guard let n = raw.numberValue, n.isFinite else { throw Invalid("value must be a finite number for a NUMERIC score, got \(describe(raw))") }
            number = n
        case "BOOLEAN":
            switch raw {
            case .bool(let b): number = b ? 1 : 0
            case _ where raw.numberValue == 0 || raw.numberValue == 1: number = raw.numberValue
            default: throw Invalid("value must be 0, 1, true or false for a BOOLEAN score, got \(describe(raw))")
            }
            text = number == 1 ? "True" : "False"
        case "CATEGORICAL":
            guard let s = raw.stringValue, !s.isEmpty else { throw Invalid("value must be a non-empty string for a CATEGORICAL score, got \(describe(raw))") }
            text = s
        default:  // TEXT
            guard let s = raw.stringValue, (1...maxTextCharacters).contains(s.count) else {
                throw Invalid("value must be a string of 1 to \(maxTextCharacters) characters for a TEXT score, got \(describe(raw))")
            }
            text = s
        }

        let source = try string("source")?.uppercased() ?? "API"
        guard sources.contains(source) else { throw Invalid("source must be API or ANNOTATION, got \"\(source)\"") }
        let environment = try string("environment") ?? "default"
        guard isEnvironment(environment) else {
            throw Invalid("environment must be 1 to 40 lowercase letters, digits, '-' or '_', not starting with \"langfuse\", got \"\(environment)\"")
        }
        var metadata: JSONValue?
        switch o["metadata"] {
        case nil, .null?: metadata = nil
        case .object?: metadata = o["metadata"]
        default: throw Invalid("metadata must be a JSON object")
        }
        let comment: String?
        switch o["comment"] {
        case nil, .null?: comment = nil
        case .string(let c)?: comment = c
        default: throw Invalid("comment must be a string")
        }
        var timestamp = receivedAt
        if let t = o["timestamp"], t != .null {
            guard let s = t.stringValue, let parsed = ISOTime.parse(s) else { throw Invalid("timestamp must be an ISO 8601 date-time, got \(describe(t))") }
            timestamp = parsed
        }
        return ScoreWrite(
            id: id, traceID: traceID, observationID: observationID, sessionID: sessionID, datasetRunID: datasetRunID, name: name,
            dataType: dataType, value: number, stringValue: text, source: source, environment: environment, comment: comment,
            metadata: metadata, configID: try string("configId"), queueID: try string("queueId"), timestampUnixNano: timestamp
        )
    }

    /// The given type, or the one Langfuse infers from the value: a number
    /// is NUMERIC, a string CATEGORICAL, and a JSON boolean BOOLEAN.
    static func dataType(_ o: [String: JSONValue]) throws(Invalid) -> String {
        if let given = o["dataType"], given != .null {
            guard let t = given.stringValue?.uppercased(), dataTypes.contains(t) else {
                throw Invalid("dataType must be one of \(dataTypes.joined(separator: ", ")), got \(describe(given))")
            }
            return t
        }
        switch o["value"] {
        case .string?: return "CATEGORICAL"
        case .bool?: return "BOOLEAN"
        case nil, .null?: throw Invalid("value is required")
        default: return "NUMERIC"
        }
    }

    /// Langfuse's rule for environments.
    static func isEnvironment(_ s: String) -> Bool {
        s.utf8.count <= 40 && !s.hasPrefix("langfuse")
            && s.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2D || $0 == 0x5F }
    }

    static func describe(_ v: JSONValue) -> String {
        let text = JSONWriter.serialize(v)
        return text.count > 40 ? String(text.prefix(40)) + "…" : text
    }
}
