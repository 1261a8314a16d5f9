import Foundation

/// A value bound to, or read from, a SQL statement, the same for both
/// backends so that every query is written once.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob(Data)

    public init(_ s: String?) { self = s.map { .text($0) } ?? .null }
    public init(_ i: Int) { self = .int(Int64(i)) }
    public init(_ b: Bool) { self = .int(b ? 1 : 0) }
    public init(_ d: Double?) { self = d.map { .double($0) } ?? .null }

    public var string: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    public var int: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return Int64(exactly: d.rounded(.towardZero))
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var data: Data? {
        if case .blob(let d) = self { return d }
        return nil
    }
}

/// The few places where SQLite and PostgreSQL spell a query differently.
public enum SQLDialect: Sendable {
    case sqlite, postgres

    /// Null-safe equality.
    var isSame: String { self == .sqlite ? "IS" : "IS NOT DISTINCT FROM" }

    /// Whether the JSON array of text in `column` holds the next argument.
    /// (`??` is PostgreSQL's jsonb `?` operator, escaped from numbering.)
    func arrayHolds(_ column: String) -> String {
        self == .sqlite ? "EXISTS (SELECT 1 FROM json_each(\(column)) WHERE value = ?)" : "(\(column) ?? ?)"
    }

    /// A blob column as lowercase hex text: how scores name traces and
    /// observations.
    func hexText(_ column: String) -> String {
        self == .sqlite ? "lower(hex(\(column)))" : "encode(\(column), 'hex')"
    }

    /// Whether `text` contains the next argument.
    func contains(_ text: String) -> String {
        self == .sqlite ? "instr(\(text), ?) > 0" : "strpos(\(text), ?) > 0"
    }
}

/// One result row, by column name: its values in the columns' order, beside
/// the names, which the rows of one result share. A query names a few
/// columns, so finding one by a look along them costs less than a
/// dictionary per row, which was most of what reading a row cost.
public struct SQLRow: Sendable {
    let names: [String]
    let values: [SQLValue]

    init(names: [String], values: [SQLValue]) {
        self.names = names
        self.values = values
    }

    /// The first column of that name (as a dictionary of them kept the
    /// first); `.null` when there is none.
    public subscript(_ name: String) -> SQLValue {
        for index in names.indices where names[index] == name { return values[index] }
        return .null
    }
}

/// The type of an inserted column, for backends that bind rows in bulk.
public enum SQLColumnType: Sendable {
    case int, double, text, blob
    /// JSON text; PostgreSQL stores it as jsonb.
    case json
}

/// A connection (or a transaction on one) that runs statements written with
/// `?` placeholders; each backend rewrites them to its own form.
public protocol SQLSession {
    var dialect: SQLDialect { get }
    /// The store's compression of its big columns: writers compress with
    /// it, readers expand what they read (`RowCompression.expand`).
    var rowCompression: RowCompression { get }
    /// Where the trace rows are by id (SQLite's `TraceKeyIndex`); nil where
    /// `traces` is keyed by `trace_id` (PostgreSQL).
    var traceKeys: TraceKeyIndex? { get }
    func execute(_ sql: String, _ args: [SQLValue]) throws
    func rows(_ sql: String, _ args: [SQLValue]) throws -> [SQLRow]
    /// Inserts rows, with `onConflict` ("ON CONFLICT …", or "") after them.
    func insert(into table: String, _ columns: [(String, SQLColumnType)], rows: [[SQLValue]], onConflict: String) throws
    /// Inserts `count` rows, `row(i, &writer)` giving row `i`'s values in
    /// the columns' order: SQLite binds them as they come, with no array of
    /// values a row (the fold writes a few rows a span).
    func insert(
        into table: String, _ columns: [(String, SQLColumnType)], count: Int, onConflict: String, row: (Int, inout SQLRowWriter) throws -> Void
    ) throws
}

extension SQLSession {
    public var traceKeys: TraceKeyIndex? { nil }

    func row(_ sql: String, _ args: [SQLValue]) throws -> SQLRow? { try rows(sql, args).first }

    /// For sessions that take whole rows: the values collected, then
    /// `insert(into:_:rows:onConflict:)`.
    func insert(
        into table: String, _ columns: [(String, SQLColumnType)], count: Int, onConflict: String, row: (Int, inout SQLRowWriter) throws -> Void
    ) throws {
        var rows = [[SQLValue]]()
        rows.reserveCapacity(count)
        for i in 0..<count {
            var writer = SQLRowWriter(collecting: columns.count)
            try row(i, &writer)
            rows.append(writer.values)
        }
        try insert(into: table, columns, rows: rows, onConflict: onConflict)
    }
}

/// A WHERE clause built from optional filters, with its bound arguments.
/// Every list query of the API goes through it, so each filter kind is
/// written once. Placeholders are `?`; sessions number them for PostgreSQL.
struct SQLWhere {
    let dialect: SQLDialect
    var clauses: [String] = []
    var args: [SQLValue] = []

    init(_ dialect: SQLDialect) { self.dialect = dialect }

    mutating func add(_ clause: String, _ values: SQLValue...) {
        clauses.append(clause)
        args += values
    }

    mutating func equals(_ column: String, _ value: String?) {
        if let value { add("\(column) = ?", .text(value)) }
    }

    mutating func oneOf(_ column: String, _ values: [String]) {
        guard !values.isEmpty else { return }
        clauses.append("\(column) IN (\(Array(repeating: "?", count: values.count).joined(separator: ",")))")
        args += values.map { .text($0) }
    }

    /// `from` inclusive, `to` exclusive, in ns.
    mutating func range(_ column: String, from: UInt64?, to: UInt64?) {
        if let from { add("\(column) >= ?", .int(Int64(bitPattern: from))) }
        if let to { add("\(column) < ?", .int(Int64(bitPattern: to))) }
    }

    var sql: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}

/// Rewrites `?` placeholders as `$1, $2, …`, skipping string literals and
/// the jsonb `?` operator written as `??`.
func numberPlaceholders(_ sql: String) -> String {
    var out = ""
    out.reserveCapacity(sql.utf8.count + 16)
    var n = 0
    var inString = false
    var chars = sql.makeIterator()
    var pending: Character? = nil
    while let c = pending ?? chars.next() {
        pending = nil
        if c == "'" { inString.toggle() }
        if c == "?" && !inString {
            if let next = chars.next() {
                if next == "?" {
                    out.append("?")
                    continue
                }
                pending = next
            }
            n += 1
            out += "$\(n)"
        } else {
            out.append(c)
        }
    }
    return out
}
