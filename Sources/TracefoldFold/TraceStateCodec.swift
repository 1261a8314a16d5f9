import TracefoldMapping
import TracefoldModel

/// A compact binary form of a cached trace: its `TraceState`, the
/// observations the trace record needs (root, as-root) and the earliest
/// span's stand-in, its sequence number and its row's generation. The fold keeps traces it has not touched for a while in
/// this form (`TraceCache`): a `TraceState` as Swift values costs several
/// kilobytes of small allocations, the same state as bytes a few hundred.
///
/// Decoding gives a value equal (`==`) to the one encoded: doubles by bit
/// pattern, integers and doubles kept apart, dictionaries and sets as sets
/// of entries. The bytes never leave the process, so the format has no
/// version; it only has to round-trip.
///
/// What makes it small: times are written as differences from the trace's
/// start; the (time, span) origin of an order key, which the values a span
/// sets all share, is written once and then referred to by number; the
/// stand-in roots, usually one span, are written once; update ids of the
/// usual `<spanId>/<position>` form take 9 bytes and a position; and a
/// resource's or scope's JSON, the same for every span of a service, and
/// object keys and entry kinds, are written once in `interner` and referred
/// to by number.
enum TraceStateCodec {
    static func encode(_ trace: OpenTrace, interner: JSONInterner? = nil) -> [UInt8] {
        var w = ByteWriter(base: trace.state.minStart, interner: interner)
        w.fixed(trace.state.minStart)
        w.int(trace.seq)
        w.fixed(UInt64(bitPattern: trace.generation))
        w.state(trace.state)
        w.count(trace.observations.count)
        for o in trace.observations.values { w.observation(o) }
        w.optional(trace.standIn) { w, s in
            w.fixed(s.spanID.value)
            w.optional(s.resourceAttributes) { $0.resourceOrScope($1) }
            w.optional(s.scope) { $0.resourceOrScope($1) }
        }
        // Exactly as long as it needs to be: the writer's spare capacity would
        // be a quarter of what the cache holds.
        return [UInt8](unsafeUninitializedCapacity: w.bytes.count) { buffer, n in
            n = buffer.initialize(fromContentsOf: w.bytes)
        }
    }

    /// The trace's start time, which `encode` writes first.
    static func minStart(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            return r.fixed() ?? 0
        }
    }

    /// Nil only if `bytes` did not come from `encode` with the same interner.
    static func decode(_ bytes: [UInt8], lastUse: UInt64, interner: JSONInterner? = nil) -> OpenTrace? {
        bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw, interner: interner)
            guard let base = r.fixed() else { return nil }
            r.base = base
            guard let seq = r.int(), let generation = r.fixed(), let state = r.state(), let n = r.count() else { return nil }
            var observations = [SpanID: Observation](minimumCapacity: n)
            for _ in 0..<n {
                guard let o = r.observation(of: state.traceID) else { return nil }
                observations[o.id] = o
            }
            let standIn = r.optional { r -> TraceStandIn? in
                guard let id = r.fixed(), let resource = r.optional({ $0.resourceOrScope() }), let scope = r.optional({ $0.resourceOrScope() }) else { return nil }
                return TraceStandIn(spanID: SpanID(id), resourceAttributes: resource, scope: scope)
            }
            guard let standIn, r.atEnd else { return nil }
            return OpenTrace(
                state: state, observations: observations, standIn: standIn, seq: seq, lastUse: lastUse, generation: Int64(bitPattern: generation))
        }
    }
}

/// Numbers the distinct resource and scope JSON objects the cache has
/// seen, so that an encoded trace refers to them instead of repeating them.
/// Bounded: past `limit` distinct values, new ones are written out in full.
/// A numbered value is never forgotten, since encoded traces refer to it.
final class JSONInterner {
    private(set) var values: [JSONText] = []
    private var ids: [JSONText: Int] = [:]
    private var keys: [String] = []
    private var keyIDs: [String: Int] = [:]
    let limit: Int

    init(limit: Int = 4096) { self.limit = limit }

    /// The same for object keys and entry kinds, which come from a small
    /// vocabulary (`gen_ai.usage.input_tokens`, `userland.default`, …).
    func id(forKey key: String) -> Int? {
        if let id = keyIDs[key] { return id }
        guard keys.count < limit, key.utf8.count > 2 else { return nil }
        keys.append(key)
        keyIDs[key] = keys.count - 1
        return keys.count - 1
    }

    func key(_ id: Int) -> String? { id < keys.count ? keys[id] : nil }

    /// The last values numbered: the spans of a batch share their
    /// resource's and scope's JSON text (one array storage, which `==`
    /// compares by identity first), so most lookups end here without
    /// hashing the text.
    private var recent: [(value: JSONText, id: Int)] = []

    func id(for value: JSONText) -> Int? {
        for r in recent where r.value == value { return r.id }
        let id: Int
        if let known = ids[value] {
            id = known
        } else {
            guard values.count < limit else { return nil }
            values.append(value)
            id = values.count - 1
            ids[value] = id
        }
        if recent.count == 4 { recent.removeFirst() }
        recent.append((value, id))
        return id
    }

    func value(_ id: Int) -> JSONText? { id < values.count ? values[id] : nil }
}

/// The part of an order key that every value one span sets shares.
struct OrderOrigin: Hashable {
    var time: UInt64
    var spanID: UInt64
}

// MARK: Writing

struct ByteWriter {
    var bytes: [UInt8] = []
    /// Times are written relative to this.
    var base: UInt64 = 0
    var interner: JSONInterner?
    private var origins: [OrderOrigin: Int] = [:]
    private var lastOrigin: (origin: OrderOrigin, index: Int)?

    init(base: UInt64 = 0, interner: JSONInterner? = nil) {
        self.base = base
        self.interner = interner
        bytes.reserveCapacity(1024)
    }

    /// A writer that appends to `bytes` (taken over, not copied).
    init(base: UInt64, appendingTo bytes: consuming [UInt8]) {
        self.base = base
        self.bytes = bytes
    }

    /// A time as its zig-zag difference from `base`: a few bytes for the
    /// times of one trace instead of eight.
    mutating func time(_ t: UInt64) { int(Int64(bitPattern: t &- base)) }

    mutating func varint(_ v: UInt64) {
        Self.varintBytes(v) { bytes.append($0) }
    }

    /// `v`'s varint bytes in order: seven bits each, least significant
    /// first, the high bit set on all but the last.
    @inline(__always)
    static func varintBytes(_ v: UInt64, _ emit: (UInt8) -> Void) {
        var v = v
        while v >= 0x80 {
            emit(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        emit(UInt8(v))
    }

    /// What `write` appends, after its length as `count` writes it. The
    /// length is known only once the bytes are written, so they are written
    /// in place after a one-byte length, widened when they are 128 bytes or
    /// more, rather than in a buffer of their own to be copied from.
    mutating func counted(_ write: (inout [UInt8]) -> Void) {
        let at = bytes.count
        bytes.append(0)
        write(&bytes)
        let length = UInt64(bytes.count - at - 1)
        if length < 0x80 {
            bytes[at] = UInt8(length)  // most fields: the byte left is the length
            return
        }
        var width = 0
        Self.varintBytes(length) { _ in width += 1 }
        if width > 1 { bytes.insert(contentsOf: repeatElement(0, count: width - 1), at: at + 1) }
        var i = at
        Self.varintBytes(length) {
            bytes[i] = $0
            i += 1
        }
    }

    mutating func fixed(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Zig-zag, so that small negative numbers stay short.
    mutating func int(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    mutating func count(_ n: Int) { varint(UInt64(n)) }
    mutating func bool(_ b: Bool) { bytes.append(b ? 1 : 0) }
    mutating func double(_ d: Double) { fixed(d.bitPattern) }

    mutating func string(_ s: String) {
        s.withUTF8Bytes { utf8 in
            count(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    /// An object key or entry kind: twice the interner's number plus one,
    /// or twice the length and the text.
    mutating func key(_ s: String) {
        if let id = interner?.id(forKey: s) { return varint(UInt64(id) << 1 | 1) }
        s.withUTF8Bytes { utf8 in
            varint(UInt64(utf8.count) << 1)
            bytes.append(contentsOf: utf8)
        }
    }

    /// A presence byte, then the value when present.
    mutating func optional<T>(_ v: T?, _ write: (inout ByteWriter, T) -> Void) {
        guard let v else { return bytes.append(0) }
        bytes.append(1)
        write(&self, v)
    }

    mutating func optionalString(_ s: String?) { optional(s) { $0.string($1) } }

    mutating func strings<S: Collection>(_ strings: S) where S.Element == String {
        count(strings.count)
        for s in strings { string(s) }
    }

    /// A count, then each key and value (what `ByteReader.dictionary` reads).
    mutating func dictionary<V>(_ map: [String: V], _ key: (inout ByteWriter, String) -> Void, _ value: (inout ByteWriter, V) -> Void) {
        count(map.count)
        for (k, v) in map {
            key(&self, k)
            value(&self, v)
        }
    }

    mutating func stringMap(_ map: [String: String]) { dictionary(map, { $0.string($1) }, { $0.string($1) }) }

    /// JSON text, length-prefixed.
    mutating func text(_ t: JSONText) {
        count(t.count)
        bytes.appendUTF8(t.text)
    }

    mutating func json(_ v: JSONValue) {
        switch v {
        case .null: bytes.append(0)
        case .bool(let b): bytes.append(b ? 2 : 1)
        case .int(let i):
            bytes.append(3)
            int(i)
        case .double(let d):
            bytes.append(4)
            double(d)
        case .string(let s):
            bytes.append(5)
            string(s)
        case .array(let a):
            bytes.append(6)
            count(a.count)
            for e in a { json(e) }
        case .object(let o):
            bytes.append(7)
            jsonObject(o)
        }
    }

    mutating func jsonObject(_ o: [String: JSONValue]) { dictionary(o, { $0.key($1) }, { $0.json($1) }) }

    /// In `jsonObject`'s form, read back by it, without building the dictionary.
    mutating func costs(_ c: CostDetails) {
        count(c.count)
        c.forEach { type, cost in
            key(type)
            json(cost)
        }
    }

    mutating func order(_ o: OrderKey) {
        let origin = OrderOrigin(time: o.time, spanID: o.spanID)
        // Consecutive values mostly come from one span: no hashing then.
        if let last = lastOrigin, last.origin == origin {
            count(last.index)
        } else if let index = origins[origin] {
            lastOrigin = (origin, index)
            count(index)
        } else {
            lastOrigin = (origin, origins.count)
            count(origins.count)
            origins[origin] = origins.count
            time(o.time)
            fixed(o.spanID)
        }
        int(Int64(o.position))
    }

    mutating func versioned(_ v: Versioned<String>?) {
        optional(v) {
            $0.string($1.value)
            $0.order($1.order)
        }
    }

    mutating func versioned(_ v: Versioned<JSONValue>?) {
        optional(v) {
            $0.json($1.value)
            $0.order($1.order)
        }
    }

    mutating func governance(_ g: Governance) {
        string(g.apiKey)
        optionalString(g.workspace)
        stringMap(g.apiKeyMetadata)
        stringMap(g.workspaceMetadata)
        stringMap(g.defaults)
    }

    /// 0 none, 1 written out, 2 the same as `root`, 3 the same as `asRoot`.
    mutating func root(_ r: TraceState.Root?, sameAs earlier: [TraceState.Root?] = []) {
        guard let r else { return bytes.append(0) }
        if let i = earlier.firstIndex(of: r) { return bytes.append(UInt8(2 + i)) }
        bytes.append(1)
        fixed(r.spanID.value)
        time(r.start)
        optionalString(r.environment)
        optional(r.governance) { $0.governance($1) }
    }

    mutating func state(_ s: TraceState) {
        // About one order origin a span (its values share one): room made
        // once, where growing took four allocations for a trace of 8 spans.
        origins.reserveCapacity(s.observationIDs.count + 2)
        fixed(s.traceID.high)
        fixed(s.traceID.low)
        count(s.observationIDs.count)
        for id in s.observationIDs { fixed(id.value) }
        time(s.maxEnd)
        // One call each: a loop over an array of them allocated the array
        // and copied the six fields into it, for every trace encoded.
        versioned(s.name)
        versioned(s.userID)
        versioned(s.sessionID)
        versioned(s.version)
        versioned(s.release)
        versioned(s.environment)
        strings(s.tags)
        bool(s.isPublic)
        versioned(s.input)
        versioned(s.output)
        root(s.root)
        root(s.asRoot, sameAs: [s.root])
        root(s.earliest, sameAs: [s.root, s.asRoot])
        optional(s.costPicos) { $0.fixed(UInt64(bitPattern: $1)) }
        optional(s.worstLevel) { $0.level($1) }
        count(s.entries.count)
        for (key, bucket) in s.entries {
            bytes.append(Self.scopes.firstIndex(of: key.scope).map(UInt8.init) ?? 0)
            optional(key.target) { $0.fixed($1.value) }
            self.key(key.kind)
            count(bucket.count)
            for (k, v) in bucket {
                self.key(k)
                text(v.value)
                order(v.order)
            }
        }
        count(s.acceptedUpdates.count)
        for (id, size) in s.acceptedUpdates {
            updateID(id)
            count(size)
        }
        strings(s.arrivedUnder)
    }

    /// 1 and the span id and position for a span's update; 0 and the
    /// text for any other.
    mutating func updateID(_ id: UpdateID) {
        if let (span, position) = id.spanAndPosition {
            bytes.append(1)
            fixed(span)
            varint(position)
        } else {
            bytes.append(0)
            string(id.text)
        }
    }

    static let scopes: [MetadataScope] = [.trace, .observation, .extendedTrace]
    static let types = ObservationType.allCases
    static let levels: [ObservationLevel] = [.debug, .default, .warning, .error]

    mutating func level(_ l: ObservationLevel) { bytes.append(Self.levels.firstIndex(of: l).map(UInt8.init) ?? 1) }

    /// A resource's or scope's JSON: 1 and the interner's number for it,
    /// or 0 and the text (what `ByteReader.resourceOrScope` reads).
    mutating func resourceOrScope(_ v: JSONText) {
        if let id = interner?.id(for: v) {
            bytes.append(1)
            count(id)
        } else {
            bytes.append(0)
            text(v)
        }
    }

    /// An observation of the trace being written (its trace id is the state's).
    mutating func observation(_ o: Observation) {
        fixed(o.id.value)
        optional(o.parentID) { $0.fixed($1.value) }
        bytes.append(Self.types.firstIndex(of: o.type).map(UInt8.init) ?? 0)
        string(o.name)
        time(o.startTimeUnixNano)
        time(o.endTimeUnixNano)
        optional(o.completionStartTime) { $0.time($1) }
        optionalString(o.model)
        optionalString(o.modelID)
        optional(o.modelParameters) { $0.jsonObject($1) }
        optional(o.inputText) { $0.text($1) }
        optional(o.outputText) { $0.text($1) }
        jsonObject(o.usageDetails.dictionary)
        costs(o.costDetails)
        count(o.systemMetadata.count)
        for (k, v) in o.systemMetadata {
            key(k)
            if k == "resourceAttributes" || k == "scope" {
                resourceOrScope(v)
            } else {
                bytes.append(0)
                text(v)
            }
        }
        level(o.level)
        optionalString(o.statusMessage)
        optionalString(o.version)
        optionalString(o.release)
        string(o.environment)
        optionalString(o.promptName)
        optional(o.promptVersion) { $0.int($1) }
    }
}

// MARK: Reading

/// Reads what `ByteWriter` wrote; every read returns nil past the end or on
/// a byte no writer produces.
struct ByteReader {
    let raw: UnsafeRawBufferPointer
    var at = 0
    var base: UInt64 = 0
    let interner: JSONInterner?
    private var origins: [OrderOrigin] = []

    init(_ raw: UnsafeRawBufferPointer, interner: JSONInterner? = nil) {
        self.raw = raw
        self.interner = interner
    }

    mutating func time() -> UInt64? { int().map { base &+ UInt64(bitPattern: $0) } }

    var atEnd: Bool { at == raw.count }

    mutating func byte() -> UInt8? {
        guard at < raw.count else { return nil }
        defer { at += 1 }
        return raw[at]
    }

    mutating func varint() -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while let b = byte() {
            v |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return v }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    mutating func fixed() -> UInt64? {
        guard raw.count - at >= 8 else { return nil }
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[at..<at + 8])) }
        at += 8
        return UInt64(littleEndian: v)
    }

    mutating func int() -> Int64? {
        guard let u = varint() else { return nil }
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    mutating func count() -> Int? {
        guard let u = varint(), u <= UInt64(raw.count) * 8 + 8 else { return nil }
        return Int(u)
    }

    mutating func bool() -> Bool? { byte().map { $0 != 0 } }
    mutating func double() -> Double? { fixed().map(Double.init(bitPattern:)) }

    mutating func string() -> String? {
        guard let n = count(), raw.count - at >= n else { return nil }
        defer { at += n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: raw[at..<at + n]), as: UTF8.self)
    }

    /// Length-prefixed bytes (what `string` and `count`-then-append
    /// wrote), in place.
    mutating func slice() -> UnsafeRawBufferPointer? {
        guard let n = count(), raw.count - at >= n else { return nil }
        defer { at += n }
        return UnsafeRawBufferPointer(rebasing: raw[at..<at + n])
    }

    mutating func text() -> JSONText? { slice().map { JSONText(canonical: $0) } }

    mutating func key() -> String? {
        guard let n = varint() else { return nil }
        if n & 1 == 1 { return interner?.key(Int(n >> 1)) }
        let length = Int(n >> 1)
        guard raw.count - at >= length else { return nil }
        defer { at += length }
        return String(decoding: UnsafeRawBufferPointer(rebasing: raw[at..<at + length]), as: UTF8.self)
    }

    /// `.some(nil)` when absent, nil when unreadable.
    mutating func optional<T>(_ read: (inout ByteReader) -> T?) -> T?? {
        switch byte() {
        case 0: return .some(nil)
        case 1: return read(&self).map { .some($0) }
        default: return nil
        }
    }

    mutating func optionalString() -> String?? { optional { $0.string() } }

    mutating func strings() -> [String]? {
        guard let n = count() else { return nil }
        var out = [String]()
        out.reserveCapacity(n)
        for _ in 0..<n {
            guard let s = string() else { return nil }
            out.append(s)
        }
        return out
    }

    /// A count, then that many keys and values.
    mutating func dictionary<V>(_ key: (inout ByteReader) -> String?, _ value: (inout ByteReader) -> V?) -> [String: V]? {
        guard let n = count() else { return nil }
        var out = [String: V](minimumCapacity: n)
        for _ in 0..<n {
            guard let k = key(&self), let v = value(&self) else { return nil }
            out[k] = v
        }
        return out
    }

    mutating func stringMap() -> [String: String]? { dictionary({ $0.string() }, { $0.string() }) }

    mutating func json() -> JSONValue? {
        switch byte() {
        case 0: return .null
        case 1: return .bool(false)
        case 2: return .bool(true)
        case 3: return int().map(JSONValue.int)
        case 4: return double().map(JSONValue.double)
        case 5: return string().map(JSONValue.string)
        case 6:
            guard let n = count() else { return nil }
            var a = [JSONValue]()
            a.reserveCapacity(n)
            for _ in 0..<n {
                guard let e = json() else { return nil }
                a.append(e)
            }
            return .array(a)
        case 7: return jsonObject().map(JSONValue.object)
        default: return nil
        }
    }

    mutating func jsonObject() -> [String: JSONValue]? { dictionary({ $0.key() }, { $0.json() }) }

    /// An observation's system metadata, as `observation` wrote it.
    mutating func systemMetadata() -> [String: JSONText]? {
        dictionary({ $0.key() }) { $0.resourceOrScope() }
    }

    /// A value `ByteWriter.resourceOrScope` wrote, or any other system
    /// metadata value (0 and the text).
    mutating func resourceOrScope() -> JSONText? {
        switch byte() {
        case 0: return text()
        case 1: return count().flatMap { interner?.value($0) }
        default: return nil
        }
    }

    mutating func order() -> OrderKey? {
        guard let index = count() else { return nil }
        if index == origins.count {
            guard let time = time(), let span = fixed() else { return nil }
            origins.append(OrderOrigin(time: time, spanID: span))
        }
        guard index < origins.count, let position = int() else { return nil }
        return OrderKey(time: origins[index].time, spanID: origins[index].spanID, position: Int(position))
    }

    mutating func versionedString() -> Versioned<String>?? {
        optional { r in
            guard let v = r.string(), let o = r.order() else { return nil }
            return Versioned(v, o)
        }
    }

    mutating func versionedJSON() -> Versioned<JSONValue>?? {
        optional { r in
            guard let v = r.json(), let o = r.order() else { return nil }
            return Versioned(v, o)
        }
    }

    mutating func governance() -> Governance? {
        guard let key = string(), let workspace = optionalString(), let keyMetadata = stringMap(), let workspaceMetadata = stringMap(),
            let defaults = stringMap()
        else { return nil }
        return Governance(apiKey: key, workspace: workspace, apiKeyMetadata: keyMetadata, workspaceMetadata: workspaceMetadata, defaults: defaults)
    }

    mutating func readRoot(sameAs earlier: [TraceState.Root?] = []) -> TraceState.Root?? {
        switch byte() {
        case 0: return .some(nil)
        case 1:
            guard let span = fixed(), let start = time(), let environment = optionalString(), let governance = optional({ $0.governance() })
            else { return nil }
            return TraceState.Root(spanID: SpanID(span), start: start, environment: environment, governance: governance)
        case let tag? where tag >= 2 && Int(tag) - 2 < earlier.count: return earlier[Int(tag) - 2]
        default: return nil
        }
    }

    mutating func updateID() -> UpdateID? {
        switch byte() {
        case 0: return string().map { UpdateID($0) }
        case 1:
            guard let span = fixed(), let position = varint() else { return nil }
            return UpdateID(span: SpanID(span), position: position)
        default: return nil
        }
    }

    mutating func level() -> ObservationLevel? {
        guard let b = byte(), Int(b) < ByteWriter.levels.count else { return nil }
        return ByteWriter.levels[Int(b)]
    }

    mutating func state() -> TraceState? {
        guard let high = fixed(), let low = fixed(), let nIDs = count() else { return nil }
        var s = TraceState(traceID: TraceID(high: high, low: low))
        s.observationIDs.reserveCapacity(nIDs)
        for _ in 0..<nIDs {
            guard let id = fixed() else { return nil }
            s.observationIDs.insert(SpanID(id))
        }
        guard let maxEnd = time() else { return nil }
        s.minStart = base
        s.maxEnd = maxEnd
        guard let name = versionedString(), let user = versionedString(), let session = versionedString(), let version = versionedString(),
            let release = versionedString(), let environment = versionedString()
        else { return nil }
        (s.name, s.userID, s.sessionID, s.version, s.release, s.environment) = (name, user, session, version, release, environment)
        guard let tags = strings(), let isPublic = bool(), let input = versionedJSON(), let output = versionedJSON() else { return nil }
        s.tags = Set(tags)
        s.isPublic = isPublic
        (s.input, s.output) = (input, output)
        guard let root = readRoot(), let asRoot = readRoot(sameAs: [root]), let earliest = readRoot(sameAs: [root, asRoot]),
            let costPicos = optional({ $0.fixed() })
        else { return nil }
        (s.root, s.asRoot, s.earliest) = (root, asRoot, earliest)
        s.costPicos = costPicos.map { Int64(bitPattern: $0) }
        guard let worst = optional({ $0.level() }), let nEntries = count() else { return nil }
        s.worstLevel = worst
        for _ in 0..<nEntries {
            guard let scopeIndex = byte(), Int(scopeIndex) < ByteWriter.scopes.count, let target = optional({ $0.fixed() }), let kind = key(),
                let n = count()
            else { return nil }
            var bucket = [String: Versioned<JSONText>](minimumCapacity: n)
            for _ in 0..<n {
                guard let k = key(), let v = text(), let o = order() else { return nil }
                bucket[k] = Versioned(v, o)
            }
            s.entries[EntryKey(scope: ByteWriter.scopes[Int(scopeIndex)], target: target.map(SpanID.init), kind: kind)] = bucket
        }
        guard let nAccepted = count() else { return nil }
        var accepted = [UpdateID: Int](minimumCapacity: nAccepted)
        for _ in 0..<nAccepted {
            guard let id = updateID(), let size = count() else { return nil }
            accepted[id] = size
        }
        s.restoreAcceptedUpdates(accepted)
        guard let under = strings() else { return nil }
        s.arrivedUnder = Set(under)
        return s
    }

    mutating func observation(of traceID: TraceID) -> Observation? {
        guard let id = fixed(), let parent = optional({ $0.fixed() }), let typeIndex = byte(),
            Int(typeIndex) < ByteWriter.types.count, let name = string(), let start = time(), let end = time(),
            let completion = optional({ $0.time() }), let model = optionalString(), let modelID = optionalString(),
            let parameters = optional({ $0.jsonObject() }),
            let input = optional({ $0.text() }), let output = optional({ $0.text() }), let usage = jsonObject(), let cost = jsonObject(),
            let system = systemMetadata(), let level = level(), let status = optionalString(), let version = optionalString(),
            let release = optionalString(), let environment = string(), let promptName = optionalString(),
            let promptVersion = optional({ $0.int() })
        else { return nil }
        var o = Observation(
            id: SpanID(id), traceID: traceID, parentID: parent.map(SpanID.init), type: ByteWriter.types[Int(typeIndex)],
            name: name, startTimeUnixNano: start, endTimeUnixNano: end, completionStartTime: completion, model: model,
            modelParameters: parameters, input: nil, output: nil, usageDetails: UsageDetails(usage), costDetails: CostDetails(cost), systemMetadata: system,
            level: level, statusMessage: status, version: version, release: release, environment: environment, promptName: promptName,
            promptVersion: promptVersion
        )
        o.modelID = modelID
        (o.inputText, o.outputText) = (input, output)
        return o
    }
}
