import TracefoldModel

/// Writes spans in OTLP/JSON field names (lowerCamelCase, hex ids, int64 as
/// strings, enums as integers), one self-contained object per span with its
/// resource and scope. This is the `spans_jsonl` line format.
///
/// It writes straight into the byte buffer, keys in sorted order, instead of
/// building a `JSONValue` per span: the exporter runs once per span on the
/// pipeline thread, and the intermediate dictionaries cost more than the
/// writing itself.
public enum OTLPJSONEncoder {
    public static func spanLine(_ span: Span, resource: Resource, scope: InstrumentationScope, into w: inout JSONWriter) {
        w.writeRaw("{\"attributes\":")
        attributes(span.attributes, into: &w)
        w.writeRaw(",\"droppedAttributesCount\":")
        w.writeUInt(UInt64(span.droppedAttributesCount))
        w.writeRaw(",\"droppedEventsCount\":")
        w.writeUInt(UInt64(span.droppedEventsCount))
        w.writeRaw(",\"droppedLinksCount\":")
        w.writeUInt(UInt64(span.droppedLinksCount))
        w.writeRaw(",\"endTimeUnixNano\":")
        w.writeString(String(span.endTimeUnixNano))
        w.writeRaw(",\"events\":[")
        for (i, e) in span.events.enumerated() {
            if i > 0 { w.writeRaw(",") }
            w.writeRaw("{\"attributes\":")
            attributes(e.attributes, into: &w)
            w.writeRaw(",\"droppedAttributesCount\":")
            w.writeUInt(UInt64(e.droppedAttributesCount))
            w.writeRaw(",\"name\":")
            w.writeString(e.name)
            w.writeRaw(",\"timeUnixNano\":")
            w.writeString(String(e.timeUnixNano))
            w.writeRaw("}")
        }
        w.writeRaw("],\"flags\":")
        w.writeUInt(UInt64(span.flags))
        w.writeRaw(",\"kind\":")
        w.writeInt(Int64(span.kind.rawValue))
        w.writeRaw(",\"links\":[")
        for (i, l) in span.links.enumerated() {
            if i > 0 { w.writeRaw(",") }
            w.writeRaw("{\"attributes\":")
            attributes(l.attributes, into: &w)
            w.writeRaw(",\"droppedAttributesCount\":")
            w.writeUInt(UInt64(l.droppedAttributesCount))
            w.writeRaw(",\"flags\":")
            w.writeUInt(UInt64(l.flags))
            w.writeRaw(",\"spanId\":")
            w.writeString(HexCoding.encode(bytes: l.spanID))
            w.writeRaw(",\"traceId\":")
            w.writeString(HexCoding.encode(bytes: l.traceID))
            w.writeRaw(",\"traceState\":")
            w.writeString(l.traceState)
            w.writeRaw("}")
        }
        w.writeRaw("],\"name\":")
        w.writeString(span.name)
        w.writeRaw(",\"parentSpanId\":")
        w.writeString(span.parentSpanID?.hex ?? "")
        w.writeRaw(",\"resource\":{\"attributes\":")
        attributes(resource.attributes, into: &w)
        w.writeRaw(",\"droppedAttributesCount\":")
        w.writeUInt(UInt64(resource.droppedAttributesCount))
        w.writeRaw("},\"scope\":{\"attributes\":")
        attributes(scope.attributes, into: &w)
        w.writeRaw(",\"droppedAttributesCount\":")
        w.writeUInt(UInt64(scope.droppedAttributesCount))
        w.writeRaw(",\"name\":")
        w.writeString(scope.name)
        w.writeRaw(",\"version\":")
        w.writeString(scope.version)
        w.writeRaw("},\"spanId\":")
        w.writeString(span.spanID.hex)
        w.writeRaw(",\"startTimeUnixNano\":")
        w.writeString(String(span.startTimeUnixNano))
        w.writeRaw(",\"status\":{\"code\":")
        w.writeInt(Int64(span.status.code.rawValue))
        w.writeRaw(",\"message\":")
        w.writeString(span.status.message)
        w.writeRaw("},\"traceId\":")
        w.writeString(span.traceID.hex)
        w.writeRaw(",\"traceState\":")
        w.writeString(span.traceState)
        w.writeRaw("}")
    }

    static func attributes(_ attrs: [Attribute], into w: inout JSONWriter) {
        w.writeRaw("[")
        for (i, a) in attrs.enumerated() {
            if i > 0 { w.writeRaw(",") }
            w.writeRaw("{\"key\":")
            w.writeString(a.key)
            w.writeRaw(",\"value\":")
            anyValue(a.value, into: &w)
            w.writeRaw("}")
        }
        w.writeRaw("]")
    }

    static func anyValue(_ v: AttributeValue, into w: inout JSONWriter) {
        switch v {
        case .empty: w.writeRaw("{}")
        case .string(let s): w.writeRaw("{\"stringValue\":"); w.writeString(s); w.writeRaw("}")
        case .bool(let b): w.writeRaw(b ? "{\"boolValue\":true}" : "{\"boolValue\":false}")
        case .int(let i): w.writeRaw("{\"intValue\":"); w.writeString(String(i)); w.writeRaw("}")
        case .double(let d): w.writeRaw("{\"doubleValue\":"); w.writeDouble(d); w.writeRaw("}")
        case .bytes(let b): w.writeRaw("{\"bytesValue\":"); w.writeString(Base64.encode(b)); w.writeRaw("}")
        case .array(let items):
            w.writeRaw("{\"arrayValue\":{\"values\":[")
            for (i, item) in items.enumerated() {
                if i > 0 { w.writeRaw(",") }
                anyValue(item, into: &w)
            }
            w.writeRaw("]}}")
        case .kvlist(let kvs):
            w.writeRaw("{\"kvlistValue\":{\"values\":")
            attributes(kvs, into: &w)
            w.writeRaw("}}")
        }
    }
}
