import TracefoldMapping
import TracefoldModel

/// An observation to store: its record in the stored form
/// (`ObservationRecord`, rendered as JSON when read), and the columns the
/// store indexes, taken from the observation itself rather than parsed back
/// out of the record.
public struct ObservationRow: Sendable {
    public var traceID: TraceID
    public var spanID: SpanID
    public var startUnixNano: UInt64
    public var record: [UInt8]
    public var type: String
    public var name: String
    public var level: String
    public var version: String?
    /// Stored as its hex text; kept as the id so that the text is made
    /// only where it is bound, not a String for every observation.
    public var parentID: SpanID?
    public var environment: String
    public var model: String?
    public var latency: Double
    public var inputTokens: Double?
    public var outputTokens: Double?
    public var totalTokens: Double?
    public var cost: Double?

    /// The record as JSON, as the query API and the exporter render it.
    public var json: [UInt8] { ObservationRecord.json(record) ?? [] }
}

/// A rendered trace: its record as JSON bytes and the indexed columns.
public struct TraceRow: Sendable {
    public var traceID: TraceID
    public var startUnixNano: UInt64
    public var json: [UInt8]
    public var name: String?
    public var userID: String?
    public var sessionID: String?
    public var version: String?
    public var release: String?
    public var environment: String
    /// Sorted, as in the record.
    public var tags: [String]
    public var isPublic: Bool
    public var latency: Double
    public var totalCost: Double
    /// The record's top-level metadata, for the `trace_metadata` index.
    public var metadata: [String: JSONText]

    /// The metadata key that holds the trace's user (SPEC §5.4).
    public static let userKey = "_user"
    /// The longest `userId`, in Unicode scalars, that `_user` copies.
    public static let maxUserScalars = 128

    /// Whether the metadata key and value are the `_user` that `userId`
    /// alone gives: `_user` is `userId` unless set otherwise, and
    /// `traces_by_user` indexes `userId` already, so the store keeps a
    /// `_user` row only where it says something else (`TraceFilter`
    /// reads the rest from `user_id`).
    /// Static, given the row's `userID`: a loop over a row's metadata that
    /// called a method on the row copied the whole row for each key.
    public static func isDerivedUser(_ key: String, _ value: JSONText, userID: String?) -> Bool {
        guard key == userKey, let userID, userID.unicodeScalars.count <= maxUserScalars else { return false }
        return value.stringValue == userID
    }
}
