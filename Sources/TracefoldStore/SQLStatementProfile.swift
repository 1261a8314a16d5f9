import Foundation

/// The CPU time SQLite spends running each statement, summed by statement,
/// and how many times each ran: which of a commit's statements the store's
/// time goes to, where a CPU profile cannot tell (Debian's libsqlite3 has
/// no frame pointers, so its samples lose their callers). Counted on the
/// calling thread's CPU clock around `sqlite3_step`, for the statements the
/// store's session runs; a write transaction's own BEGIN and COMMIT (with
/// the WAL pages the commit writes) as `SQLiteStore.transactionStatement`,
/// and `sync`'s checkpoint as its PRAGMA. (SQLite's own profile callback
/// counts wall time on a millisecond clock: most statements took 0 ms.)
/// A diagnostic for `tracefold-loadgen --pipeline-bench --sql-profile`;
/// the collector never sets one, as it is two clock reads and a lock for
/// every statement run.
public final class SQLStatementProfile: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        /// The statement's first `SQLStatementProfile.keyLength`
        /// characters, whitespace collapsed.
        public var statement: String
        public var seconds: Double
        public var runs: Int
    }

    /// Statements are told apart by their start: a commit's statements
    /// differ there, and one statement with more or fewer rows differs
    /// only in its VALUES lists, further on.
    public static let keyLength = 64

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]

    public init() {}

    /// Summed by the whole text here, and by its start only when read:
    /// cutting the text on every run cost more than the run.
    func record(_ sql: String, seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        entries[sql, default: Entry(statement: sql, seconds: 0, runs: 0)].seconds += seconds
        entries[sql]!.runs += 1
    }

    /// The calling thread's CPU time, in seconds.
    static func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func key(_ sql: String) -> String {
        String(sql.split(whereSeparator: \.isWhitespace).joined(separator: " ").prefix(keyLength))
    }

    /// Every statement recorded, the most time first.
    public var totals: [Entry] {
        lock.lock()
        defer { lock.unlock() }
        var byKey = [String: Entry]()
        for e in entries.values {
            let key = Self.key(e.statement)
            byKey[key, default: Entry(statement: key, seconds: 0, runs: 0)].seconds += e.seconds
            byKey[key]!.runs += e.runs
        }
        return byKey.values.sorted { $0.seconds != $1.seconds ? $0.seconds > $1.seconds : $0.statement < $1.statement }
    }

    /// Forgets what was recorded.
    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        entries.removeAll()
    }
}

/// A transaction's CPU time outside its body (`SQLiteStore.write`): begun
/// when made, recorded as `statement` by `finish`, less what ran `inside`.
final class TransactionTimer {
    private let profile: SQLStatementProfile
    private let statement: String
    private let start = SQLStatementProfile.threadCPUSeconds()
    private var insideSeconds = 0.0

    init(_ profile: SQLStatementProfile, _ statement: String) {
        self.profile = profile
        self.statement = statement
    }

    /// Runs `body`, whose time is not the transaction's own; without a
    /// timer, just runs it.
    static func inside<T>(_ timer: TransactionTimer?, _ body: () throws -> T) rethrows -> T {
        guard let timer else { return try body() }
        let began = SQLStatementProfile.threadCPUSeconds()
        defer { timer.insideSeconds += SQLStatementProfile.threadCPUSeconds() - began }
        return try body()
    }

    func finish() { profile.record(statement, seconds: SQLStatementProfile.threadCPUSeconds() - start - insideSeconds) }
}
