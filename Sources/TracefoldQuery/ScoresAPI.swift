import Foundation
import Hummingbird
import NIOCore
import TracefoldFold
import TracefoldMapping
import TracefoldModel
import TracefoldStore

/// Langfuse's score endpoints (SPEC §7.9): the v5 SDK's batch
/// `POST /api/public/scores` (and older SDKs' single score),
/// `score-create` events on `POST /api/public/ingestion`, the v3 cursor
/// list, the v2 page list, one score by id, and its delete.
public struct ScoresAPI: Sendable {
    let store: any RecordStore
    let projectID: String
    let awaitVisibility: @Sendable () -> Void
    public init(store: any RecordStore, projectID: String, awaitVisibility: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.projectID = projectID
        self.awaitVisibility = awaitVisibility
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.post("/api/public/scores") { request, _ in try await self.create(request) }
        router.post("/api/public/ingestion") { request, _ in try await self.ingest(request) }
        router.get("/api/public/v3/scores") { request, _ in try await self.read { try self.listV3(request) } }
        router.get("/api/public/scores") { request, _ in try await self.read { try self.listV2(request) } }
        router.get("/api/public/scores/:id") { _, context in
            let id = QueryAPI.pathID(context)
            return try await self.read { try self.get(id) }
        }
        router.delete("/api/public/scores/:id") { _, context in
            let id = QueryAPI.pathID(context)
            return try await QueryAPI.offload {
                try store.deleteScore(id: id) ? Response(status: .noContent) : Self.notFound(id)
            }
        }
    }

    func read(_ body: @escaping @Sendable () throws -> Response) async throws -> Response {
        try await QueryAPI.offload { [awaitVisibility] in
            awaitVisibility()
            return try body()
        }
    }

    static func notFound(_ id: String) -> Response { QueryAPI.error(.notFound, "Score not found", "no score with id \"\(id)\"") }

    /// WebDAV's 207, which Langfuse answers a partly accepted batch with.
    static let multiStatus = HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status")

    static func newID() -> String { UUID().uuidString.lowercased() }

    // MARK: writes

    /// v5: a list of scores, 202 when every one is accepted, else 207 with
    /// the counts and a message per rejected score. Older SDKs: one score,
    /// 200 with its id, or 400.
    func create(_ request: Request) async throws -> Response {
        try await QueryAPI.withJSONBody(request) { body, receivedAt in try await create(body, receivedAt: receivedAt) }
    }

    func create(_ body: JSONValue, receivedAt: UInt64) async throws -> Response {
        let store = self.store
        if case .object = body {
            do {
                let score = try ScoreInput.parse(body, receivedAt: receivedAt, newID: Self.newID)
                try await QueryAPI.offload { try store.writeScores([score]) }
                return QueryAPI.json(.ok, .object(["id": .string(score.id)]))
            } catch let e as ScoreInput.Invalid {
                return QueryAPI.error(.badRequest, "InvalidRequestError", e.message)
            }
        }
        guard case .array(let items) = body else {
            return QueryAPI.error(.badRequest, "InvalidRequestError", "the body must be a JSON array of scores (or one score object)")
        }
        var accepted = [ScoreWrite]()
        var errors = [JSONValue]()
        for (i, item) in items.enumerated() {
            do {
                accepted.append(try ScoreInput.parse(item, receivedAt: receivedAt, newID: Self.newID))
            } catch {
                errors.append(.object(["message": .string("scores[\(i)]: \(error.message)")]))
            }
        }
        let batch = accepted
        try await QueryAPI.offload { try store.writeScores(batch) }
        if errors.isEmpty { return QueryAPI.json(.accepted, .object(["message": .string("Accepted")])) }
        return QueryAPI.json(Self.multiStatus, .object([
            "accepted": .int(Int64(accepted.count)), "rejected": .int(Int64(errors.count)), "errors": .array(errors),
        ]))
    }

    /// Langfuse's batch ingestion, for `score-create` events: 207 with a
    /// result per event. Traces and observations come as spans over OTLP,
    /// so any other event type is refused, per event, saying so.
    func ingest(_ request: Request) async throws -> Response {
        try await QueryAPI.withJSONBody(request) { body, receivedAt in try await ingest(body, receivedAt: receivedAt) }
    }

    func ingest(_ body: JSONValue, receivedAt: UInt64) async throws -> Response {
        guard case .array(let events)? = body["batch"] else {
            return QueryAPI.error(.badRequest, "InvalidRequestError", "the body must be an object with a batch array of events")
        }
        var accepted = [ScoreWrite]()
        var successes = [JSONValue]()
        var errors = [JSONValue]()
        for (i, event) in events.enumerated() {
            let eventID = event["id"]?.stringValue ?? "batch[\(i)]"
            func fail(_ message: String) {
                errors.append(.object(["id": .string(eventID), "status": .int(400), "message": .string(message), "error": .string(message)]))
            }
            guard case .object = event, let type = event["type"]?.stringValue else {
                fail("batch[\(i)] must be an event object with a type")
                continue
            }
            guard type == "score-create" else {
                fail("event type \"\(type)\" is not accepted here: only score-create is; send traces and observations as spans over OTLP (/api/public/otel/v1/traces)")
                continue
            }
            do {
                accepted.append(try ScoreInput.parse(event["body"] ?? .null, receivedAt: receivedAt, newID: Self.newID))
                successes.append(.object(["id": .string(eventID), "status": .int(201)]))
            } catch {
                fail("batch[\(i)].body: \(error.message)")
            }
        }
        let store = self.store, batch = accepted
        try await QueryAPI.offload { try store.writeScores(batch) }
        return QueryAPI.json(Self.multiStatus, .object(["successes": .array(successes), "errors": .array(errors)]))
    }

    // MARK: reads

    func get(_ id: String) throws -> Response {
        guard let score = try store.score(id: id) else { return Self.notFound(id) }
        return QueryAPI.json(.ok, v2(score))
    }

    /// Langfuse's v2 (and v1) score object: the stored record with the project.
    func v2(_ score: StoredScore) -> JSONValue {
        var o = score.record
        o["projectId"] = .string(projectID)
        return .object(o)
    }

    /// The v3 object: the core fields, a typed `value`, and the field
    /// groups asked for.
    func v3(_ score: StoredScore, groups: Set<String>) -> JSONValue {
        let r = score.record
        var o: [String: JSONValue] = ["projectId": .string(projectID)]
        for key in ["id", "name", "dataType", "source", "timestamp", "environment", "createdAt", "updatedAt"] { o[key] = r[key] ?? .null }
        o["value"] = score.typedValue
        if groups.contains("details") {
            for key in ["comment", "configId", "metadata"] { o[key] = r[key] ?? .null }
        }
        if groups.contains("annotation") {
            for key in ["authorUserId", "queueId"] { o[key] = r[key] ?? .null }
        }
        if groups.contains("subject") {
            if let observation = r["observationId"]?.stringValue {
                o["subject"] = .object(["kind": .string("observation"), "id": .string(observation), "traceId": r["traceId"] ?? .null])
            } else if let trace = r["traceId"]?.stringValue {
                o["subject"] = .object(["kind": .string("trace"), "id": .string(trace)])
            } else if let session = r["sessionId"]?.stringValue {
                o["subject"] = .object(["kind": .string("session"), "id": .string(session)])
            } else if let run = r["datasetRunId"]?.stringValue {
                o["subject"] = .object(["kind": .string("experiment"), "id": .string(run)])
            }
        }
        return .object(o)
    }

    static let fieldGroups: Set<String> = ["details", "subject", "annotation"]

    /// `GET /api/public/v3/scores`: the SDK's `get_many`, newest first, a
    /// base64url cursor to the next page.
    func listV3(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        do {
            let limit = try q.limit()
            let groups = Set(q.list("fields"))
            if let unknown = groups.subtracting(Self.fieldGroups).sorted().first {
                throw QueryError("fields: unknown field group \"\(unknown)\"; allowed: annotation, details, subject")
            }
            var after: (Int64, String)?
            if let c = q.one("cursor") {
                guard let decoded = Base64.decode(c.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")),
                    let v = try? JSONParser.parse(decoded), case .int(let t)? = v["t"], let id = v["id"]?.stringValue
                else { throw QueryError("cursor is not one this server gave out") }
                after = (t, id)
            }
            var f = try filter(q)
            f.traceIDs = q.list("traceId").map(Self.normalisedTraceID)
            f.observationIDs = q.list("observationId").map(Self.normalisedSpanID)
            f.sessionIDs = q.list("sessionId")
            f.datasetRunIDs = q.list("experimentId")
            if !f.sessionIDs.isEmpty && !(f.traceIDs.isEmpty && f.observationIDs.isEmpty && f.datasetRunIDs.isEmpty) {
                throw QueryError("sessionId cannot be combined with traceId, observationId or experimentId")
            }
            if !f.datasetRunIDs.isEmpty && !(f.traceIDs.isEmpty && f.observationIDs.isEmpty) {
                throw QueryError("experimentId cannot be combined with traceId or observationId")
            }
            if !f.observationIDs.isEmpty && f.traceIDs.isEmpty { throw QueryError("observationId needs traceId: observation ids are scoped to a trace") }
            try valueFilters(q, into: &f)
            var rows = try store.scores(f, after: after, limit: limit)
            var meta: [String: JSONValue] = ["limit": .int(Int64(limit))]
            if rows.count > limit {
                rows.removeLast(rows.count - limit)
                let last = rows[limit - 1]
                let cursor = JSONWriter.serialize(.object(["t": .int(last.timestampUnixNano), "id": .string(last.id)]))
                meta["cursor"] = .string(Base64.encode(Array(cursor.utf8)).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: ""))
            }
            return QueryAPI.json(.ok, .object(["data": .array(rows.map { v3($0, groups: groups) }), "meta": .object(meta)]))
        } catch let e as QueryError {
            return e.response
        }
    }

    /// `GET /api/public/scores`: Langfuse's v2 list, page and limit.
    func listV2(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        do {
            let (page, limit) = try q.page()
            var f = try filter(q)
            f.ids += q.list("scoreIds")
            f.traceIDs = q.list("traceId").map(Self.normalisedTraceID)
            f.observationIDs = q.list("observationId").map(Self.normalisedSpanID)
            f.sessionIDs = q.list("sessionId")
            f.datasetRunIDs = q.list("datasetRunId")
            let (rows, total) = try store.scores(f, page: page, limit: limit)
            return QueryAPI.json(.ok, .object(["data": .array(rows.map(v2)), "meta": QueryAPI.meta(page: page, limit: limit, total: total)]))
        } catch let e as QueryError {
            return e.response
        }
    }

    /// The filters both lists share.
    func filter(_ q: QueryParameters) throws -> ScoreFilter {
        var f = ScoreFilter()
        f.ids = q.list("id")
        f.names = q.list("name")
        f.sources = q.list("source").map { $0.uppercased() }
        f.dataTypes = q.list("dataType").map { $0.uppercased() }
        if let bad = f.dataTypes.first(where: { !ScoreInput.dataTypes.contains($0) }) {
            throw QueryError("dataType must be among \(ScoreInput.dataTypes.joined(separator: ", ")), got \"\(bad)\"")
        }
        f.environments = q.list("environment")
        f.configIDs = q.list("configId")
        f.queueIDs = q.list("queueId")
        // Scores made through the API have no author.
        if !q.list("authorUserId").isEmpty { f.ids = [""] }
        f.fromUnixNano = try q.time("fromTimestamp")
        f.toUnixNano = try q.time("toTimestamp")
        return f
    }

    /// `value`, `valueMin` and `valueMax`, with the v3 rules: one data type,
    /// and NUMERIC for the bounds.
    func valueFilters(_ q: QueryParameters, into f: inout ScoreFilter) throws {
        let values = q.list("value")
        let bounds = (q.one("valueMin"), q.one("valueMax"))
        guard !values.isEmpty || bounds.0 != nil || bounds.1 != nil else { return }
        guard f.dataTypes.count == 1, let type = f.dataTypes.first else {
            throw QueryError("value, valueMin and valueMax need exactly one dataType")
        }
        func number(_ name: String, _ s: String) throws -> Double {
            guard let d = Double(s), d.isFinite else { throw QueryError("\(name) must be a finite number, got \"\(s)\"") }
            return d
        }
        if bounds.0 != nil || bounds.1 != nil {
            guard type == "NUMERIC" else { throw QueryError("valueMin and valueMax need dataType=NUMERIC") }
            f.valueMin = try bounds.0.map { try number("valueMin", $0) }
            f.valueMax = try bounds.1.map { try number("valueMax", $0) }
        }
        switch type {
        case "NUMERIC": f.values = try values.map { try number("value", $0) }
        case "BOOLEAN":
            f.values = try values.map { v in
                switch v.lowercased() {
                case "true": return 1
                case "false": return 0
                default: throw QueryError("value must be true or false for dataType=BOOLEAN, got \"\(v)\"")
                }
            }
        case "CATEGORICAL": f.categories = values
        default: if !values.isEmpty { throw QueryError("value filters need dataType NUMERIC, BOOLEAN or CATEGORICAL") }
        }
    }

    /// Scores store our hex ids in lower case; a filter may spell them in capitals.
    static func normalisedTraceID(_ s: String) -> String { TraceID(hex: s)?.hex ?? s }
    static func normalisedSpanID(_ s: String) -> String { SpanID(hex: s)?.hex ?? s }
}
