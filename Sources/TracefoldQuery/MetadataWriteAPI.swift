import Hummingbird
import NIOCore
import TracefoldFold
import TracefoldMapping
import TracefoldModel

/// `POST /api/public/traces/{traceId}/metadata` and its Inngest-style alias
/// `POST /v1/runs/{traceId}/metadata` (SPEC §7.5, §4.3–§4.7). Strict: the
/// whole request is validated, then applied all-or-nothing.
public struct MetadataWriteAPI: Sendable {
    let folder: TraceFolder
    /// Request bodies larger than this are refused before parsing.
    static let maxBody = 8 << 20

    /// As the query API's: the limits are checked against a trace that holds
    /// every span acknowledged before the write.
    let awaitVisibility: @Sendable () -> Void

    public init(folder: TraceFolder, awaitVisibility: @escaping @Sendable () -> Void = {}) {
        self.folder = folder
        self.awaitVisibility = awaitVisibility
    }

    public func register(on router: Router<BasicRequestContext>) {
        for path in ["/api/public/traces/:id/metadata", "/v1/runs/:id/metadata"] {
            router.post(RouterPath(stringLiteral: path)) { request, context in
                try await self.write(request, traceID: QueryAPI.pathID(context))
            }
        }
    }

    struct Refusal: Error {
        var status: HTTPResponse.Status
        var error: String
        var detail: String?

        static func metadata(_ detail: String) -> Refusal { Refusal(status: .badRequest, error: "Invalid metadata", detail: detail) }
        static func target(_ detail: String) -> Refusal { Refusal(status: .badRequest, error: "Invalid metadata target", detail: detail) }

        var response: Response {
            var body: [String: JSONValue] = ["error": .string(error), "status": .int(Int64(status.code))]
            if let detail { body["detail"] = .string(detail) }
            return QueryAPI.json(status, .object(body))
        }
    }

    func write(_ request: Request, traceID raw: String) async throws -> Response {
        let receivedAt = WallClock.nowUnixNano()
        do {
            guard let traceID = TraceID(hex: raw), !traceID.isZero else { throw Refusal.target("traceId must be 32 hex digits, not all zero") }
            var request = request
            let buffer: ByteBuffer
            do {
                buffer = try await request.collectBody(upTo: Self.maxBody)
            } catch {
                throw Refusal(status: .contentTooLarge, error: "Request body too large", detail: "at most \(Self.maxBody) bytes")
            }
            guard case .object(let body)? = try? JSONParser.parse(Array(buffer: buffer)) else { throw Refusal.metadata("the body must be a JSON object") }
            let (scope, target) = try Self.target(body["target"])
            guard case .array(let items)? = body["metadata"], !items.isEmpty else { throw Refusal.metadata("metadata must be a non-empty array") }
            var updates = [MetadataUpdate]()
            for (i, item) in items.enumerated() {
                guard case .object(let o) = item else { throw Refusal.metadata("metadata[\(i)] must be an object") }
                if let op = o["op"], op != .null {
                    guard op.stringValue?.lowercased() == "merge" else { throw Refusal.metadata("unsupported op") }
                }
                guard let rawKind = o["kind"].map({ $0.stringValue }) ?? "" else { throw Refusal.metadata("metadata[\(i)].kind must be a string") }
                let kind: String
                switch MetadataKind.normalise(rawKind, fromClient: true) {
                case .success(let k): kind = k
                case .failure(let e): throw Refusal.metadata(e.message)
                }
                let values: [String: JSONValue]
                switch o["values"] {
                case .object(let v)?: values = v
                case .null?, nil: values = [:]  // an empty update of size 0
                default: throw Refusal.metadata("metadata[\(i)].values must be a JSON object")
                }
                var id = "api/\(receivedAt)/\(i)"
                if let memo = o["id"], memo != .null {
                    guard let m = memo.stringValue, !m.isEmpty else { throw Refusal.metadata("metadata[\(i)].id must be a non-empty string") }
                    id = "memo/" + m
                }
                updates.append(MetadataUpdate(id: UpdateID(id), scope: scope, target: target, kind: kind, values: values.mapValues(JSONText.init),
                                              order: OrderKey(time: receivedAt, spanID: 0, position: i)))
            }
            let (folder, batch) = (self.folder, updates)
            switch try await QueryAPI.offload({ [awaitVisibility] in
                awaitVisibility()
                return try folder.applyAPI(batch, to: traceID)
            }) {
            case nil: return QueryAPI.json(.ok, .object([:]))
            case .updateTooLarge?:
                return Refusal(status: .contentTooLarge, error: "Metadata span exceeds maximum size of 64KB").response
            case .cumulativeTooLarge?:
                return Refusal(status: .contentTooLarge, error: "Cumulative metadata size exceeds limit").response
            }
        } catch let refusal as Refusal {
            return refusal.response
        }
    }

    /// none → trace; `observation_id` (or `step_id`) → observation; `span_id`
    /// → extended_trace, whatever else is set (reference M2.3).
    static func target(_ value: JSONValue?) throws -> (MetadataScope, SpanID?) {
        guard let value, value != .null else { return (.trace, nil) }
        guard case .object(let t) = value else { throw Refusal.target("target must be an object") }
        func id(_ key: String) throws -> SpanID? {
            guard let v = t[key], v != .null else { return nil }
            guard let s = v.stringValue, let id = SpanID(hex: s), !id.isZero else { throw Refusal.target("\(key) must be 16 hex digits, not all zero") }
            return id
        }
        let known: Set<String> = ["observation_id", "step_id", "span_id", "step_index", "attempt"]
        if let unknown = t.keys.first(where: { !known.contains($0) }) { throw Refusal.target("unknown target field \"\(unknown)\"") }
        let observation = try id("observation_id") ?? id("step_id")
        if observation == nil, t["step_index"] != nil || t["attempt"] != nil {
            throw Refusal.target("step_index and attempt need step_id or observation_id")
        }
        if let span = try id("span_id") { return (.extendedTrace, span) }
        if let observation { return (.observation, observation) }
        return (.trace, nil)
    }
}
