import Foundation
/// An OTLP AnyValue. `.empty` is an AnyValue with no field set, which OTLP
/// allows.
public enum AttributeValue: Hashable, Sendable {
    case empty
    case string(String)
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case bytes([UInt8])
    case array([AttributeValue])
    case kvlist([Attribute])
}

public struct Attribute: Hashable, Sendable {
    public var key: String
    public var value: AttributeValue

    public init(_ key: String, _ value: AttributeValue) {
        self.key = key
        self.value = value
    }
}

public struct Resource: Hashable, Sendable {
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32

    public init(attributes: [Attribute] = [], droppedAttributesCount: UInt32 = 0) {
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }
}

public struct InstrumentationScope: Hashable, Sendable {
    public var name: String
    public var version: String
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32

    public init(name: String = "", version: String = "", attributes: [Attribute] = [], droppedAttributesCount: UInt32 = 0) {
        self.name = name
        self.version = version
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }
}

public enum SpanKind: Int32, Hashable, Sendable, CaseIterable {
    case unspecified = 0, `internal` = 1, server = 2, client = 3, producer = 4, consumer = 5

    /// The OTLP enum name, as accepted in OTLP/JSON.
    public var protoName: String {
        switch self {
        case .unspecified: "SPAN_KIND_UNSPECIFIED"
        case .internal: "SPAN_KIND_INTERNAL"
        case .server: "SPAN_KIND_SERVER"
        case .client: "SPAN_KIND_CLIENT"
        case .producer: "SPAN_KIND_PRODUCER"
        case .consumer: "SPAN_KIND_CONSUMER"
        }
    }
}

public enum StatusCode: Int32, Hashable, Sendable, CaseIterable {
    case unset = 0, ok = 1, error = 2

    public var protoName: String {
        switch self {
        case .unset: "STATUS_CODE_UNSET"
        case .ok: "STATUS_CODE_OK"
        case .error: "STATUS_CODE_ERROR"
        }
    }
}

public struct SpanStatus: Hashable, Sendable {
    public var code: StatusCode
    public var message: String

    public init(code: StatusCode = .unset, message: String = "") {
        self.code = code
        self.message = message
    }
}

public struct SpanEvent: Hashable, Sendable {
    public var timeUnixNano: UInt64
    public var name: String
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32

    public init(timeUnixNano: UInt64, name: String, attributes: [Attribute] = [], droppedAttributesCount: UInt32 = 0) {
        self.timeUnixNano = timeUnixNano
        self.name = name
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }
}

/// A link keeps its ids as raw bytes: OTLP does not require a linked context
/// to be valid, so a link is never a reason to reject its span.
public struct SpanLink: Hashable, Sendable {
    public var traceID: [UInt8]
    public var spanID: [UInt8]
    public var traceState: String
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32
    public var flags: UInt32

    public init(traceID: [UInt8], spanID: [UInt8], traceState: String = "", attributes: [Attribute] = [], droppedAttributesCount: UInt32 = 0, flags: UInt32 = 0) {
        self.traceID = traceID
        self.spanID = spanID
        self.traceState = traceState
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
        self.flags = flags
    }
}

/// One validated span. Resource and scope live on the enclosing
/// `ResourceSpans`/`ScopeSpans`, as on the wire, so a batch shares them.
public struct Span: Hashable, Sendable {
    public var traceID: TraceID
    public var spanID: SpanID
    public var parentSpanID: SpanID?
    public var traceState: String
    public var flags: UInt32
    public var name: String
    public var kind: SpanKind
    public var startTimeUnixNano: UInt64
    public var endTimeUnixNano: UInt64
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32
    public var events: [SpanEvent]
    public var droppedEventsCount: UInt32
    public var links: [SpanLink]
    public var droppedLinksCount: UInt32
    public var status: SpanStatus

    public init(
        traceID: TraceID, spanID: SpanID, parentSpanID: SpanID? = nil, traceState: String = "", flags: UInt32 = 0,
        name: String, kind: SpanKind = .internal, startTimeUnixNano: UInt64, endTimeUnixNano: UInt64,
        attributes: [Attribute] = [], droppedAttributesCount: UInt32 = 0, events: [SpanEvent] = [],
        droppedEventsCount: UInt32 = 0, links: [SpanLink] = [], droppedLinksCount: UInt32 = 0,
        status: SpanStatus = SpanStatus()
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.flags = flags
        self.name = name
        self.kind = kind
        self.startTimeUnixNano = startTimeUnixNano
        self.endTimeUnixNano = endTimeUnixNano
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
        self.events = events
        self.droppedEventsCount = droppedEventsCount
        self.links = links
        self.droppedLinksCount = droppedLinksCount
        self.status = status
    }

    public var key: SpanKey { SpanKey(traceID: traceID, spanID: spanID) }
}

public struct ScopeSpans: Hashable, Sendable {
    public var scope: InstrumentationScope
    public var schemaURL: String
    public var spans: [Span]

    public init(scope: InstrumentationScope = InstrumentationScope(), schemaURL: String = "", spans: [Span]) {
        self.scope = scope
        self.schemaURL = schemaURL
        self.spans = spans
    }
}

public struct ResourceSpans: Hashable, Sendable {
    public var resource: Resource
    public var schemaURL: String
    public var scopeSpans: [ScopeSpans]

    public init(resource: Resource = Resource(), schemaURL: String = "", scopeSpans: [ScopeSpans]) {
        self.resource = resource
        self.schemaURL = schemaURL
        self.scopeSpans = scopeSpans
    }
}

/// The valid spans of one export request, in the wire's resource → scope →
/// span shape. This is what the intake hands to the next stage.
public struct SpanBatch: Hashable, Sendable {
    public var resourceSpans: [ResourceSpans]
    /// When the collector received the request, in ns since the epoch. Later
    /// stages order header and API updates by it (SPEC §3.2).
    public var receivedAtUnixNano: UInt64
    /// What a sink worked out from these spans on the request, before the
    /// ack (`SpanSink.prepare`), so that it is not worked out again.
    public var prepared: PreparedWork?
    /// The protobuf bytes the spans arrived as (empty when they did not
    /// arrive as protobuf): the store keeps a span's own bytes rather than
    /// encoding the decoded span again.
    public var wire = SpanWire()

    public init(resourceSpans: [ResourceSpans], receivedAtUnixNano: UInt64 = 0) {
        self.resourceSpans = resourceSpans
        self.receivedAtUnixNano = receivedAtUnixNano
    }

    public var spanCount: Int {
        resourceSpans.reduce(0) { $0 + $1.scopeSpans.reduce(0) { $0 + $1.spans.count } }
    }

    /// Visits every span with the resource and scope it came under.
    public func forEachSpan(_ body: (Span, Resource, InstrumentationScope) throws -> Void) rethrows {
        for rs in resourceSpans {
            for ss in rs.scopeSpans {
                for span in ss.spans { try body(span, rs.resource, ss.scope) }
            }
        }
    }
}

/// Each span's protobuf message as it arrived: the decoded request body and,
/// in `forEachSpan` order, where each accepted span's message lies in it.
/// It is not part of the batch's value (two batches with the same spans are
/// equal whether or not they carry it), and it is only used while it still
/// matches the batch's spans one for one.
public struct SpanWire: Hashable, Sendable {
    public let body: [UInt8]
    public let ranges: [Range<Int>]

    /// None: the spans are encoded from their values when stored.
    public init() {
        body = []
        ranges = []
    }

    public init(body: [UInt8], ranges: [Range<Int>]) {
        self.body = body
        self.ranges = ranges
    }

    /// The message of the span at `position` in `forEachSpan` order.
    public func span(_ position: Int) -> ArraySlice<UInt8>? {
        position < ranges.count ? body[ranges[position]] : nil
    }

    public static func == (a: SpanWire, b: SpanWire) -> Bool { true }
    public func hash(into hasher: inout Hasher) {}
}

/// A sink's work on a batch done ahead, on the request thread: the fold's
/// mapping of each span. It is a cache, not part of the batch's value: two
/// batches with the same spans are equal whatever they carry, and a sink
/// that finds none (a batch replayed from the intake log) does the work
/// itself. Only the fold prepares today; the slot holds its result.
///
/// The intake log's fsync and the mapping run at the same time (the
/// request maps while the log thread writes), so the batch may reach the
/// pipeline before its work is done: a slot made `pending()` is filled
/// later, and a reader waits for it, up to a bound after which it finds
/// nothing and does the work itself (the same result: the work is a pure
/// function of the batch).
public struct PreparedWork: Hashable, @unchecked Sendable {
    private final class Slot: @unchecked Sendable {
        let condition = NSCondition()
        var value: Any?
        var filled = false
    }

    private let slot: Slot

    /// Work already done: sendable values only.
    public init(_ value: some Sendable) {
        slot = Slot()
        slot.value = value
        slot.filled = true
    }

    private init(slot: Slot) { self.slot = slot }

    /// A slot whose work `fill` gives later.
    public static func pending() -> PreparedWork { PreparedWork(slot: Slot()) }

    /// Gives a pending slot its work; false if it already had some.
    @discardableResult
    public func fill(_ value: some Sendable) -> Bool {
        slot.condition.lock()
        defer { slot.condition.unlock() }
        guard !slot.filled else { return false }
        slot.value = value
        slot.filled = true
        slot.condition.broadcast()
        return true
    }

    public var isPending: Bool {
        slot.condition.lock()
        defer { slot.condition.unlock() }
        return !slot.filled
    }

    /// The work, once given; nil if it has not come within `timeout`.
    public func value(waiting timeout: Duration = .seconds(1)) -> Any? {
        whenFilled(within: timeout) { $0.value }
    }

    /// The work, once given, moved out of the slot (a later reader finds
    /// nothing and does the work itself); nil if it has not come within
    /// `timeout`. The one reader that takes it then holds the only
    /// reference to it, and can change it without copying it.
    public func take(waiting timeout: Duration = .seconds(1)) -> Any? {
        whenFilled(within: timeout) { $0.value.take() }
    }

    /// `body` on the slot, under its lock, once filled or after `timeout`.
    private func whenFilled<R>(within timeout: Duration, _ body: (Slot) -> R) -> R {
        let deadline = Date(timeIntervalSinceNow: timeout.inSeconds)
        slot.condition.lock()
        defer { slot.condition.unlock() }
        while !slot.filled {
            if !slot.condition.wait(until: deadline) { break }
        }
        return body(slot)
    }

    public static func == (a: PreparedWork, b: PreparedWork) -> Bool { true }
    public func hash(into hasher: inout Hasher) {}
}
