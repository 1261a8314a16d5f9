import Compression
import Foundation

/// The big columns (a span's OTLP message in `spans.body`, an observation's
/// stored record in `observations.record`, a trace's JSON record in
/// `traces.record`), deflated against a dictionary of the rows stored just
/// before them.
///
/// A row alone is too short to compress (690 bytes of OTLP deflate to
/// about 500), but it mostly repeats its neighbours: the resource, the
/// scope, the attribute keys, the prompts. Deflated against the last 4 KiB
/// of such rows, a row takes a small fraction of its size.
///
/// A dictionary is kept per column and replaced by the tail of itself plus
/// the rows being written: at every commit while it is shorter than the
/// window, and every `rotateEvery` rows after that, so that it follows what
/// is being stored. Each dictionary is stored once, in `row_dictionaries`,
/// by an id that is a hash of its bytes: two processes sharing a store
/// agree on ids without asking each other, and the commit that first uses
/// a dictionary writes it (`INSERT … ON CONFLICT DO NOTHING`), so a row
/// never commits without its dictionary.
///
/// A compressed row is `0xDC`, the dictionary id (8 bytes, little endian),
/// the inflated length (a varint) and the raw deflate stream. A row stored
/// before compression starts otherwise (an OTLP message with 0x0A, an
/// observation record with 0x02 or `{`, a trace record with `{`) and reads
/// as it is.
public final class RowCompression: @unchecked Sendable {
    public enum Column: Int, CaseIterable, Sendable { case spanBody, observationRecord, traceRecord }

    public struct StoredDictionary: Sendable, Equatable {
        public let id: Int64
        public let bytes: [UInt8]

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            id = Int64(bitPattern: Self.fnv1a(bytes))
        }

        /// FNV-1a, 64 bits: a stable id for the same bytes in every process.
        static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in bytes {
                hash ^= UInt64(b)
                hash = hash &* 0x0000_0100_0000_01b3
            }
            return hash
        }
    }

    static let marker: UInt8 = 0xDC
    /// Rows of one column between two dictionaries once the window is full.
    public let rotateEvery: Int
    /// Dictionaries held in memory for reads; more are read from the store.
    let cacheLimit: Int

    private let lock = NSLock()
    private var current: [StoredDictionary?] = Array(repeating: nil, count: Column.allCases.count)
    private var rowsSinceRotation = Array(repeating: 0, count: Column.allCases.count)
    private let deflater = DictionaryDeflater()
    private var cache: [Int64: [UInt8]] = [:]
    private var cacheOrder: [Int64] = []

    public init(rotateEvery: Int = 4096, cacheLimit: Int = 256) {
        self.rotateEvery = rotateEvery
        self.cacheLimit = cacheLimit
    }

    /// Compresses one commit's rows of `column`; returns them with the
    /// dictionary they need, which the same transaction must store.
    public func compress(_ rows: [[UInt8]], column: Column) -> (rows: [Data], dictionary: StoredDictionary?) {
        guard !rows.isEmpty else { return ([], nil) }
        lock.lock()
        defer { lock.unlock() }
        let dictionary = dictionaryFor(rows, column: column)
        var out = [Data]()
        out.reserveCapacity(rows.count)
        var buffer = [UInt8]()
        dictionary.bytes.withUnsafeBytes { dict in
            for row in rows {
                buffer.removeAll(keepingCapacity: true)
                buffer.append(Self.marker)
                withUnsafeBytes(of: UInt64(bitPattern: dictionary.id).littleEndian) { buffer.append(contentsOf: $0) }
                var n = UInt64(row.count)
                while n >= 0x80 {
                    buffer.append(UInt8(truncatingIfNeeded: n) | 0x80)
                    n >>= 7
                }
                buffer.append(UInt8(n))
                row.withUnsafeBytes { deflater.deflate($0, dictionary: dict, into: &buffer) }
                out.append(Data(buffer))
            }
        }
        return (out, dictionary)
    }

    /// The column's dictionary for these rows, replaced first when it is
    /// due (see the type's comment).
    private func dictionaryFor(_ rows: [[UInt8]], column: Column) -> StoredDictionary {
        let i = column.rawValue
        rowsSinceRotation[i] += rows.count
        if let d = current[i], d.bytes.count >= DictionaryDeflater.windowSize, rowsSinceRotation[i] <= rotateEvery { return d }
        // The newest bytes last: the rows of this commit, after what the
        // old dictionary ends with, cut to the window.
        var tail = [UInt8]()
        var need = DictionaryDeflater.windowSize
        for row in rows.reversed() where need > 0 {
            tail.insert(contentsOf: row.suffix(need), at: 0)
            need -= min(need, row.count)
        }
        if need > 0, let old = current[i] { tail.insert(contentsOf: old.bytes.suffix(need), at: 0) }
        let d = StoredDictionary(tail)
        current[i] = d
        rowsSinceRotation[i] = rows.count
        remember(d.id, d.bytes)
        return d
    }

    private func remember(_ id: Int64, _ bytes: [UInt8]) {
        guard cache[id] == nil else { return }
        cache[id] = bytes
        cacheOrder.append(id)
        if cacheOrder.count > cacheLimit { cache[cacheOrder.removeFirst()] = nil }
    }

    /// Stores the dictionaries a commit's rows need, in its transaction.
    static func store(_ dictionaries: [StoredDictionary], in session: any SQLSession) throws {
        guard !dictionaries.isEmpty else { return }
        try session.insert(
            into: "row_dictionaries", [("id", .int), ("bytes", .blob)],
            rows: dictionaries.map { [.int($0.id), .blob(Data($0.bytes))] }, onConflict: "ON CONFLICT DO NOTHING"
        )
    }

    /// A column as stored before compression: a compressed row inflated,
    /// anything else as it is.
    public func expand(_ column: SQLValue, in session: any SQLSession) throws -> SQLValue {
        guard case .blob(let data) = column, data.first == Self.marker else { return column }
        return .blob(Data(try expand(data, in: session)))
    }

    public func expand(_ data: Data, in session: any SQLSession) throws -> [UInt8] {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [UInt8] in
            guard raw.count >= 10 else { throw StoreError("a compressed row is cut short (\(raw.count) bytes)") }
            let id = Int64(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 1, as: UInt64.self)))
            var at = 9, length = 0, shift = 0
            while true {
                guard at < raw.count, shift < 35 else { throw StoreError("a compressed row's length does not decode") }
                let b = raw[at]
                at += 1
                length |= Int(b & 0x7F) << shift
                shift += 7
                if b < 0x80 { break }
            }
            let dictionary = try self.dictionary(id, in: session)
            do {
                return try dictionary.withUnsafeBytes { try DictionaryInflate.inflate(UnsafeRawBufferPointer(rebasing: raw[at...]), dictionary: $0, length: length) }
            } catch {
                throw StoreError("a compressed row does not inflate: \(error)")
            }
        }
    }

    private func dictionary(_ id: Int64, in session: any SQLSession) throws -> [UInt8] {
        lock.lock()
        let cached = cache[id]
        lock.unlock()
        if let cached { return cached }
        guard let bytes = try session.row("SELECT bytes FROM row_dictionaries WHERE id = ?", [.int(id)])?["bytes"].data else {
            throw StoreError("row dictionary \(id) is missing from the store")
        }
        let found = [UInt8](bytes)
        lock.lock()
        remember(id, found)
        lock.unlock()
        return found
    }
}
