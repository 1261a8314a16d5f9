import TracefoldModel

/// Writes spans in OTLP/JSON field names (lowerCamelCase, hex ids, int64 as
/// strings, enums as integers), one self-contained object per span with its
/// resource and scope. This is the `spans_jsonl` line format.
public enum OTLPJSONEncoder {
    public static func spanLine(_ span: Span, resource: Resource, scope: InstrumentationScope, into w: inout JSONWriter) {
        var o: [String: JSONValue] = [
            "traceId": .string(span.traceID.hex),
            "spanId": .string(span.spanID.hex),
            "parentSpanId": .string(span.parentSpanID?.hex ?? ""),
            "traceState": .string(span.traceState),
            "flags": .int(Int64(span.flags)),
            "name": .string(span.name),
            "kind": .int(Int64(span.kind.rawValue)),
            "startTimeUnixNano": .string(String(span.startTimeUnixNano)),
            "endTimeUnixNano": .string(String(span.endTimeUnixNano)),
            "attributes": attributes(span.attributes),
            "droppedAttributesCount": .int(Int64(span.droppedAttributesCount)),
            "events": .array(span.events.map { e in
                .object([
                    "timeUnixNano": .string(String(e.timeUnixNano)),
                    "name": .string(e.name),
                    "attributes": attributes(e.attributes),
                    "droppedAttributesCount": .int(Int64(e.droppedAttributesCount)),
                ])
            }),
            "droppedEventsCount": .int(Int64(span.droppedEventsCount)),
            "links": .array(span.links.map { l in
                .object([
                    "traceId": .string(HexCoding.encode(bytes: l.traceID)),
                    "spanId": .string(HexCoding.encode(bytes: l.spanID)),
                    "traceState": .string(l.traceState),
                    "attributes": attributes(l.attributes),
                    "droppedAttributesCount": .int(Int64(l.droppedAttributesCount)),
                    "flags": .int(Int64(l.flags)),
                ])
            }),
            "droppedLinksCount": .int(Int64(span.droppedLinksCount)),
            "status": .object(["code": .int(Int64(span.status.code.rawValue)), "message": .string(span.status.message)]),
        ]
        o["resource"] = .object([
            "attributes": attributes(resource.attributes),
            "droppedAttributesCount": .int(Int64(resource.droppedAttributesCount)),
        ])
        o["scope"] = .object([
            "name": .string(scope.name),
            "version": .string(scope.version),
            "attributes": attributes(scope.attributes),
            "droppedAttributesCount": .int(Int64(scope.droppedAttributesCount)),
        ])
        w.write(.object(o))
    }

    public static func attributes(_ attrs: [Attribute]) -> JSONValue {
        .array(attrs.map { .object(["key": .string($0.key), "value": anyValue($0.value)]) })
    }

    public static func anyValue(_ v: AttributeValue) -> JSONValue {
        switch v {
        case .empty: .object([:])
        case .string(let s): .object(["stringValue": .string(s)])
        case .bool(let b): .object(["boolValue": .bool(b)])
        case .int(let i): .object(["intValue": .string(String(i))])
        case .double(let d): .object(["doubleValue": .double(d)])
        case .bytes(let b): .object(["bytesValue": .string(Base64.encode(b))])
        case .array(let items): .object(["arrayValue": .object(["values": .array(items.map(anyValue))])])
        case .kvlist(let kvs): .object(["kvlistValue": .object(["values": attributes(kvs)])])
        }
    }
}
