import OTLP
import TracefoldModel
import XCTest

/// The collector's protobuf decoder (`OTLPProtobufDecoder`, straight from
/// the wire) against protobuf-c (`ProtobufCDecoder`), the decoder it
/// replaced: for every body both must refuse it, or both take it with the
/// same spans and the same rejections. A body that was answered 200 must
/// not become a 400, nor the other way round.
final class ProtobufDecoderAgreementTests: XCTestCase {
    /// Decodes with both and fails the test where they differ; returns the
    /// decoder's result.
    @discardableResult
    func agree(_ body: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) -> DecodedExport? {
        let decoded: DecodedExport?
        let reference: DecodedExport?
        var decodeError = "", referenceError = ""
        do { decoded = try OTLPProtobufDecoder.decode(body) } catch { decoded = nil; decodeError = error.message }
        do { reference = try ProtobufCDecoder.decode(body) } catch { reference = nil; referenceError = error.message }
        guard let decoded, let reference else {
            XCTAssertEqual(decoded == nil, reference == nil, "\(what): decoder \(decoded == nil ? "refuses (\(decodeError))" : "takes") it, protobuf-c \(reference == nil ? "refuses (\(referenceError))" : "takes") it", file: file, line: line)
            return decoded
        }
        XCTAssertEqual(decoded.rejectedSpans, reference.rejectedSpans, "\(what): rejected spans", file: file, line: line)
        XCTAssertEqual(decoded.firstRejection, reference.firstRejection, "\(what): first rejection", file: file, line: line)
        // Bytes, not values: a NaN attribute equals itself only bit for bit.
        XCTAssertEqual(OTLPProtobufEncoder.encode(decoded.batch), OTLPProtobufEncoder.encode(reference.batch), "\(what): spans", file: file, line: line)
        XCTAssertEqual(decoded.batch.resourceSpans.map(\.schemaURL), reference.batch.resourceSpans.map(\.schemaURL), "\(what): schema URLs", file: file, line: line)
        return decoded
    }

    // MARK: bodies written field by field

    static let traceID = [UInt8](repeating: 0xAB, count: 16)
    static let spanID: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]

    /// A request of one span; `span` writes the span's fields after its
    /// ids, `resource` and `scope` the ResourceSpans' and ScopeSpans' own.
    static func request(
        resource: (inout ProtobufWriter) -> Void = { _ in }, scope: (inout ProtobufWriter) -> Void = { _ in },
        span: (inout ProtobufWriter) -> Void = { _ in }
    ) -> [UInt8] {
        var w = ProtobufWriter()
        w.message(1) { rs in
            resource(&rs)
            rs.message(2) { ss in
                scope(&ss)
                ss.message(2) { s in
                    s.bytes(1, traceID)
                    s.bytes(2, spanID)
                    span(&s)
                }
            }
        }
        return w.bytes
    }

    /// A request of one span whose fields after its ids `span` writes.
    static func spanRequest(_ span: (inout ProtobufWriter) -> Void) -> [UInt8] {
        request(resource: { _ in }, scope: { _ in }, span: span)
    }

    /// A field header with any wire type, as raw bytes.
    static func tag(_ field: UInt64, _ wire: UInt64) -> [UInt8] {
        var w = ProtobufWriter()
        w.writeVarint(field << 3 | wire)
        return w.bytes
    }

    /// One attribute whose AnyValue message is `value`'s raw bytes.
    static func attribute(_ value: [UInt8], key: String = "k") -> (inout ProtobufWriter) -> Void {
        { s in
            s.message(9) { kv in
                kv.string(1, key)
                kv.bytes(2, value)
            }
        }
    }

    static func span(_ raw: [UInt8]) -> [UInt8] {
        spanRequest { s in s.writeRaw(raw) }
    }

    func testUnknownFieldsOfEveryWireTypeAreSkippedAndGroupsRefused() {
        for wire: UInt64 in [0, 1, 2, 5] {
            var value: [UInt8]
            switch wire {
            case 0: value = [0x96, 0x01]
            case 1: value = [UInt8](repeating: 7, count: 8)
            case 2: value = [3, 0x61, 0x62, 0x63]
            default: value = [1, 2, 3, 4]
            }
            let body = Self.request(resource: { $0.writeRaw(Self.tag(99, wire) + value) }, scope: { $0.writeRaw(Self.tag(98, wire) + value) }) { s in
                s.writeRaw(Self.tag(97, wire) + value)
                s.string(5, "named")
            }
            XCTAssertEqual(agree(body, "unknown field, wire type \(wire)")?.batch.spanCount, 1)
            XCTAssertEqual(agree(Self.tag(1_000_000, wire) + value + body, "unknown top-level field, wire type \(wire)")?.batch.spanCount, 1)
        }
        for wire: UInt64 in [3, 4, 6, 7] {
            XCTAssertNil(agree(Self.span(Self.tag(97, wire) + [0]), "wire type \(wire) in a span"))
            XCTAssertNil(agree(Self.tag(99, wire) + [0], "wire type \(wire) at the top"))
        }
    }

    func testAKnownFieldWithTheWrongWireTypeRefusesTheBody() {
        let wrong: [(String, [UInt8])] = [
            ("name as a varint", Self.tag(5, 0) + [1]),
            ("kind as bytes", Self.tag(6, 2) + [1, 1]),
            ("start time as a varint", Self.tag(7, 0) + [1]),
            ("end time as fixed32", Self.tag(8, 5) + [1, 2, 3, 4]),
            ("attributes as a varint", Self.tag(9, 0) + [1]),
            ("dropped count as fixed64", Self.tag(10, 1) + [UInt8](repeating: 0, count: 8)),
            ("flags as a varint", Self.tag(16, 0) + [1]),
            ("status as fixed32", Self.tag(15, 5) + [1, 2, 3, 4]),
            ("an event's time as a varint", Self.tag(11, 2) + [2] + Self.tag(1, 0) + [1]),
            ("a link's flags as a varint", Self.tag(13, 2) + [2] + Self.tag(6, 0) + [1]),
            ("a status code as bytes", Self.tag(15, 2) + [3] + Self.tag(3, 2) + [1, 1]),
            ("a key as a varint", Self.tag(9, 2) + [2] + Self.tag(1, 0) + [1]),
            ("a key_strindex as bytes", Self.tag(9, 2) + [3] + Self.tag(3, 2) + [1, 1]),
            ("an int value as fixed64", Self.tag(9, 2) + [11] + Self.tag(2, 2) + [9] + Self.tag(3, 1) + [UInt8](repeating: 0, count: 8)),
            ("a double value as a varint", Self.tag(9, 2) + [5] + Self.tag(2, 2) + [2] + Self.tag(4, 0) + [1]),
            ("a string value as a varint", Self.tag(9, 2) + [5] + Self.tag(2, 2) + [2] + Self.tag(1, 0) + [1]),
        ]
        for (what, raw) in wrong {
            XCTAssertNil(agree(Self.span(raw), what), what)
        }
        XCTAssertNil(agree(Self.request(resource: { $0.writeRaw(Self.tag(2, 0) + [1]) }), "a ResourceSpans' scope_spans as a varint"))
        XCTAssertNil(agree(Self.request(resource: { r in r.message(1) { $0.writeRaw(Self.tag(2, 2) + [0]) } }), "a resource's dropped count as bytes"))
        XCTAssertNil(agree(Self.request(scope: { s in s.message(1) { $0.writeRaw(Self.tag(1, 0) + [1]) } }), "a scope's name as a varint"))
    }

    func testABoolCountsAnyNonzeroByteOfItsFieldWhateverItsWireType() {
        let values: [(String, [UInt8])] = [
            ("varint 0", Self.tag(2, 0) + [0]),
            ("varint 1", Self.tag(2, 0) + [1]),
            ("two-byte varint 0", Self.tag(2, 0) + [0x80, 0x00]),
            ("varint 128", Self.tag(2, 0) + [0x80, 0x01]),
            ("fixed64 zero", Self.tag(2, 1) + [UInt8](repeating: 0, count: 8)),
            ("fixed64 with a bit", Self.tag(2, 1) + [0, 0, 0, 0, 0, 0, 0, 0x80]),
            ("fixed32 with a bit", Self.tag(2, 5) + [0, 0, 2, 0]),
            ("empty bytes", Self.tag(2, 2) + [0]),
            ("bytes of a zero", Self.tag(2, 2) + [1, 0]),
        ]
        var seen = Set<AttributeValue>()
        for (what, raw) in values {
            let d = agree(Self.request(span: Self.attribute(raw)), "bool as \(what)")
            if let v = d?.batch.resourceSpans.first?.scopeSpans.first?.spans.first?.attributes.first?.value { seen.insert(v) }
        }
        XCTAssertEqual(seen, [.bool(false), .bool(true)])
    }

    func testStringsEndAtTheirFirstNULAndInvalidUTF8IsRepaired() {
        let raw: [[UInt8]] = [[0x61, 0x00, 0x62], [0x00], [0xFF, 0xFE, 0x61], [0xE2, 0x82], [0x61, 0xC3, 0xA9, 0x00, 0xFF]]
        for bytes in raw {
            let body = Self.request(
                resource: { $0.writeRaw(Self.tag(3, 2) + [UInt8(bytes.count)] + bytes) },
                scope: { s in s.message(1) { $0.bytes(1, bytes) } }
            ) { s in
                s.bytes(5, bytes)
                s.message(9) { kv in
                    kv.bytes(1, bytes)
                    kv.message(2) { $0.bytes(1, bytes) }
                }
            }
            agree(body, "string bytes \(bytes)")
        }
        let d = agree(Self.span(Self.tag(5, 2) + [3, 0x61, 0x00, 0x62]), "NUL in a name")
        XCTAssertEqual(d?.batch.resourceSpans.first?.scopeSpans.first?.spans.first?.name, "a")
    }

    /// The decoder makes each long attribute key once per request and
    /// hands the same `String` to every span that repeats it
    /// (`KeyInterner`). The keys must still be exactly protobuf-c's: keys
    /// at and around the lengths it shares (16 to 128 bytes), more distinct
    /// keys than it has slots (so they collide and replace each other),
    /// keys with a NUL and with invalid UTF-8, and keys that differ only in
    /// their middle byte.
    func testRepeatedAttributeKeysDecodeAsProtobufCDecodesThem() {
        var keys: [[UInt8]] = [15, 16, 17, 64, 127, 128, 129, 300].map { n in (0..<n).map { UInt8(97 + $0 % 26) } }
        keys += (0..<600).map { Array("langfuse.trace.metadata.key-\($0)".utf8) }
        keys += [Array("gen_ai.usage.input_tokens".utf8), Array("gen_ai.usage.inpXt_tokens".utf8)]
        keys += [Array("langfuse.observation.\u{0}metadata".utf8), [0xFF, 0xFE] + Array("invalid-utf8-key-bytes".utf8), Array("x".utf8) + [0xE2, 0x82] + Array("-torn-sequence-key".utf8)]
        // Each span in another order, so a key's slot was last filled by a
        // different key.
        let body = Self.spans(withKeys: [keys, keys.reversed(), keys])
        guard let decoded = agree(body, "repeated keys") else { return XCTFail("the body decodes") }
        let spans = decoded.batch.resourceSpans[0].scopeSpans[0].spans
        XCTAssertEqual(spans.count, 3)
        XCTAssertEqual(spans[0].attributes.map(\.key), keys.map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        XCTAssertEqual(spans[2].attributes.map(\.key), spans[0].attributes.map(\.key))

        // The same storage, not a copy, is the point of making a key once:
        // two spans with a 128-byte key and a 129-byte one.
        let two = Self.spans(withKeys: [[keys[5], keys[6]], [keys[5], keys[6]]])
        guard let pair = agree(two, "two spans") else { return XCTFail("the body decodes") }
        let (first, second) = (pair.batch.resourceSpans[0].scopeSpans[0].spans[0], pair.batch.resourceSpans[0].scopeSpans[0].spans[1])
        func address(_ key: String) -> UnsafeRawPointer? {
            var k = key
            return k.withUTF8 { UnsafeRawPointer($0.baseAddress) }
        }
        XCTAssertEqual(first.attributes[0].key.utf8.count, 128)
        XCTAssertEqual(address(second.attributes[0].key), address(first.attributes[0].key), "a 128-byte key is shared")
        XCTAssertNotEqual(address(second.attributes[1].key), address(first.attributes[1].key), "a 129-byte key is made per span")
    }

    /// A request of one span per key list, each key's value a string.
    static func spans(withKeys keyLists: [[[UInt8]]]) -> [UInt8] {
        var w = ProtobufWriter()
        w.message(1) { rs in
            rs.message(2) { ss in
                for (spanIndex, keys) in keyLists.enumerated() {
                    ss.message(2) { s in
                        s.bytes(1, traceID)
                        s.bytes(2, [1, 2, 3, 4, 5, 6, 7, UInt8(spanIndex + 1)])
                        for (i, key) in keys.enumerated() {
                            s.message(9) { kv in
                                kv.bytes(1, key)
                                kv.message(2) { $0.string(1, "v\(i)") }
                            }
                        }
                    }
                }
            }
        }
        return w.bytes
    }

    func testTagVarintAndLengthLimits() {
        // A tag (field 5, a name) in 5 bytes is read; in 6 it is refused.
        let name: [UInt8] = [1, 0x78]
        XCTAssertEqual(agree(Self.span([0xAA, 0x80, 0x80, 0x80, 0x00] + name), "a 5-byte tag")?.batch.resourceSpans[0].scopeSpans[0].spans[0].name, "x")
        XCTAssertNil(agree(Self.span([0xAA, 0x80, 0x80, 0x80, 0x80, 0x00] + name), "a 6-byte tag"))
        // Field number 0 is refused; a longer tag whose number comes out 0
        // is an unknown field.
        XCTAssertNil(agree(Self.span([0x00, 0x01]), "field 0"))
        agree(Self.span([0x80, 0x00, 0x01]), "a two-byte tag of field 0")
        // Field numbers past 2^28 are unknown.
        agree(Self.span([0xF8, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]), "the largest field number")
        // A varint of 10 bytes is read, bits past 64 dropped; 11 is refused.
        let ten: [UInt8] = [0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7F]
        let d = agree(Self.span(Self.tag(6, 0) + ten + Self.tag(9, 2) + [13] + Self.tag(2, 2) + [11] + Self.tag(3, 0) + ten), "10-byte varints")
        XCTAssertEqual(d?.batch.resourceSpans[0].scopeSpans[0].spans[0].kind, .server)
        XCTAssertNil(agree(Self.span(Self.tag(6, 0) + [0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), "an 11-byte varint"))
        XCTAssertNil(agree(Self.span(Self.tag(6, 0) + [0x82]), "a varint cut short"))
        // A length prefix in 5 bytes is read; in 6, or past its message, or
        // past INT_MAX, it is refused.
        agree(Self.span(Self.tag(5, 2) + [0x81, 0x80, 0x80, 0x80, 0x00, 0x78]), "a 5-byte length prefix")
        XCTAssertNil(agree(Self.span(Self.tag(5, 2) + [0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x78]), "a 6-byte length prefix"))
        XCTAssertNil(agree(Self.span(Self.tag(5, 2) + [5, 0x78]), "a length past the message"))
        XCTAssertNil(agree(Self.span(Self.tag(5, 2) + [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]), "a length past INT_MAX"))
        XCTAssertNil(agree(Self.span(Self.tag(7, 1) + [1, 2, 3]), "a fixed64 cut short"))
        XCTAssertNil(agree(Self.span(Self.tag(16, 5) + [1, 2, 3]), "a fixed32 cut short"))
        // A length that fits the body but not the enclosing message.
        var w = ProtobufWriter()
        w.writeRaw(Self.tag(1, 2) + [3] + Self.tag(3, 2) + [5, 0x61])
        w.writeRaw([0x62, 0x63, 0x64, 0x65])
        XCTAssertNil(agree(w.bytes, "a length past its enclosing message"))
    }

    func testSingularMessagesThatAppearTwiceAreMergedAsProtobufCMergesThem() {
        // Resource twice: attributes concatenated, the later's dropped
        // count, even when the later lacks it.
        let resources = Self.request(resource: { rs in
            rs.message(1) { r in
                r.message(1) { kv in kv.string(1, "a"); kv.message(2) { $0.string(1, "1") } }
                r.varint(2, 7)
            }
            rs.message(1) { r in
                r.message(1) { kv in kv.string(1, "b"); kv.message(2) { $0.int64(3, 2) } }
            }
            rs.string(3, "https://schema/1")
            rs.string(3, "https://schema/2")
        })
        let r = agree(resources, "a resource twice")?.batch.resourceSpans[0]
        XCTAssertEqual(r?.resource.attributes.map(\.key), ["a", "b"])
        XCTAssertEqual(r?.resource.droppedAttributesCount, 0)
        XCTAssertEqual(r?.schemaURL, "https://schema/2")
        // Scope twice: a name the later lacks comes from the earlier; an
        // empty one it has stands.
        for laterName in [nil, "", "second"] as [String?] {
            let body = Self.request(scope: { ss in
                ss.message(1) { s in s.string(1, "first"); s.string(2, "v1"); s.varint(4, 3) }
                ss.message(1) { s in
                    if let laterName { s.string(1, laterName) }
                    s.message(3) { kv in kv.string(1, "x") }
                }
            })
            let scope = agree(body, "a scope twice, later name \(String(describing: laterName))")?.batch.resourceSpans[0].scopeSpans[0].scope
            XCTAssertEqual(scope?.name, laterName ?? "first")
            XCTAssertEqual(scope?.version, "v1")
            XCTAssertEqual(scope?.droppedAttributesCount, 0)
        }
        // Status twice.
        agree(Self.spanRequest { s in
            s.message(15) { $0.string(2, "broken"); $0.varint(3, 2) }
            s.message(15) { $0.varint(3, 1) }
        }, "a status twice")
        agree(Self.spanRequest { s in
            s.message(15) { $0.varint(3, 2) }
            s.message(15) { $0.string(2, "") }
        }, "a status twice, the later with an empty message")
    }

    func testAKeyValueWithTwoValuesAndAnAnyValueWithTwoMembers() {
        let members: [(String, [UInt8])] = [
            ("nothing", []),
            ("a string", Self.tag(1, 2) + [1, 0x73]),
            ("an empty string", Self.tag(1, 2) + [0]),
            ("a bool", Self.tag(2, 0) + [1]),
            ("an int", Self.tag(3, 0) + [5]),
            ("a double", Self.tag(4, 1) + [0, 0, 0, 0, 0, 0, 0xF8, 0x7F]),
            ("an array", Self.tag(5, 2) + [4] + Self.tag(1, 2) + [2] + Self.tag(3, 0) + [1]),
            ("an empty kvlist", Self.tag(6, 2) + [0]),
            ("bytes", Self.tag(7, 2) + [2, 9, 9]),
            ("empty bytes", Self.tag(7, 2) + [0]),
            ("a string index", Self.tag(8, 0) + [3]),
        ]
        for (earlierName, earlier) in members {
            for (laterName, later) in members {
                // Two values in one KeyValue: merged.
                let twoValues = Self.span(
                    Self.tag(9, 2) + [UInt8(earlier.count + later.count + 7)] + Self.tag(1, 2) + [1, 0x6B]
                        + Self.tag(2, 2) + [UInt8(earlier.count)] + earlier + Self.tag(2, 2) + [UInt8(later.count)] + later
                )
                agree(twoValues, "a KeyValue holding \(earlierName), then \(laterName)")
                // Two members in one AnyValue: the later stands.
                agree(Self.request(span: Self.attribute(earlier + later)), "an AnyValue holding \(earlierName) and \(laterName)")
            }
        }
    }

    func testEntityRefsAreCheckedThoughNotKept() {
        let ok = Self.request(resource: { rs in
            rs.message(1) { r in r.message(3) { e in e.string(1, "s"); e.string(2, "service"); e.string(3, "service.name"); e.string(3, "x"); e.string(4, "d") } }
        })
        agree(ok, "an entity ref")
        let bad = Self.request(resource: { rs in rs.message(1) { r in r.message(3) { $0.varint(3, 1) } } })
        XCTAssertNil(agree(bad, "an entity ref's id key as a varint"))
    }

    /// A value nested `levels` AnyValues deep, alternating arrays and kvlists.
    static func nested(_ levels: Int) -> [UInt8] {
        var value = Self.tag(3, 0) + [1]
        for level in 1..<levels {
            var w = ProtobufWriter()
            if level % 2 == 0 {
                w.message(5) { $0.bytes(1, value) }
            } else {
                w.message(6) { list in list.message(1) { kv in kv.string(1, "k"); kv.bytes(2, value) } }
            }
            value = w.bytes
        }
        return value
    }

    func testNestingPastTheLimitRefusesTheBodyWhereverItIs() {
        let limit = ProtobufNestingCheck.maxAnyValueDepth
        for levels in [limit, limit + 1] {
            let value = Self.nested(levels)
            let places: [(String, [UInt8])] = [
                ("a span attribute", Self.request(span: Self.attribute(value))),
                ("a resource attribute", Self.request(resource: { rs in rs.message(1) { r in r.message(1) { kv in kv.string(1, "k"); kv.bytes(2, value) } } })),
                ("an event attribute", Self.spanRequest { s in s.message(11) { e in e.message(3) { kv in kv.string(1, "k"); kv.bytes(2, value) } } }),
                ("a link attribute", Self.spanRequest { s in s.message(13) { l in l.message(4) { kv in kv.string(1, "k"); kv.bytes(2, value) } } }),
            ]
            for (what, body) in places {
                let d = agree(body, "\(levels) levels in \(what)")
                XCTAssertEqual(d == nil, levels > limit, "\(levels) levels in \(what)")
            }
        }
        XCTAssertThrowsError(try OTLPProtobufDecoder.decode(Self.request(span: Self.attribute(Self.nested(limit + 1))))) { error in
            XCTAssertEqual((error as? OTLPDecodeError)?.message, "attribute values nest deeper than \(limit) levels")
        }
    }

    func testFixturesAndTheirRandomMutationsAgree() {
        var spans = [Fixtures.fullSpan]
        for n in 1...3 {
            var s = Fixtures.span(UInt64(n))
            s.events = [SpanEvent(timeUnixNano: 5, name: "e", attributes: [Attribute("a", .double(.nan))])]
            s.links = [SpanLink(traceID: [1, 2], spanID: [3], traceState: "t", attributes: [Attribute("l", .bytes([0]))], flags: 3)]
            spans.append(s)
        }
        var batch = Fixtures.batch(spans)
        batch.resourceSpans[0].schemaURL = "https://opentelemetry.io/schemas/1.21.0"
        batch.resourceSpans[0].resource.droppedAttributesCount = 6
        batch.resourceSpans[0].scopeSpans[0].scope = InstrumentationScope(name: "scope", version: "1", attributes: [Attribute("sa", .bool(true))], droppedAttributesCount: 2)
        let bases = [
            OTLPProtobufEncoder.encode(batch),
            Self.request(span: Self.attribute(Self.nested(6))),
            Self.request(resource: { rs in rs.message(1) { $0.varint(2, 1) }; rs.message(1) { $0.varint(2, 2) } }) { s in
                s.message(15) { $0.string(2, "m") }
                s.message(15) { $0.varint(3, 2) }
            },
        ]
        for body in bases {
            XCTAssertNotNil(agree(body, "a base body"))
        }
        // A fixed seed: the same mutations every run.
        var rng = SplitMix64(seed: 0x7472_6163_6566_6F6C)
        var refused = 0, taken = 0
        for round in 0..<6_000 {
            var body = bases[round % bases.count]
            for _ in 0...(rng.next() % 3) {
                guard !body.isEmpty else { break }
                let at = Int(rng.next() % UInt64(body.count))
                switch rng.next() % 6 {
                case 0: body[at] ^= UInt8(1 << (rng.next() % 8))
                case 1: body[at] = UInt8(truncatingIfNeeded: rng.next())
                case 2: body.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                case 3: body.remove(at: at)
                case 4: body.removeLast(min(body.count, Int(rng.next() % 16) + 1))
                default:
                    let end = min(body.count, at + Int(rng.next() % 32) + 1)
                    body.insert(contentsOf: body[at..<end], at: end)
                }
            }
            if agree(body, "mutation round \(round)") == nil { refused += 1 } else { taken += 1 }
        }
        // The mutations reach both outcomes, so the comparison compared both.
        XCTAssertGreaterThan(refused, 500)
        XCTAssertGreaterThan(taken, 500)
    }
}

/// A small deterministic generator (SplitMix64) for reproducible mutations.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
