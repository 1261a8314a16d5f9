import TracefoldModel

/// Encodes a `SpanBatch` as an `ExportTraceServiceRequest`. Proto3 defaults
/// (zero, empty) are left out, as every protobuf encoder does. Pure Swift:
/// TracefoldTracing's exporter sends what it writes, and the store, the load
/// generator and the tests use it too, none of them through protobuf-c.
public enum OTLPProtobufEncoder {
    public static func encode(_ batch: SpanBatch) -> [UInt8] {
        var w = ProtobufWriter()
        for rs in batch.resourceSpans {
            w.message(1) { encodeResourceSpans(rs, into: &$0) }
        }
        return w.bytes
    }

    static func encodeResourceSpans(_ rs: ResourceSpans, into w: inout ProtobufWriter) {
        w.message(1) { encodeResource(rs.resource, into: &$0) }
        for ss in rs.scopeSpans {
            w.message(2) { s in
                s.message(1) { encodeScope(ss.scope, into: &$0) }
                for span in ss.spans { s.message(2) { encodeSpan(span, into: &$0) } }
                if !ss.schemaURL.isEmpty { s.string(3, ss.schemaURL) }
            }
        }
        if !rs.schemaURL.isEmpty { w.string(3, rs.schemaURL) }
    }

    static func encodeResource(_ resource: Resource, into r: inout ProtobufWriter) {
        encodeAttributes(resource.attributes, field: 1, into: &r)
        if resource.droppedAttributesCount != 0 { r.varint(2, UInt64(resource.droppedAttributesCount)) }
    }

    static func encodeScope(_ scope: InstrumentationScope, into sc: inout ProtobufWriter) {
        if !scope.name.isEmpty { sc.string(1, scope.name) }
        if !scope.version.isEmpty { sc.string(2, scope.version) }
        encodeAttributes(scope.attributes, field: 3, into: &sc)
        if scope.droppedAttributesCount != 0 { sc.varint(4, UInt64(scope.droppedAttributesCount)) }
    }

    /// A resource's message body (its fields, without tag or length).
    public static func encode(_ resource: Resource) -> [UInt8] {
        var w = ProtobufWriter()
        encodeResource(resource, into: &w)
        return w.bytes
    }

    /// A scope's message body (its fields, without tag or length).
    public static func encode(_ scope: InstrumentationScope) -> [UInt8] {
        var w = ProtobufWriter()
        encodeScope(scope, into: &w)
        return w.bytes
    }

    /// A request of one span from message bodies already encoded: a
    /// resource's and a scope's (`encode(_:)`), and the span's as it
    /// arrived. It decodes as `encode` of the same span under the same
    /// resource and scope does; the store keeps one per span this way
    /// without encoding the span again.
    public static func oneSpanRequest(resource: [UInt8], scope: [UInt8], span: ArraySlice<UInt8>) -> [UInt8] {
        // The parts, and five tags and lengths of at most 1 + 10 bytes each:
        // grown as it was written, the buffer was four allocations a span.
        var w = ProtobufWriter(reservingCapacity: resource.count + scope.count + span.count + 55)
        w.message(1) { rs in
            rs.bytes(1, resource)
            rs.message(2) { ss in
                ss.bytes(1, scope)
                ss.bytes(2, span)
            }
        }
        return w.bytes
    }

    public static func encodeSpan(_ span: Span, into w: inout ProtobufWriter) {
        w.bytes(1, span.traceID.bytes)
        w.bytes(2, span.spanID.bytes)
        if !span.traceState.isEmpty { w.string(3, span.traceState) }
        if let parent = span.parentSpanID { w.bytes(4, parent.bytes) }
        if !span.name.isEmpty { w.string(5, span.name) }
        if span.kind != .unspecified { w.varint(6, UInt64(span.kind.rawValue)) }
        w.fixed64(7, span.startTimeUnixNano)
        w.fixed64(8, span.endTimeUnixNano)
        encodeAttributes(span.attributes, field: 9, into: &w)
        if span.droppedAttributesCount != 0 { w.varint(10, UInt64(span.droppedAttributesCount)) }
        for e in span.events {
            w.message(11) { ev in
                ev.fixed64(1, e.timeUnixNano)
                if !e.name.isEmpty { ev.string(2, e.name) }
                encodeAttributes(e.attributes, field: 3, into: &ev)
                if e.droppedAttributesCount != 0 { ev.varint(4, UInt64(e.droppedAttributesCount)) }
            }
        }
        if span.droppedEventsCount != 0 { w.varint(12, UInt64(span.droppedEventsCount)) }
        for l in span.links {
            w.message(13) { lw in
                lw.bytes(1, l.traceID)
                lw.bytes(2, l.spanID)
                if !l.traceState.isEmpty { lw.string(3, l.traceState) }
                encodeAttributes(l.attributes, field: 4, into: &lw)
                if l.droppedAttributesCount != 0 { lw.varint(5, UInt64(l.droppedAttributesCount)) }
                if l.flags != 0 { lw.fixed32(6, l.flags) }
            }
        }
        if span.droppedLinksCount != 0 { w.varint(14, UInt64(span.droppedLinksCount)) }
        if span.status != SpanStatus() {
            w.message(15) { st in
                if !span.status.message.isEmpty { st.string(2, span.status.message) }
                if span.status.code != .unset { st.varint(3, UInt64(span.status.code.rawValue)) }
            }
        }
        if span.flags != 0 { w.fixed32(16, span.flags) }
    }

    static func encodeAttributes(_ attributes: [Attribute], field: Int, into w: inout ProtobufWriter) {
        for a in attributes {
            w.message(field) { kv in
                kv.string(1, a.key)
                kv.message(2) { encodeValue(a.value, into: &$0) }
            }
        }
    }

    static func encodeValue(_ value: AttributeValue, into w: inout ProtobufWriter) {
        switch value {
        case .empty: break
        case .string(let s): w.string(1, s)
        case .bool(let b): w.bool(2, b)
        case .int(let i): w.int64(3, i)
        case .double(let d): w.double(4, d)
        case .array(let items):
            w.message(5) { a in for item in items { a.message(1) { encodeValue(item, into: &$0) } } }
        case .kvlist(let kvs):
            w.message(6) { encodeAttributes(kvs, field: 1, into: &$0) }
        case .bytes(let b): w.bytes(7, b)
        }
    }
}
