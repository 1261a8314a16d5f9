internal import CProtobufC
internal import OTLPProtoC
import TracefoldModel

/// Decodes `ExportTraceServiceRequest` protobuf with protobuf-c, then copies
/// the C structs into Swift value types and frees them at once, so nothing
/// C-owned outlives the call.
///
/// This was the collector's decoder; `OTLPProtobufDecoder` replaced it on
/// the request path (it reads the wire bytes straight into the same values
/// at a third of the cost). It stays as the reference: the tests and the
/// protobuf fuzz target check that both accept and refuse the same bodies
/// and give the same spans, and `tracefold-loadgen --decode-bench` times
/// both.
public enum ProtobufCDecoder {
    public static func decode(_ body: [UInt8]) throws(OTLPDecodeError) -> DecodedExport {
        guard ProtobufNestingCheck.withinLimit(body) else {
            throw OTLPDecodeError("attribute values nest deeper than \(ProtobufNestingCheck.maxAnyValueDepth) levels")
        }
        let unpacked = body.withUnsafeBufferPointer { buf in
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(nil, buf.count, buf.baseAddress)
        }
        guard let request = unpacked else {
            throw OTLPDecodeError("protobuf body is not a valid ExportTraceServiceRequest")
        }
        defer { opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(request, nil) }

        var validation = SpanValidation()
        var resourceSpans = [ResourceSpans]()
        let req = request.pointee
        resourceSpans.reserveCapacity(req.n_resource_spans)
        for r in 0..<req.n_resource_spans {
            guard let rsPtr = req.resource_spans[r] else { continue }
            let rs = rsPtr.pointee
            var scopes = [ScopeSpans]()
            scopes.reserveCapacity(rs.n_scope_spans)
            for s in 0..<rs.n_scope_spans {
                guard let ssPtr = rs.scope_spans[s] else { continue }
                let ss = ssPtr.pointee
                var spans = [Span]()
                spans.reserveCapacity(ss.n_spans)
                for k in 0..<ss.n_spans {
                    guard let spanPtr = ss.spans[k] else { continue }
                    switch span(spanPtr.pointee) {
                    case .success(let span): spans.append(span)
                    case .failure(let rejection): validation.reject(rejection.reason)
                    }
                }
                scopes.append(ScopeSpans(scope: scope(ss.scope), schemaURL: string(ss.schema_url), spans: spans))
            }
            resourceSpans.append(
                ResourceSpans(resource: resource(rs.resource), schemaURL: string(rs.schema_url), scopeSpans: scopes)
            )
        }
        return DecodedExport(
            batch: SpanBatch(resourceSpans: resourceSpans),
            rejectedSpans: validation.rejected,
            firstRejection: validation.firstRejection
        )
    }

    /// protobuf-c alone: unpack and free, no copy into Swift values. The
    /// decode benchmark uses it to measure the floor under `decode`.
    public static func unpackOnly(_ body: [UInt8]) -> Bool {
        let unpacked = body.withUnsafeBufferPointer { buf in
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(nil, buf.count, buf.baseAddress)
        }
        guard let request = unpacked else { return false }
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(request, nil)
        return true
    }

    private typealias CSpan = Opentelemetry__Proto__Trace__V1__Span
    private typealias CKeyValue = Opentelemetry__Proto__Common__V1__KeyValue
    private typealias CAnyValue = Opentelemetry__Proto__Common__V1__AnyValue

    private static func span(_ s: CSpan) -> Result<Span, SpanRejection> {
        let ids = SpanValidation.ids(
            traceID: raw(s.trace_id), spanID: raw(s.span_id), parent: raw(s.parent_span_id)
        )
        guard case .success(let (traceID, spanID, parent)) = ids else {
            if case .failure(let r) = ids { return .failure(r) }
            fatalError("unreachable")
        }
        do {
            var events = [SpanEvent]()
            events.reserveCapacity(s.n_events)
            for i in 0..<s.n_events {
                guard let e = s.events[i]?.pointee else { continue }
                events.append(
                    SpanEvent(
                        timeUnixNano: e.time_unix_nano, name: string(e.name),
                        attributes: try attributes(e.attributes, e.n_attributes),
                        droppedAttributesCount: e.dropped_attributes_count
                    )
                )
            }
            var links = [SpanLink]()
            links.reserveCapacity(s.n_links)
            for i in 0..<s.n_links {
                guard let l = s.links[i]?.pointee else { continue }
                links.append(
                    SpanLink(
                        traceID: Array(raw(l.trace_id)), spanID: Array(raw(l.span_id)),
                        traceState: string(l.trace_state),
                        attributes: try attributes(l.attributes, l.n_attributes),
                        droppedAttributesCount: l.dropped_attributes_count, flags: l.flags
                    )
                )
            }
            var status = SpanStatus()
            if let st = s.status?.pointee {
                status = SpanStatus(code: StatusCode(rawValue: Int32(truncatingIfNeeded: st.code.rawValue)) ?? .unset, message: string(st.message))
            }
            return .success(
                Span(
                    traceID: traceID, spanID: spanID, parentSpanID: parent, traceState: string(s.trace_state),
                    flags: s.flags, name: string(s.name),
                    kind: SpanKind(rawValue: Int32(truncatingIfNeeded: s.kind.rawValue)) ?? .unspecified,
                    startTimeUnixNano: s.start_time_unix_nano, endTimeUnixNano: s.end_time_unix_nano,
                    attributes: try attributes(s.attributes, s.n_attributes),
                    droppedAttributesCount: s.dropped_attributes_count,
                    events: events, droppedEventsCount: s.dropped_events_count,
                    links: links, droppedLinksCount: s.dropped_links_count, status: status
                )
            )
        } catch {
            return .failure(error)
        }
    }

    private static func resource(_ r: UnsafeMutablePointer<Opentelemetry__Proto__Resource__V1__Resource>?) -> Resource {
        guard let r = r?.pointee else { return Resource() }
        // A resource or scope too deep to convert keeps its other attributes;
        // rejecting every span under it would be out of proportion.
        let attrs = (try? attributes(r.attributes, r.n_attributes)) ?? []
        return Resource(attributes: attrs, droppedAttributesCount: r.dropped_attributes_count)
    }

    private static func scope(_ s: UnsafeMutablePointer<Opentelemetry__Proto__Common__V1__InstrumentationScope>?) -> InstrumentationScope {
        guard let s = s?.pointee else { return InstrumentationScope() }
        return InstrumentationScope(
            name: string(s.name), version: string(s.version),
            attributes: (try? attributes(s.attributes, s.n_attributes)) ?? [],
            droppedAttributesCount: s.dropped_attributes_count
        )
    }

    private static func attributes(
        _ list: UnsafeMutablePointer<UnsafeMutablePointer<CKeyValue>?>?, _ count: Int, depth: Int = 0
    ) throws(SpanRejection) -> [Attribute] {
        guard let list, count > 0 else { return [] }
        var out = [Attribute]()
        out.reserveCapacity(count)
        for i in 0..<count {
            guard let kv = list[i]?.pointee else { continue }
            out.append(Attribute(string(kv.key), try value(kv.value, depth: depth)))
        }
        return out
    }

    private static func value(_ v: UnsafeMutablePointer<CAnyValue>?, depth: Int) throws(SpanRejection) -> AttributeValue {
        guard let v = v?.pointee else { return .empty }
        guard depth < OTLPDecoder.maxAttributeDepth else {
            throw SpanRejection("attribute value nested deeper than \(OTLPDecoder.maxAttributeDepth) levels")
        }
        switch v.value_case {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            return .string(string(v.string_value))
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
            return .bool(v.bool_value != 0)
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
            return .int(v.int_value)
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
            return .double(v.double_value)
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
            return .bytes(Array(raw(v.bytes_value)))
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
            guard let a = v.array_value?.pointee else { return .array([]) }
            var items = [AttributeValue]()
            items.reserveCapacity(a.n_values)
            for i in 0..<a.n_values { items.append(try value(a.values[i], depth: depth + 1)) }
            return .array(items)
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
            guard let kv = v.kvlist_value?.pointee else { return .kvlist([]) }
            return .kvlist(try attributes(kv.values, kv.n_values, depth: depth + 1))
        default:
            // Not set, or the profiles-only string_value_strindex.
            return .empty
        }
    }

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    private static func raw(_ b: ProtobufCBinaryData) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: b.data, count: b.data == nil ? 0 : b.len)
    }
}
