@testable import TracefoldFold
import TracefoldMapping
import TracefoldModel
import XCTest

/// The fold's cache keeps most traces encoded (`TraceStateCodec`); a trace
/// decoded again must be exactly the one encoded, or a later span would
/// fold into a different state than it would have without the cache.
final class TraceCacheTests: XCTestCase {
    func testEncodedTracesDecodeToEqualStatesAndObservations() throws {
        var rng = OrderIndependenceTests.Rng(state: 11)
        let governed = RequestMetadata(
            metadata: ["team": "alpha"], warnings: ["x-tracefold-metadata.n": "value is a number, not a string; dropped"],
            governance: Governance(apiKey: "pk-a", workspace: "alpha", apiKeyMetadata: ["tier": "gold"], workspaceMetadata: ["team": "α"], defaults: ["region": "eu"]),
            receivedAtUnixNano: 42
        )
        let mapper = SpanMapper()
        let interner = JSONInterner()
        for caseIndex in 0..<60 {
            var state: TraceState?
            var observations = [SpanID: Observation]()
            for (span, resource, scope) in OrderIndependenceTests.spans(traceIndex: caseIndex, rng: &rng) {
                var resource = resource
                // Half the cases arrive under an API key with governance layers.
                if caseIndex % 2 == 0 { resource.attributes.append(Attribute(RequestMetadata.attributeKey, .string(governed.encoded))) }
                let mapped = mapper.map(span, resource: resource, scope: scope)
                if state == nil { state = TraceState(traceID: span.traceID) }
                state!.add(mapped, limits: MetadataLimits(maxUpdateBytes: 65_536, maxTraceBytes: 200))
                observations[span.spanID] = mapped.observation
            }
            let trace = OpenTrace(
                state: try XCTUnwrap(state), observations: observations, seq: Int64(caseIndex), lastUse: 7,
                generation: caseIndex % 3 == 0 ? 0 : Int64.random(in: Int64.min...Int64.max))
            let plain = TraceStateCodec.encode(trace)
            let interned = TraceStateCodec.encode(trace, interner: interner)
            XCTAssertLessThan(interned.count, plain.count, "resource and scope JSON are written once in the interner")
            XCTAssertEqual(TraceStateCodec.minStart(plain), trace.state.minStart)
            for (bytes, interner) in [(plain, nil), (interned, interner)] {
                let decoded = try XCTUnwrap(TraceStateCodec.decode(bytes, lastUse: 7, interner: interner), "case \(caseIndex)")
                XCTAssertEqual(decoded.state, trace.state, "case \(caseIndex)")
                XCTAssertEqual(decoded.observations, trace.observations, "case \(caseIndex)")
                XCTAssertEqual(decoded.seq, trace.seq)
                XCTAssertEqual(decoded.generation, trace.generation)
                if caseIndex % 2 == 0 { XCTAssertNotNil(decoded.state.governance) }
                // A cut-off encoding never decodes to something else.
                for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 50)) {
                    XCTAssertNil(TraceStateCodec.decode(Array(bytes[..<cut]), lastUse: 0, interner: interner), "case \(caseIndex) cut at \(cut)")
                }
            }
        }
    }

    func testJSONValuesKeepTheirKindAndBits() throws {
        let values: [JSONValue] = [
            .null, .bool(true), .bool(false), .int(1), .double(1), .int(.min), .int(.max), .double(-0.0), .double(.greatestFiniteMagnitude),
            .double(5e-324), .string(""), .string("👩‍👩‍👧‍👦 \u{0} é"), .array([]), .object([:]),
            .object(["a": .array([.int(-1), .object(["b": .null, "": .string("x")])]), "n": .double(0.1)]),
        ]
        var state = TraceState(traceID: TraceID(high: 1, low: 2))
        state.input = Versioned(.array(values), OrderKey(time: .max, spanID: 3, position: -1))
        state.entries[EntryKey(scope: .extendedTrace, target: SpanID(9), kind: "k")] = Dictionary(
            uniqueKeysWithValues: values.enumerated().map { ("v\($0.offset)", Versioned(JSONText($0.element), OrderKey(time: 1, spanID: 2, position: $0.offset))) })
        let decoded = try XCTUnwrap(TraceStateCodec.decode(TraceStateCodec.encode(OpenTrace(state: state, observations: [:], seq: 0, lastUse: 0)), lastUse: 0))
        XCTAssertEqual(decoded.state, state)
        guard case .array(let back)? = decoded.state.input?.value else { return XCTFail("input lost") }
        for (a, b) in zip(values, back) {
            switch (a, b) {
            case (.double(let x), .double(let y)): XCTAssertEqual(x.bitPattern, y.bitPattern)
            case (.int, .int), (.null, .null), (.bool, .bool), (.string, .string), (.array, .array), (.object, .object): XCTAssertEqual(a, b)
            default: XCTFail("\(a) came back as \(b)")
            }
        }
    }

    /// Update ids of the `<spanId>/<position>` form are kept as the two
    /// numbers (and take 9 bytes and a varint encoded); any other spelling
    /// is kept as text. Either way an id spells and decodes unchanged.
    func testUpdateIDsOfEverySpellingDecodeUnchanged() throws {
        let canonical = [SpanID(3).hex + "/0", SpanID(.max).hex + "/18446744073709551615", SpanID(0xabc).hex + "/42"]
        for id in canonical {
            XCTAssertNotNil(UpdateID(id).spanAndPosition, id)
            XCTAssertEqual(UpdateID(id).text, id)
        }
        XCTAssertEqual(UpdateID(span: SpanID(0xabc), position: 42), UpdateID(SpanID(0xabc).hex + "/42"), "made from numbers or from text, the same id")
        let other = [
            "0000000000000ABC/1", SpanID(3).hex + "/01", SpanID(3).hex + "/", SpanID(3).hex + "/18446744073709551616", "x/1", "request/17/ab",
            SpanID(3).hex + "-1", "", "0000000000000003/1/2",
        ]
        for id in other {
            XCTAssertNil(UpdateID(id).spanAndPosition, id)
            XCTAssertEqual(UpdateID(id).text, id)
        }
        var state = TraceState(traceID: TraceID(high: 1, low: 1))
        for id in canonical + other {
            _ = state.apply(MetadataUpdate(id: UpdateID(id), scope: .trace, target: nil, kind: "k", values: ["v": .int(1)], order: OrderKey(time: 1, spanID: 1, position: 0)), limits: MetadataLimits())
        }
        XCTAssertEqual(state.acceptedUpdates.count, canonical.count + other.count)
        let decoded = try XCTUnwrap(TraceStateCodec.decode(TraceStateCodec.encode(OpenTrace(state: state, observations: [:], seq: 1, lastUse: 0)), lastUse: 0))
        XCTAssertEqual(decoded.state.acceptedUpdates, state.acceptedUpdates)
        XCTAssertEqual(decoded.state, state)
    }

    /// The interner numbers at most `limit` values and keys; past it, new
    /// ones are written out in full and still decode.
    /// `ByteWriter.counted` writes the bytes first and their length after:
    /// the one-byte length it leaves is widened in place, and the result is
    /// what `count` and then the bytes give, at each width's limit and one
    /// past it.
    func testCountedBytesWidenTheirLengthAtEachVarintLimit() {
        for length in [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
            let content = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            var expected = ByteWriter()
            expected.bytes = [7, 8]
            expected.count(length)
            expected.bytes.append(contentsOf: content)
            expected.bytes.append(9)
            var counted = ByteWriter()
            counted.bytes = [7, 8]
            counted.counted { $0.append(contentsOf: content) }
            counted.bytes.append(9)
            XCTAssertEqual(counted.bytes.count, expected.bytes.count, "length \(length)")
            XCTAssertTrue(counted.bytes == expected.bytes, "length \(length)")
        }
    }

    func testTheInternerStopsAtItsLimitAndTracesStillDecode() throws {
        let interner = JSONInterner(limit: 2)
        XCTAssertEqual(interner.id(for: .string("a")), 0)
        XCTAssertEqual(interner.id(for: .string("b")), 1)
        XCTAssertNil(interner.id(for: .string("c")), "one past the limit")
        XCTAssertEqual(interner.id(for: .string("a")), 0, "numbered values stay")
        XCTAssertEqual(interner.id(forKey: "key-1"), 0)
        XCTAssertEqual(interner.id(forKey: "key-2"), 1)
        XCTAssertNil(interner.id(forKey: "key-3"))
        var trace = OpenTrace.empty(TraceID(high: 1, low: 2))
        trace.state.entries[EntryKey(scope: .trace, target: nil, kind: "key-3")] = ["key-1": Versioned(.string("c"), OrderKey(time: 1, spanID: 1, position: 0))]
        let decoded = try XCTUnwrap(TraceStateCodec.decode(TraceStateCodec.encode(trace, interner: interner), lastUse: 0, interner: interner))
        XCTAssertEqual(decoded.state, trace.state)
    }

    func testTheCacheKeepsTheNewestAsValuesTheRestEncodedAndDropsTheOldest() {
        var cache = TraceCache(capacity: 100, hotCapacity: 16)
        func trace(_ n: UInt64) -> OpenTrace {
            var t = OpenTrace.empty(TraceID(high: 0, low: n))
            t.lastUse = n
            t.seq = Int64(n)
            t.state.minStart = n
            return t
        }
        for n: UInt64 in 1...100 { cache.put(TraceID(high: 0, low: n), trace(n)) }
        XCTAssertEqual(cache.count, 100)
        XCTAssertLessThanOrEqual(cache.count - cache.encodedCount, 16)
        XCTAssertEqual(cache.get(TraceID(high: 0, low: 1))?.seq, 1, "the oldest is kept, encoded, while the cache has room")
        // One past the capacity drops the least recently used tenth and more.
        cache.put(TraceID(high: 0, low: 101), trace(101))
        XCTAssertLessThanOrEqual(cache.count, 100)
        XCTAssertNil(cache.get(TraceID(high: 0, low: 1)))
        XCTAssertEqual(cache.get(TraceID(high: 0, low: 101))?.seq, 101)
        XCTAssertEqual(cache.get(TraceID(high: 0, low: 90))?.seq, 90)
        cache.removeAll(startedBefore: 95)
        XCTAssertNil(cache.get(TraceID(high: 0, low: 90)))
        XCTAssertEqual(cache.get(TraceID(high: 0, low: 95))?.seq, 95)
        cache.removeAll(startedBefore: 1000)
        XCTAssertEqual(cache.count, 0)
    }

    /// Demotion takes the traces put longest ago: a trace put again is
    /// newest, whatever its place in the earlier puts, and a trace put
    /// many times while hot is demoted once it is the oldest.
    func testDemotionTakesTheTracesPutLongestAgo() {
        var cache = TraceCache(capacity: 100, hotCapacity: 16)
        var use: UInt64 = 0
        func put(_ n: UInt64) {
            use += 1
            var t = OpenTrace.empty(TraceID(high: 0, low: n))
            t.lastUse = use
            t.seq = Int64(n)
            cache.put(TraceID(high: 0, low: n), t)
        }
        for n: UInt64 in 1...16 { put(n) }
        for _ in 0..<500 { put(1) }
        XCTAssertEqual(cache.encodedCount, 0)
        put(17)  // one past the hot capacity: the oldest eighth (2 traces) goes
        XCTAssertEqual(cache.encodedCount, 2)
        XCTAssertTrue(cache.isEncoded(TraceID(high: 0, low: 2)))
        XCTAssertTrue(cache.isEncoded(TraceID(high: 0, low: 3)))
        XCTAssertFalse(cache.isEncoded(TraceID(high: 0, low: 1)), "put again last, so hot")
        for n: UInt64 in 18...31 { put(n) }
        XCTAssertTrue(cache.isEncoded(TraceID(high: 0, low: 1)), "now the oldest put")
        XCTAssertEqual(cache.get(TraceID(high: 0, low: 1))?.seq, 1)
        XCTAssertEqual(cache.count, 31)
    }

    /// A trace with its true root and at most `settledSpans` spans is
    /// released, not encoded, when it leaves the hot tier: at the limit
    /// and below it released, one span past it kept encoded, and so is a
    /// trace without its root or with only an `as_root` span. A limit of 0
    /// encodes every trace, settled or not.
    func testASettledTraceIsReleasedNotEncodedWhenItLeavesTheHotTier() {
        let mapper = SpanMapper()
        /// A trace of `spans` spans: span 1 the root (or, without one, a
        /// child of a span that never comes), the others its children.
        func trace(_ n: UInt64, spans: UInt64, root: Bool = true, asRoot: Bool = false) -> OpenTrace {
            let id = TraceID(high: 0x5E77, low: n)
            var t = OpenTrace.empty(id)
            for s in 1...spans {
                let attributes: [String: AttributeValue] = asRoot && s == 1 ? ["langfuse.internal.as_root": .bool(true)] : [:]
                let span = Conformance.S("op", id: s, parent: s == 1 ? (root ? nil : 99) : 1, 10 + s, 20 + s, attributes, trace: id)
                let mapped = mapper.map(span, resource: Conformance.r0, scope: Conformance.sdk)
                t.state.add(mapped, limits: MetadataLimits())
                t.observations[span.spanID] = mapped.observation
            }
            t.lastUse = n
            t.seq = Int64(spans)
            return t
        }
        let cases: [(trace: OpenTrace, released: Bool, why: String)] = [
            (trace(1, spans: 1), true, "a lone root"),
            (trace(2, spans: 3), true, "at the limit"),
            (trace(3, spans: 4), false, "one span past the limit"),
            (trace(4, spans: 2, root: false), false, "no root"),
            (trace(5, spans: 2, root: false, asRoot: true), false, "an as_root span only"),
        ]
        XCTAssertNotNil(cases[4].trace.state.asRoot, "the as_root case has its as_root span")
        for limit in [3, 0] {
            // One trace hot: each put demotes the one put before it.
            var cache = TraceCache(capacity: 100, hotCapacity: 1, settledSpans: limit)
            for c in cases { cache.put(c.trace.state.traceID, c.trace) }
            cache.put(TraceID(high: 0x5E77, low: 100), trace(100, spans: 1))
            for c in cases {
                let id = c.trace.state.traceID
                let released = limit > 0 && c.released
                XCTAssertEqual(cache.isEncoded(id), !released, "limit \(limit): \(c.why)")
                if released {
                    XCTAssertNil(cache.get(id), "limit \(limit): \(c.why): rebuilt from the store when needed")
                } else {
                    XCTAssertEqual(cache.get(id)?.state, c.trace.state, "limit \(limit): \(c.why)")
                }
            }
            XCTAssertEqual(cache.releasedCount, limit > 0 ? 2 : 0)
            XCTAssertEqual(cache.count, limit > 0 ? 4 : 6)
        }
    }

    func testACachedTraceKeepsOnlyTheObservationsItsRecordNeeds() throws {
        let mapper = SpanMapper()
        let trace = TraceID(high: 0xABCD, low: 5)
        var t = OpenTrace.empty(trace)
        // A root at 10, a child that starts earlier (the earliest) and one later.
        for (id, parent, start): (UInt64, UInt64?, UInt64) in [(1, nil, 10), (2, 1, 5), (3, 1, 20)] {
            let span = Conformance.S("op", id: id, parent: parent, start, start + 1, [:], trace: trace)
            let mapped = mapper.map(span, resource: Conformance.r0, scope: Conformance.sdk)
            t.state.add(mapped, limits: MetadataLimits())
            t.observations[span.spanID] = mapped.observation
        }
        let whole = RecordRenderer.trace(t.state) { t.observations[$0] }.json
        t.keepStandInsOnly()
        // The root stands for the trace: the earliest span is not needed.
        XCTAssertEqual(Set(t.observations.keys), [Conformance.id(1)])
        XCTAssertNil(t.standIn)
        XCTAssertEqual(t.state.observationIDs.count, 3)
        XCTAssertEqual(RecordRenderer.trace(t.state, standIn: t.standIn) { t.observations[$0] }.json, whole)
    }

    /// Without a root, the record takes the earliest span's resource and
    /// scope: a cached trace keeps those two (`TraceStandIn`), not the
    /// span's observation, and renders the same record from them, before
    /// and after encoding. A later, earlier span replaces the stand-in; an
    /// as_root span or a root, kept whole, makes it unneeded.
    func testARootlessCachedTraceKeepsTheEarliestSpansResourceAndScopeOnly() throws {
        let mapper = SpanMapper()
        let trace = TraceID(high: 0xABCD, low: 6)
        let otherResource = Resource(attributes: [Attribute("service.name", .string("other")), Attribute("host.name", .string("h1"))])
        var t = OpenTrace.empty(trace)
        let interner = JSONInterner()
        func add(_ id: UInt64, parent: UInt64?, _ start: UInt64, resource: Resource = Conformance.r0, _ attributes: [String: AttributeValue] = [:]) {
            let span = Conformance.S("op-\(id)", id: id, parent: parent, start, start + 1, attributes, trace: trace)
            let mapped = mapper.map(span, resource: resource, scope: Conformance.sdk)
            t.state.add(mapped, limits: MetadataLimits())
            t.observations[span.spanID] = mapped.observation
        }
        /// The record from every observation folded so far, which the
        /// kept stand-in (and its encoding) must give again.
        var all = [SpanID: Observation]()
        func checkKept(standIn expected: UInt64?, observations kept: Set<SpanID>, _ why: String) throws {
            all.merge(t.observations) { a, _ in a }
            let whole = RecordRenderer.trace(t.state) { all[$0] }.json
            t.keepStandInsOnly()
            XCTAssertEqual(Set(t.observations.keys), kept, why)
            XCTAssertEqual(t.standIn?.spanID, expected.map(Conformance.id), why)
            XCTAssertEqual(RecordRenderer.trace(t.state, standIn: t.standIn) { t.observations[$0] }.json, whole, why)
            let decoded = try XCTUnwrap(TraceStateCodec.decode(TraceStateCodec.encode(t, interner: interner), lastUse: 0, interner: interner), why)
            XCTAssertEqual(decoded.standIn, t.standIn, why)
            XCTAssertEqual(decoded.observations, t.observations, why)
            XCTAssertEqual(RecordRenderer.trace(decoded.state, standIn: decoded.standIn) { decoded.observations[$0] }.json, whole, why)
        }
        add(2, parent: 9, 20, ["langfuse.observation.input": .string(#"{"q":"a long input the cache need not keep"}"#)])
        try checkKept(standIn: 2, observations: [], "one span whose parent is elsewhere")
        XCTAssertEqual(t.standIn?.resourceAttributes, all[Conformance.id(2)]?.systemMetadata["resourceAttributes"])
        XCTAssertNotNil(t.standIn?.scope)
        add(3, parent: 9, 30)
        try checkKept(standIn: 2, observations: [], "a later span leaves the stand-in")
        add(4, parent: 9, 10, resource: otherResource)
        try checkKept(standIn: 4, observations: [], "an earlier span under another resource replaces it")
        XCTAssertEqual(t.standIn?.resourceAttributes, all[Conformance.id(4)]?.systemMetadata["resourceAttributes"])
        add(5, parent: 9, 40, ["langfuse.internal.as_root": .bool(true)])
        try checkKept(standIn: nil, observations: [Conformance.id(5)], "an as_root span is kept whole and stands in")
        add(6, parent: nil, 50)
        try checkKept(standIn: nil, observations: [Conformance.id(5), Conformance.id(6)], "a root is kept whole")
        add(1, parent: nil, 5)
        try checkKept(standIn: nil, observations: [Conformance.id(5), Conformance.id(1)], "an earlier root replaces it")
    }
}
