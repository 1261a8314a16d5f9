import TracefoldModel

/// Decodes OTLP/JSON (SPEC §1.5) with the quirks real senders produce: hex
/// ids in either case, int64 as string or number, enums as integer or name,
/// lowerCamelCase or snake_case keys, unknown fields ignored, base64
/// `bytesValue`, and "NaN"/"Infinity" strings for doubles.
///
/// A body that is not JSON, or whose known fields have the wrong JSON type,
/// cannot be decoded and gets 400. Bad ids only reject their own span.
public enum OTLPJSONDecoder {
    public static func decode(_ body: [UInt8]) throws(OTLPDecodeError) -> DecodedExport {
        let root: JSONValue
        do {
            root = try JSONParser.parse(body)
        } catch {
            throw OTLPDecodeError(error.description)
        }
        guard case .object(let request) = root else {
            throw OTLPDecodeError("JSON body must be an ExportTraceServiceRequest object")
        }
        var validation = SpanValidation()
        var resourceSpans = [ResourceSpans]()
        for (r, rsValue) in try array(request, "resourceSpans", "resource_spans", path: "").enumerated() {
            let path = "resourceSpans[\(r)]"
            let rs = try object(rsValue, path: path)
            var scopes = [ScopeSpans]()
            for (s, ssValue) in try array(rs, "scopeSpans", "scope_spans", path: path).enumerated() {
                let sPath = "\(path).scopeSpans[\(s)]"
                let ss = try object(ssValue, path: sPath)
                var spans = [Span]()
                for (k, spanValue) in try array(ss, "spans", "spans", path: sPath).enumerated() {
                    let spanPath = "\(sPath).spans[\(k)]"
                    switch try span(try object(spanValue, path: spanPath), path: spanPath) {
                    case .success(let span): spans.append(span)
                    case .failure(let rejection): validation.reject(rejection.reason)
                    }
                }
                scopes.append(
                    ScopeSpans(
                        scope: try scope(ss, path: sPath),
                        schemaURL: try string(ss, "schemaUrl", "schema_url", path: sPath),
                        spans: spans
                    )
                )
            }
            resourceSpans.append(
                ResourceSpans(
                    resource: try resource(rs, path: path),
                    schemaURL: try string(rs, "schemaUrl", "schema_url", path: path),
                    scopeSpans: scopes
                )
            )
        }
        return DecodedExport(
            batch: SpanBatch(resourceSpans: resourceSpans),
            rejectedSpans: validation.rejected,
            firstRejection: validation.firstRejection
        )
    }

    typealias Object = [String: JSONValue]

    // MARK: Messages

    private static func span(_ o: Object, path: String) throws(OTLPDecodeError) -> Result<Span, SpanRejection> {
        let traceHex = try string(o, "traceId", "trace_id", path: path)
        let spanHex = try string(o, "spanId", "span_id", path: path)
        let parentHex = try string(o, "parentSpanId", "parent_span_id", path: path)
        guard let traceBytes = HexCoding.decode(traceHex) else {
            return .failure(SpanRejection("trace_id is not hex: \(quoted(traceHex))"))
        }
        guard let spanBytes = HexCoding.decode(spanHex) else {
            return .failure(SpanRejection("span_id is not hex: \(quoted(spanHex))"))
        }
        guard let parentBytes = HexCoding.decode(parentHex) else {
            return .failure(SpanRejection("parent_span_id is not hex: \(quoted(parentHex))"))
        }
        let ids = traceBytes.withUnsafeBytes { t in
            spanBytes.withUnsafeBytes { s in
                parentBytes.withUnsafeBytes { p in SpanValidation.ids(traceID: t, spanID: s, parent: p) }
            }
        }
        let (traceID, spanID, parent): (TraceID, SpanID, SpanID?)
        switch ids {
        case .success(let v): (traceID, spanID, parent) = v
        case .failure(let r): return .failure(r)
        }

        let kindRaw = try enumValue(o, "kind", "kind", path: path, names: SpanKind.allCases.map { ($0.protoName, $0.rawValue) })
        guard let kindRaw else { return .failure(SpanRejection("unknown span kind at \(path).kind")) }

        var status = SpanStatus()
        if let st = try optionalObject(o, "status", "status", path: path) {
            let codeRaw = try enumValue(st, "code", "code", path: "\(path).status", names: StatusCode.allCases.map { ($0.protoName, $0.rawValue) })
            guard let codeRaw else { return .failure(SpanRejection("unknown status code at \(path).status.code")) }
            status = SpanStatus(code: StatusCode(rawValue: codeRaw) ?? .unset, message: try string(st, "message", "message", path: "\(path).status"))
        }

        do {
            var events = [SpanEvent]()
            for (i, ev) in try array(o, "events", "events", path: path).enumerated() {
                let ePath = "\(path).events[\(i)]"
                let e = try object(ev, path: ePath)
                events.append(
                    SpanEvent(
                        timeUnixNano: try uint64(e, "timeUnixNano", "time_unix_nano", path: ePath),
                        name: try string(e, "name", "name", path: ePath),
                        attributes: try attributes(e, path: ePath),
                        droppedAttributesCount: try uint32(e, "droppedAttributesCount", "dropped_attributes_count", path: ePath)
                    )
                )
            }
            var links = [SpanLink]()
            for (i, lv) in try array(o, "links", "links", path: path).enumerated() {
                let lPath = "\(path).links[\(i)]"
                let l = try object(lv, path: lPath)
                let lt = try string(l, "traceId", "trace_id", path: lPath)
                let ls = try string(l, "spanId", "span_id", path: lPath)
                guard let ltb = HexCoding.decode(lt), let lsb = HexCoding.decode(ls) else {
                    return .failure(SpanRejection("link ids are not hex at \(lPath)"))
                }
                links.append(
                    SpanLink(
                        traceID: ltb, spanID: lsb,
                        traceState: try string(l, "traceState", "trace_state", path: lPath),
                        attributes: try attributes(l, path: lPath),
                        droppedAttributesCount: try uint32(l, "droppedAttributesCount", "dropped_attributes_count", path: lPath),
                        flags: try uint32(l, "flags", "flags", path: lPath)
                    )
                )
            }
            return .success(
                Span(
                    traceID: traceID, spanID: spanID, parentSpanID: parent,
                    traceState: try string(o, "traceState", "trace_state", path: path),
                    flags: try uint32(o, "flags", "flags", path: path),
                    name: try string(o, "name", "name", path: path),
                    kind: SpanKind(rawValue: kindRaw) ?? .unspecified,
                    startTimeUnixNano: try uint64(o, "startTimeUnixNano", "start_time_unix_nano", path: path),
                    endTimeUnixNano: try uint64(o, "endTimeUnixNano", "end_time_unix_nano", path: path),
                    attributes: try attributes(o, path: path),
                    droppedAttributesCount: try uint32(o, "droppedAttributesCount", "dropped_attributes_count", path: path),
                    events: events,
                    droppedEventsCount: try uint32(o, "droppedEventsCount", "dropped_events_count", path: path),
                    links: links,
                    droppedLinksCount: try uint32(o, "droppedLinksCount", "dropped_links_count", path: path),
                    status: status
                )
            )
        } catch let error as SpanRejection {
            return .failure(error)
        } catch let error as OTLPDecodeError {
            throw error
        } catch {
            throw OTLPDecodeError("\(error)")
        }
    }

    private static func resource(_ rs: Object, path: String) throws(OTLPDecodeError) -> Resource {
        guard let r = try optionalObject(rs, "resource", "resource", path: path) else { return Resource() }
        let rPath = "\(path).resource"
        return Resource(
            attributes: try lenientAttributes(r, path: rPath),
            droppedAttributesCount: try uint32(r, "droppedAttributesCount", "dropped_attributes_count", path: rPath)
        )
    }

    private static func scope(_ ss: Object, path: String) throws(OTLPDecodeError) -> InstrumentationScope {
        guard let s = try optionalObject(ss, "scope", "scope", path: path) else { return InstrumentationScope() }
        let sPath = "\(path).scope"
        return InstrumentationScope(
            name: try string(s, "name", "name", path: sPath),
            version: try string(s, "version", "version", path: sPath),
            attributes: try lenientAttributes(s, path: sPath),
            droppedAttributesCount: try uint32(s, "droppedAttributesCount", "dropped_attributes_count", path: sPath)
        )
    }

    /// Structural errors are thrown as OTLPDecodeError (400); a value nested
    /// too deep is a SpanRejection.
    private static func attributes(_ o: Object, path: String) throws -> [Attribute] {
        try keyValues(try array(o, "attributes", "attributes", path: path), path: "\(path).attributes", depth: 0)
    }

    /// Resource and scope attributes: a value nested too deep drops the
    /// attributes rather than rejecting every span under them; a structural
    /// error is still a 400.
    private static func lenientAttributes(_ o: Object, path: String) throws(OTLPDecodeError) -> [Attribute] {
        do {
            return try attributes(o, path: path)
        } catch let error as OTLPDecodeError {
            throw error
        } catch {
            return []
        }
    }

    private static func keyValues(_ list: [JSONValue], path: String, depth: Int) throws -> [Attribute] {
        var out = [Attribute]()
        out.reserveCapacity(list.count)
        for (i, kvValue) in list.enumerated() {
            let kvPath = "\(path)[\(i)]"
            let kv = try object(kvValue, path: kvPath)
            let key = try string(kv, "key", "key", path: kvPath)
            let value = try optionalObject(kv, "value", "value", path: kvPath)
            out.append(Attribute(key, try value.map { try anyValue($0, path: "\(kvPath).value", depth: depth) } ?? .empty))
        }
        return out
    }

    private static func anyValue(_ o: Object, path: String, depth: Int) throws -> AttributeValue {
        guard depth < OTLPDecoder.maxAttributeDepth else {
            throw SpanRejection("attribute value nested deeper than \(OTLPDecoder.maxAttributeDepth) levels")
        }
        if let v = field(o, "stringValue", "string_value") {
            guard case .string(let s) = v else { throw typeError(path, "stringValue", "a string") }
            return .string(s)
        }
        if let v = field(o, "boolValue", "bool_value") {
            guard case .bool(let b) = v else { throw typeError(path, "boolValue", "a boolean") }
            return .bool(b)
        }
        if let v = field(o, "intValue", "int_value") {
            guard let i = int64(v) else { throw typeError(path, "intValue", "an int64 (number or string)") }
            return .int(i)
        }
        if let v = field(o, "doubleValue", "double_value") {
            guard let d = double(v) else { throw typeError(path, "doubleValue", "a number") }
            return .double(d)
        }
        if let v = field(o, "bytesValue", "bytes_value") {
            guard case .string(let s) = v, let bytes = Base64.decode(s) else {
                throw typeError(path, "bytesValue", "a base64 string")
            }
            return .bytes(bytes)
        }
        if let v = field(o, "arrayValue", "array_value") {
            let a = try object(v, path: "\(path).arrayValue")
            let values = try array(a, "values", "values", path: "\(path).arrayValue")
            var items = [AttributeValue]()
            items.reserveCapacity(values.count)
            for (i, item) in values.enumerated() {
                items.append(try anyValue(try object(item, path: "\(path).arrayValue.values[\(i)]"), path: "\(path).arrayValue.values[\(i)]", depth: depth + 1))
            }
            return .array(items)
        }
        if let v = field(o, "kvlistValue", "kvlist_value") {
            let kv = try object(v, path: "\(path).kvlistValue")
            return .kvlist(try keyValues(try array(kv, "values", "values", path: "\(path).kvlistValue"), path: "\(path).kvlistValue.values", depth: depth + 1))
        }
        return .empty
    }

    // MARK: Field access

    /// Looks a field up by its lowerCamelCase or snake_case name. JSON null
    /// counts as absent, as in proto3 JSON.
    private static func field(_ o: Object, _ camel: String, _ snake: String) -> JSONValue? {
        let v = o[camel] ?? o[snake]
        if case .null = v { return nil }
        return v
    }

    private static func typeError(_ path: String, _ name: String, _ expected: String) -> OTLPDecodeError {
        OTLPDecodeError("\(path.isEmpty ? name : "\(path).\(name)"): expected \(expected)")
    }

    private static func object(_ v: JSONValue, path: String) throws(OTLPDecodeError) -> Object {
        guard case .object(let o) = v else { throw OTLPDecodeError("\(path): expected an object") }
        return o
    }

    private static func optionalObject(_ o: Object, _ camel: String, _ snake: String, path: String) throws(OTLPDecodeError) -> Object? {
        guard let v = field(o, camel, snake) else { return nil }
        guard case .object(let obj) = v else { throw typeError(path, camel, "an object") }
        return obj
    }

    private static func array(_ o: Object, _ camel: String, _ snake: String, path: String) throws(OTLPDecodeError) -> [JSONValue] {
        guard let v = field(o, camel, snake) else { return [] }
        guard case .array(let a) = v else { throw typeError(path, camel, "an array") }
        return a
    }

    private static func string(_ o: Object, _ camel: String, _ snake: String, path: String) throws(OTLPDecodeError) -> String {
        guard let v = field(o, camel, snake) else { return "" }
        guard case .string(let s) = v else { throw typeError(path, camel, "a string") }
        return s
    }

    private static func uint64(_ o: Object, _ camel: String, _ snake: String, path: String) throws(OTLPDecodeError) -> UInt64 {
        guard let v = field(o, camel, snake) else { return 0 }
        switch v {
        case .int(let i) where i >= 0: return UInt64(i)
        case .string(let s): if let u = UInt64(s) { return u }
        case .double(let d) where d >= 0 && d < 1.8446744073709552e19 && d == d.rounded(): return UInt64(d)
        default: break
        }
        throw typeError(path, camel, "an unsigned 64-bit integer (number or string)")
    }

    private static func uint32(_ o: Object, _ camel: String, _ snake: String, path: String) throws(OTLPDecodeError) -> UInt32 {
        guard let v = field(o, camel, snake) else { return 0 }
        switch v {
        case .int(let i): if let u = UInt32(exactly: i) { return u }
        case .string(let s): if let u = UInt32(s) { return u }
        default: break
        }
        throw typeError(path, camel, "an unsigned 32-bit integer")
    }

    private static func int64(_ v: JSONValue) -> Int64? {
        switch v {
        case .int(let i): return i
        case .string(let s): return Int64(s)
        case .double(let d) where d == d.rounded() && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    private static func double(_ v: JSONValue) -> Double? {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        case .string(let s): return Double(s)
        default: return nil
        }
    }

    /// An enum given as an integer or as its proto name. Returns nil for an
    /// unknown name; absent means 0.
    private static func enumValue(
        _ o: Object, _ camel: String, _ snake: String, path: String, names: [(String, Int32)]
    ) throws(OTLPDecodeError) -> Int32? {
        guard let v = field(o, camel, snake) else { return 0 }
        switch v {
        case .int(let i):
            guard let e = Int32(exactly: i) else { throw typeError(path, camel, "an enum value") }
            return e
        case .string(let s):
            if let n = Int32(s) { return n }
            return names.first { $0.0 == s }?.1
        default:
            throw typeError(path, camel, "an enum integer or name")
        }
    }

    private static func quoted(_ s: String) -> String {
        "\"\(s.count > 40 ? String(s.prefix(40)) + "…" : s)\""
    }
}
