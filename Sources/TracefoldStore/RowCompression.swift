internal import CZstd
import Foundation

/// The big columns (a span's OTLP message in `spans.body`, an observation's
/// stored record in `observations.record`, a trace's JSON record in
/// `traces.record`), compressed with zstd against a dictionary of the rows
/// stored just before them.
///
/// A row alone is too short to compress well (690 bytes of OTLP deflate to
/// about 500), but it mostly repeats its neighbours: the resource, the
/// scope, the attribute keys, the prompts. Against the last 16 KiB of such
/// rows, a span's row takes about an eighth of its size. zstd, not zlib:
/// zstd prepares a dictionary once (`ZSTD_CDict`), where zlib hashes it
/// again for every row; on the bench load a row took 1.6 µs against 5 to
/// 9 µs with zlib, for the same size.
///
/// Each column keeps the last `windowSize` bytes of the rows it wrote. Its
/// dictionary is replaced by those bytes when they have doubled it (while
/// it is shorter than the window) and every `rotateEvery` rows after that,
/// so that it follows what is being stored and few dictionaries are made.
/// A dictionary is those bytes with zstd's entropy tables before them,
/// taken from the rows of the commit that makes it (`finalized`), so that
/// a row does not build its own tables.
/// Each dictionary is stored once, in `row_dictionaries`, by an id that is
/// a hash of its bytes: two processes sharing a store agree on ids without
/// asking each other, and a commit writes the dictionary its rows use
/// (`INSERT … ON CONFLICT DO NOTHING`), so no row commits without its
/// dictionary.
///
/// A compressed row is `0xDC`, the dictionary id (8 bytes, little endian),
/// and a zstd frame without its 4-byte magic number (the same in every
/// row). A row stored before compression starts otherwise (an OTLP
/// message with 0x0A, an observation record with 0x02 or `{`, a trace
/// record with `{`) and reads as it is.
public final class RowCompression: @unchecked Sendable {
    public enum Column: Int, CaseIterable, Sendable { case spanBody, observationRecord, traceRecord }

    public struct StoredDictionary: Sendable, Equatable {
        public let id: Int64
        /// What is stored and loaded: a zstd dictionary (its header and
        /// entropy tables, then the content), or the content alone.
        public let bytes: [UInt8]
        /// How many of `bytes`' last bytes are the rows' content.
        let contentCount: Int

        init(_ bytes: [UInt8], contentCount: Int? = nil) {
            self.bytes = bytes
            self.contentCount = contentCount ?? bytes.count
            id = Int64(bitPattern: Self.fnv1a(bytes))
        }

        /// The rows' bytes the dictionary holds, oldest first.
        public var content: ArraySlice<UInt8> { bytes.suffix(contentCount) }

        /// Whether `bytes` carry entropy tables (zstd's dictionary format).
        public var isFinalized: Bool { contentCount < bytes.count }

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
    /// zstd's frame magic number, little endian: left out of stored rows.
    static let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
    /// zstd's dictionary magic number, little endian.
    static let dictionaryMagic: [UInt8] = [0x37, 0xA4, 0x30, 0xEC]
    /// How much of the recent rows a dictionary holds.
    public static let windowSize = 16 * 1024
    /// The largest row a read will inflate: far above any span or record
    /// the limits let in, and a bound on what a corrupt length can ask for.
    static let maxRowSize = 256 << 20
    static let level: Int32 = 1
    /// Rows of one column between two dictionaries once the window is full.
    public let rotateEvery: Int
    /// Dictionaries held in memory for reads; more are read from the store.
    /// 64 thrashed on the query bench (800k spans make about 150, and a
    /// random trace read touches any of them): the metadata-filtered list
    /// p99 went from 12.7 to 18.1 ms; with 512 it is 12.4 ms. Each held
    /// dictionary costs about its 16 KiB.
    let cacheLimit: Int

    private struct Writer {
        var dictionary: StoredDictionary?
        var prepared: OpaquePointer?
        var recent: [UInt8] = []
        var rowsSinceRotation = 0
    }

    /// A dictionary prepared for reads; freed when the last read using it
    /// and the cache have let go of it.
    private final class Decoder {
        let ddict: OpaquePointer
        init(_ ddict: OpaquePointer) { self.ddict = ddict }
        deinit { ZSTD_freeDDict(ddict) }
    }

    private let lock = NSLock()
    private var writers = Array(repeating: Writer(), count: Column.allCases.count)
    private let cctx: OpaquePointer
    private var decoders: [Int64: Decoder] = [:]
    private var decoderOrder: [Int64] = []
    private var idleDContexts: [OpaquePointer] = []

    public init(rotateEvery: Int = 16_384, cacheLimit: Int = 512) {
        self.rotateEvery = rotateEvery
        self.cacheLimit = cacheLimit
        cctx = ZSTD_createCCtx()
        // The magic and dictionary id go; the content size stays (a byte or
        // two, and what a read allocates).
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_dictIDFlag, 0)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
    }

    deinit {
        for w in writers { if let p = w.prepared { ZSTD_freeCDict(p) } }
        for c in idleDContexts { ZSTD_freeDCtx(c) }
        ZSTD_freeCCtx(cctx)
    }

    /// One commit's compressed rows of a column, one after another in one
    /// buffer (a `Data` a row was an allocation and a copy a row), with
    /// the dictionary they need, which the same transaction must store.
    public struct Rows {
        /// Every row's stored bytes, one after another.
        var bytes: [UInt8] = []
        /// Where each row ends in `bytes`.
        var ends: [Int] = []
        public var dictionary: StoredDictionary?

        private func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i - 1])..<ends[i] }

        /// Row `i`'s stored bytes, valid during `body`.
        public func withRow<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range(i)])) }
        }
    }

    /// Compresses one commit's rows of `column`.
    public func compress(_ rows: [[UInt8]], column: Column) -> Rows {
        guard !rows.isEmpty else { return Rows() }
        lock.lock()
        defer { lock.unlock() }
        let (dictionary, prepared) = prepare(rows, column: column)
        ZSTD_CCtx_refCDict(cctx, prepared)
        var out = Rows(dictionary: dictionary)
        out.ends.reserveCapacity(rows.count)
        // Rows take about an eighth of their size against the dictionary.
        out.bytes.reserveCapacity(rows.reduce(0) { $0 + $1.count } / 4 + 16 * rows.count)
        var header = [Self.marker]
        withUnsafeBytes(of: UInt64(bitPattern: dictionary.id).littleEndian) { header.append(contentsOf: $0) }
        var frame = [UInt8]()
        for row in rows {
            let bound = ZSTD_compressBound(row.count)
            if frame.count < bound { frame = [UInt8](unsafeUninitializedCapacity: bound) { _, count in count = bound } }
            let written = frame.withUnsafeMutableBytes { out in
                row.withUnsafeBytes { ZSTD_compress2(cctx, out.baseAddress, bound, $0.baseAddress, $0.count) }
            }
            precondition(ZSTD_isError(written) == 0, "zstd: \(String(cString: ZSTD_getErrorName(written)))")
            // The frame starts with the magic number: dropped.
            precondition(written >= 4 && frame[0..<4].elementsEqual(Self.magic), "zstd wrote no frame magic")
            out.bytes.append(contentsOf: header)
            frame.withUnsafeBytes { out.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[4..<written])) }
            out.ends.append(out.bytes.count)
        }
        return out
    }

    /// The column's dictionary for these rows, replaced first when due
    /// (see the type's comment).
    private func prepare(_ rows: [[UInt8]], column: Column) -> (StoredDictionary, OpaquePointer) {
        var w = writers[column.rawValue]
        defer { writers[column.rawValue] = w }
        // The window's last bytes after these rows: only the rows that
        // reach into it are copied (a commit's rows are some twenty times
        // the window, and copying all of them to drop most was 1% of the
        // collector's CPU on the bench load).
        var first = rows.endIndex
        var reaching = 0
        while first > rows.startIndex, reaching < Self.windowSize {
            first -= 1
            reaching += min(rows[first].count, Self.windowSize)
        }
        let keep = max(0, Self.windowSize - reaching)
        if w.recent.count > keep { w.recent.removeFirst(w.recent.count - keep) }
        for row in rows[first...] { w.recent.append(contentsOf: row.suffix(Self.windowSize)) }
        if w.recent.count > Self.windowSize { w.recent.removeFirst(w.recent.count - Self.windowSize) }
        w.rowsSinceRotation += rows.count
        let due: Bool
        if let d = w.dictionary {
            due = d.contentCount < Self.windowSize ? w.recent.count >= min(Self.windowSize, 2 * d.contentCount) : w.rowsSinceRotation > rotateEvery
        } else {
            due = true
        }
        if due {
            // Bytes that start like a zstd dictionary would be read as one:
            // such content loses its first byte.
            let content = w.recent.starts(with: Self.dictionaryMagic) ? Array(w.recent.dropFirst()) : w.recent
            let d = Self.finalized(content, samples: rows).map { StoredDictionary($0, contentCount: content.count) } ?? StoredDictionary(content)
            if let old = w.prepared { ZSTD_freeCDict(old) }
            w.prepared = d.bytes.withUnsafeBytes { ZSTD_createCDict($0.baseAddress, $0.count, Self.level) }
            precondition(w.prepared != nil, "ZSTD_createCDict failed")
            w.dictionary = d
            w.rowsSinceRotation = rows.count
        }
        return (w.dictionary!, w.prepared!)
    }

    /// The rows a dictionary's entropy tables are taken from: the last
    /// of the commit that makes it, up to this many bytes.
    static let sampleBytes = 128 * 1024

    /// `content` with entropy tables before it (`ZDICT_finalizeDictionary`),
    /// taken from how the commit's last rows compress against it; nil when
    /// zstd cannot make them (content or samples too small), and the
    /// content alone is the dictionary.
    ///
    /// Content alone gives zstd no tables, so each row, a frame of its own,
    /// built its literal and sequence tables afresh: about 1.6 µs a row
    /// however short, two thirds of the time a row took. With the tables in
    /// the dictionary a row reuses them: on observation records 1.6 µs a
    /// row against 2.4, in 76 bytes against 104. A dictionary is made once
    /// per 16,384 rows of its column, and finalizing it takes about 0.6 ms.
    static func finalized(_ content: [UInt8], samples rows: [[UInt8]]) -> [UInt8]? {
        var first = rows.endIndex, total = 0
        while first > rows.startIndex, total + rows[first - 1].count <= sampleBytes {
            first -= 1
            total += rows[first].count
        }
        guard first < rows.endIndex, !content.isEmpty else { return nil }
        let samples = Array(rows[first...].joined())
        let sizes = rows[first...].map(\.count)
        // The same content and samples give the same bytes (and so the same
        // id) in every process: the dictionary id comes from the content,
        // above the range zstd reserves.
        let dictID = UInt32(32_768 + StoredDictionary.fnv1a(content) % UInt64(Int32.max - 32_768))
        let params = ZDICT_params_t(compressionLevel: level, notificationLevel: 0, dictID: dictID)
        let capacity = content.count + 8 * 1024
        var out = [UInt8](repeating: 0, count: capacity)
        let n = out.withUnsafeMutableBytes { dst in
            content.withUnsafeBytes { c in
                samples.withUnsafeBytes { s in
                    ZDICT_finalizeDictionary(dst.baseAddress, capacity, c.baseAddress, c.count, s.baseAddress, sizes, UInt32(sizes.count), params)
                }
            }
        }
        guard ZDICT_isError(n) == 0, n > content.count, out[..<n].suffix(content.count).elementsEqual(content) else { return nil }
        out.removeLast(capacity - n)
        return out
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
        guard data.count >= 10 else { throw StoreError("a compressed row is cut short (\(data.count) bytes)") }
        let id = data.withUnsafeBytes { Int64(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 1, as: UInt64.self))) }
        let dictionary = try decoder(id, in: session)
        let frame = Self.magic + data.dropFirst(9)
        let length = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard length <= UInt64(Self.maxRowSize) else { throw StoreError("a compressed row does not inflate: its frame has no usable size") }
        let dctx = takeDContext()
        defer { returnDContext(dctx) }
        var output = [UInt8](repeating: 0, count: Int(length))
        let n = output.withUnsafeMutableBytes { out in
            frame.withUnsafeBytes { ZSTD_decompress_usingDDict(dctx, out.baseAddress, out.count, $0.baseAddress, $0.count, dictionary.ddict) }
        }
        guard ZSTD_isError(n) == 0, n == Int(length) else {
            let reason = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "\(n) of \(length) bytes"
            throw StoreError("a compressed row does not inflate: \(reason)")
        }
        return output
    }

    /// The prepared dictionary `id`, from memory or read from the store.
    private func decoder(_ id: Int64, in session: any SQLSession) throws -> Decoder {
        lock.lock()
        let cached = decoders[id]
        lock.unlock()
        if let cached { return cached }
        guard let bytes = try session.row("SELECT bytes FROM row_dictionaries WHERE id = ?", [.int(id)])?["bytes"].data else {
            throw StoreError("row dictionary \(id) is missing from the store")
        }
        guard let ddict = bytes.withUnsafeBytes({ ZSTD_createDDict($0.baseAddress, $0.count) }) else { throw StoreError("row dictionary \(id) does not load") }
        let made = Decoder(ddict)
        lock.lock()
        defer { lock.unlock() }
        if let raced = decoders[id] { return raced }
        decoders[id] = made
        decoderOrder.append(id)
        if decoderOrder.count > cacheLimit { decoders[decoderOrder.removeFirst()] = nil }
        return made
    }

    private func takeDContext() -> OpaquePointer {
        lock.lock()
        defer { lock.unlock() }
        return idleDContexts.popLast() ?? ZSTD_createDCtx()
    }

    private func returnDContext(_ c: OpaquePointer) {
        lock.lock()
        defer { lock.unlock() }
        if idleDContexts.count < 8 { idleDContexts.append(c) } else { ZSTD_freeDCtx(c) }
    }
}
