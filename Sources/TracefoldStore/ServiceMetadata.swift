import TracefoldFold
import TracefoldModel

/// A trace's `resourceAttributes` and `scope` metadata (SPEC §2.4, §3.5:
/// its root's resource and scope, or its earliest span's), stored once per distinct
/// pair in `service_metadata` and referred to from the trace row's
/// `service_metadata` column, instead of as two `trace_metadata` rows a
/// trace. Every trace of a service repeats the same pair: on the bench
/// load these two rows were two of a trace's eight metadata rows and 59 of
/// the 597 bytes a span the store file took (540 with this), and about 1%
/// of the CPU (in-process pairs). Filters and the summary's
/// grouping on the two keys read the pair through the reference
/// (`RecordStore.traces`, `summary`); the texts are what a `trace_metadata`
/// row holds (`SQLFoldTransaction.metadataText`).
///
/// A pair is looked up before it is inserted, in the commit's
/// transaction. Processes sharing a PostgreSQL store may each insert the
/// same pair: two ids for one pair filter and group the same, since both
/// read the texts.
enum ServiceMetadata {
    /// The metadata keys kept this way and their columns.
    static let columns: [(key: String, column: String)] = [("resourceAttributes", "resource_attributes"), ("scope", "scope")]

    static func column(of key: String) -> String? { columns.first { $0.key == key }?.column }

    /// The most pairs a filter names as values; past it, a subquery
    /// (bind parameters are bounded, PostgreSQL's at 65,535).
    static let mostNamedPairs = 1_000

    /// A trace's pair, as the columns hold it; nil when it has neither.
    struct Pair: Hashable {
        var resourceAttributes: String?
        var scope: String?
    }

    static func pair(_ metadata: [String: JSONText]) -> Pair? {
        let pair = Pair(
            resourceAttributes: metadata["resourceAttributes"].flatMap(SQLFoldTransaction.metadataText),
            scope: metadata["scope"].flatMap(SQLFoldTransaction.metadataText))
        return pair.resourceAttributes == nil && pair.scope == nil ? nil : pair
    }

    /// Each trace's reference: the pairs of a commit (most often one)
    /// looked up once each, and inserted when new.
    static func ids(_ traces: [TraceRow], in s: any SQLSession) throws -> [Int64?] {
        var known = [Pair: Int64]()
        return try traces.map { t in
            guard let pair = pair(t.metadata) else { return nil }
            if let id = known[pair] { return id }
            let args: [SQLValue] = [pair.resourceAttributes.map(SQLValue.text) ?? .null, pair.scope.map(SQLValue.text) ?? .null]
            let found = try s.dialect == .sqlite
                ? s.row("SELECT id FROM service_metadata WHERE resource_attributes IS ? AND scope IS ? LIMIT 1", args)
                : s.row(
                    """
                    SELECT id FROM service_metadata WHERE md5(coalesce(resource_attributes, '')) = md5(coalesce(CAST(? AS text), ''))
                      AND md5(coalesce(scope, '')) = md5(coalesce(CAST(? AS text), ''))
                      AND resource_attributes IS NOT DISTINCT FROM CAST(? AS text) AND scope IS NOT DISTINCT FROM CAST(? AS text) LIMIT 1
                    """, args + args)
            let id = try found?["id"].int
                ?? s.row("INSERT INTO service_metadata (resource_attributes, scope) VALUES (?, ?) RETURNING id", args)?["id"].int
            guard let id else { throw StoreError("service_metadata: no id for a new pair") }
            known[pair] = id
            return id
        }
    }

    /// SQL for the text of `key`'s value on the row `traces`; nil for
    /// a key kept in `trace_metadata`.
    static func value(of key: String, on traces: String) -> String? {
        column(of: key).map { "(SELECT s.\($0) FROM service_metadata s WHERE s.id = \(traces).service_metadata)" }
    }

    /// What a migration runs once: the pairs of the traces' rows of these
    /// keys made references, and the rows deleted.
    static func migration(_ d: SQLDialect) -> String {
        let join = d == .sqlite ? "m.epoch = t.epoch AND m.trace_id = t.trace_id" : "m.trace_id = t.trace_id"
        let keys = columns.map { "'\($0.key)'" }.joined(separator: ", ")
        func value(_ key: String) -> String { "(SELECT m.value FROM trace_metadata m WHERE \(join) AND m.key = '\(key)')" }
        let has = "EXISTS (SELECT 1 FROM trace_metadata m WHERE \(join) AND m.key IN (\(keys)))"
        return """
            INSERT INTO service_metadata (resource_attributes, scope)
              SELECT DISTINCT \(value("resourceAttributes")), \(value("scope")) FROM traces t WHERE \(has);
            UPDATE traces AS t SET service_metadata = (SELECT MIN(s.id) FROM service_metadata s
              WHERE s.resource_attributes \(d.isSame) \(value("resourceAttributes")) AND s.scope \(d.isSame) \(value("scope")))
              WHERE \(has);
            DELETE FROM trace_metadata WHERE key IN (\(keys));
            """
    }
}
