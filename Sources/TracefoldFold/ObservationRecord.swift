import TracefoldMapping
import TracefoldModel

/// An observation's record as the store keeps it: what its JSON (SPEC
/// §2.1) is made of, in the order the JSON writes its fields, without the
/// field names. Times are integers, ids are bytes, an entry's label is left
/// to its kind and its span id to the observation's; the JSON-valued fields
/// (input, output, metadata, the details, entry values) are kept as their
/// JSON text. Rendering is then a copy with the field names put around, no
/// parse and no dictionary, so the fold never writes an observation's JSON:
/// the exporter and the query API render it when they read it. On the bench
/// load the stored record shrinks from 1,345 bytes of JSON to about 560.
///
/// Stored, so versioned: the first byte is `format`. A record stored before
/// this form is JSON text, which starts with `{`. Format 2 added `modelId`
/// after `model`; a format-1 record renders it as null.
public enum ObservationRecord {
    static let format: UInt8 = 2

    /// The stored form of `o`, whose user metadata and entries come from
    /// `state`; `entries` are its entry keys, sorted.
    /// `version` 1 writes the form stored before `modelId`, which tests
    /// read back.
    static func encode(_ o: Observation, metadata: [String: JSONText], entries: some Collection<EntryKey>, state: TraceState, version: UInt8 = format) -> [UInt8] {
        encode(o, entries: entries, state: state, version: version) { $0.writeObject(metadata) }
    }

    /// The stored form of `o` with its own metadata
    /// (`RecordRenderer.writeMetadata`), written in `scratch` (left empty,
    /// its room kept for the next) and returned in an array of its size.
    /// Written in an array of its own, a record took one allocation of a
    /// guessed size and then, for the export cache, a copy of its size.
    static func encode(_ o: Observation, entries: some Collection<EntryKey>, state: TraceState, scratch: inout [UInt8]) -> [UInt8] {
        scratch.removeAll(keepingCapacity: true)
        var w = Writer(b: ByteWriter(base: o.startTimeUnixNano, appendingTo: scratch))
        scratch = []
        encode(o, entries: entries, state: state, version: format, into: &w) { RecordRenderer.writeMetadata(of: o, state: state, into: &$0) }
        defer { swap(&w.b.bytes, &scratch) }
        return [UInt8](unsafeUninitializedCapacity: w.b.bytes.count) { buffer, n in
            n = buffer.initialize(fromContentsOf: w.b.bytes)
        }
    }

    private static func encode(
        _ o: Observation, entries: some Collection<EntryKey>, state: TraceState, version: UInt8, metadata: (inout JSONWriter) -> Void
    ) -> [UInt8] {
        var w = Writer(base: o.startTimeUnixNano)
        encode(o, entries: entries, state: state, version: version, into: &w, metadata: metadata)
        return w.b.bytes
    }

    private static func encode(
        _ o: Observation, entries: some Collection<EntryKey>, state: TraceState, version: UInt8, into w: inout Writer,
        metadata: (inout JSONWriter) -> Void
    ) {
        w.b.bytes.append(version)
        w.b.fixed(o.traceID.high)
        w.b.fixed(o.traceID.low)
        w.b.fixed(o.id.value)
        w.b.fixed(o.startTimeUnixNano)
        // The rest in the order `render` writes the fields.
        w.b.optional(o.completionStartTime) { $0.time($1) }
        w.costs(o.costDetails)
        w.b.time(o.endTimeUnixNano)
        w.b.string(o.environment)
        w.b.optional(o.inputText) { $0.text($1) }
        w.b.level(o.level)
        w.json(metadata)
        w.b.count(entries.count)
        for key in entries {
            let bucket = state.entries[key] ?? [:]
            w.b.string(key.kind)
            w.b.bytes.append(ByteWriter.scopes.firstIndex(of: key.scope).map(UInt8.init) ?? 0)
            w.b.optional(RecordRenderer.updatedAt(bucket)) { $0.time($1) }
            w.values(bucket)
        }
        w.b.optionalString(o.model)
        if version > 1 { w.b.optionalString(o.modelID) }
        w.optionalJSON(o.modelParameters.map(JSONValue.object))
        w.b.string(o.name)
        w.b.optional(o.outputText) { $0.text($1) }
        w.b.optional(o.parentID) { $0.fixed($1.value) }
        w.b.optionalString(o.promptName)
        w.b.optional(o.promptVersion) { $0.int($1) }
        w.b.optionalString(o.release)
        w.b.optionalString(o.statusMessage)
        w.b.bytes.append(ByteWriter.types.firstIndex(of: o.type).map(UInt8.init) ?? 0)
        w.json { o.usageDetails.write(into: &$0) }
        w.b.optionalString(o.version)
    }

    /// The record's JSON; nil for bytes `encode` did not produce. (Records
    /// stored as JSON text before this form are told apart by the store.)
    public static func json(_ stored: [UInt8]) -> [UInt8]? {
        var w = JSONWriter(reservingCapacity: stored.count * 2 + 512)
        let ok = stored.withUnsafeBytes { render($0, into: &w) }
        return ok ? w.bytes : nil
    }

    /// Appends the record's JSON to `w`; false, with `w` partly written,
    /// for bytes `encode` did not produce. With `continuing`, the caller has
    /// opened the object and written fields of its own: the record's fields
    /// follow them after a comma.
    public static func render(_ raw: UnsafeRawBufferPointer, into w: inout JSONWriter, continuing: Bool = false) -> Bool {
        var r = ByteReader(raw)
        guard let version = r.byte(), version == 1 || version == format, let high = r.fixed(), let low = r.fixed(), let id = r.fixed(),
            let start = r.fixed()
        else { return false }
        r.base = start
        if !continuing { w.beginObject() }
        w.key("completionStartTime")
        guard let completion = r.optional({ $0.time() }) else { return false }
        writeTime(completion, into: &w)
        guard copyJSON("costDetails", &r, &w), let end = r.time() else { return false }
        writeTime("endTime", "endTimeUnixNano", end, into: &w)
        guard copyString("environment", &r, &w) else { return false }
        w.key("id")
        w.writeHex(SpanID(id))
        guard copyOptionalJSON("input", &r, &w) else { return false }
        // The same arithmetic as the record always had: a negative
        // duration is refused when the span is mapped.
        w.key("latency")
        w.write(.double(Double(end &- start) / 1e9))
        guard let level = r.byte(), Int(level) < ByteWriter.levels.count else { return false }
        w.key("level")
        w.writeString(ByteWriter.levels[Int(level)].rawValue)
        guard copyJSON("metadata", &r, &w), let entries = r.count() else { return false }
        w.key("metadataEntries")
        w.beginArray()
        for _ in 0..<entries {
            w.nextElement()
            guard let kind = r.slice(), let scope = r.byte(), Int(scope) < ByteWriter.scopes.count,
                let updated = r.optional({ $0.time() })
            else { return false }
            w.beginObject()
            w.key("kind")
            w.writeString(utf8: kind)
            w.key("label")
            w.writeString(MetadataKind.label(utf8: kind))
            w.field("scope", string: ByteWriter.scopes[Int(scope)].rawValue)
            w.key("spanId")
            w.writeHex(SpanID(id))
            w.key("updatedAt")
            writeTime(updated, into: &w)
            guard copyJSON("values", &r, &w) else { return false }
            w.endObject()
        }
        w.endArray()
        guard copyOptionalString("model", &r, &w) else { return false }
        if version == 1 {
            w.key("modelId")
            w.writeRaw("null")
        } else if !copyOptionalString("modelId", &r, &w) {
            return false
        }
        guard copyOptionalJSON("modelParameters", &r, &w), copyString("name", &r, &w),
            copyOptionalJSON("output", &r, &w), let parent = r.optional({ $0.fixed() })
        else { return false }
        w.key("parentObservationId")
        if let parent { w.writeHex(SpanID(parent)) } else { w.writeRaw("null") }
        guard copyOptionalString("promptName", &r, &w), let promptVersion = r.optional({ $0.int() }) else { return false }
        w.field("promptVersion", promptVersion.map(JSONValue.int) ?? .null)
        guard copyOptionalString("release", &r, &w) else { return false }
        writeTime("startTime", "startTimeUnixNano", start, into: &w)
        guard copyOptionalString("statusMessage", &r, &w) else { return false }
        w.key("traceId")
        w.writeHex(TraceID(high: high, low: low))
        guard let type = r.byte(), Int(type) < ByteWriter.types.count else { return false }
        w.key("type")
        w.writeString(ByteWriter.types[Int(type)].rawValue)
        guard copyJSON("usageDetails", &r, &w), copyOptionalString("version", &r, &w), r.atEnd else { return false }
        w.endObject()
        return true
    }

    private static func writeTime(_ t: UInt64?, into w: inout JSONWriter) {
        if let t { w.writeISOTime(unixNano: t) } else { w.writeRaw("null") }
    }

    /// A time as its ISO field and its nanosecond field.
    private static func writeTime(_ iso: StaticString, _ nanos: StaticString, _ t: UInt64, into w: inout JSONWriter) {
        w.key(iso)
        w.writeISOTime(unixNano: t)
        w.key(nanos)
        w.writeDecimalString(t)
    }

    private static func copyJSON(_ name: StaticString, _ r: inout ByteReader, _ w: inout JSONWriter) -> Bool {
        guard let json = r.slice() else { return false }
        w.key(name)
        w.writeRaw(json)
        return true
    }

    private static func copyOptionalJSON(_ name: StaticString, _ r: inout ByteReader, _ w: inout JSONWriter) -> Bool {
        guard let json = r.optional({ $0.slice() }) else { return false }
        w.key(name)
        if let json { w.writeRaw(json) } else { w.writeRaw("null") }
        return true
    }

    private static func copyString(_ name: StaticString, _ r: inout ByteReader, _ w: inout JSONWriter) -> Bool {
        guard let utf8 = r.slice() else { return false }
        w.key(name)
        w.writeString(utf8: utf8)
        return true
    }

    private static func copyOptionalString(_ name: StaticString, _ r: inout ByteReader, _ w: inout JSONWriter) -> Bool {
        guard let utf8 = r.optional({ $0.slice() }) else { return false }
        w.key(name)
        if let utf8 { w.writeString(utf8: utf8) } else { w.writeRaw("null") }
        return true
    }

    /// A `ByteWriter` that writes each JSON-valued field after its length.
    private struct Writer {
        var b: ByteWriter

        init(base: UInt64) { b = ByteWriter(base: base) }
        init(b: ByteWriter) { self.b = b }

        /// The value's JSON text, after its length.
        mutating func json(_ v: JSONValue) {
            json { $0.write(v) }
        }

        /// What `write` writes, after its length, in place (`ByteWriter.counted`:
        /// a JSON buffer of its own was a second allocation for every
        /// observation stored).
        mutating func json(_ write: (inout JSONWriter) -> Void) {
            b.counted { JSONWriter.appending(to: &$0, write) }
        }

        /// The costs' JSON text, after its length.
        mutating func costs(_ c: CostDetails) {
            json { c.write(into: &$0) }
        }

        /// An entry's values as a JSON object, after its length.
        mutating func values(_ bucket: [String: Versioned<JSONText>]) {
            json { RecordRenderer.writeValues(bucket, into: &$0) }
        }

        mutating func optionalJSON(_ v: JSONValue?) {
            guard let v else { return b.bytes.append(0) }
            b.bytes.append(1)
            json(v)
        }
    }
}
