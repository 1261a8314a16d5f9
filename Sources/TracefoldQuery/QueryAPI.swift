import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import TracefoldConfig
import TracefoldMapping
import TracefoldModel
import TracefoldStore

/// The Langfuse v1 read API over the store (SPEC §7.1, §7.6):
/// `GET /api/public/traces[/{id}]` and `GET /api/public/observations[/{id}]`.
/// Answers use Langfuse's shapes, so Langfuse clients can read them.
public struct QueryAPI: Sendable {
    let store: any RecordStore
    /// Waits (bounded) until spans acknowledged before the request have been
    /// folded: the ack comes at the intake log's commit, before the fold.
    let awaitVisibility: @Sendable () -> Void
    /// Every metadata entry of a trace as a JSON array, nil for an unknown
    /// trace: rendered by the fold from the trace's state
    /// (`TraceFolder.allEntries`), since the store keeps no copy.
    let allEntries: @Sendable (TraceID) throws -> [UInt8]?
    /// Langfuse puts the project in every record and in `htmlPath`.
    let projectID: String

    public init(
        store: any RecordStore, projectID: String = QueryAPIConfig().project, awaitVisibility: @escaping @Sendable () -> Void = {},
        allEntries: @escaping @Sendable (TraceID) throws -> [UInt8]? = { _ in nil }
    ) {
        self.store = store
        self.projectID = projectID
        self.awaitVisibility = awaitVisibility
        self.allEntries = allEntries
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.get("/api/public/traces") { request, _ in try await read { try self.listTraces(request) } }
        router.get("/api/public/traces/:id") { _, context in
            let id = QueryAPI.pathID(context)
            return try await read { try self.getTrace(id) }
        }
        router.get("/api/public/observations") { request, _ in try await read { try self.listObservations(request) } }
        router.get("/api/public/observations/:id") { _, context in
            let id = QueryAPI.pathID(context)
            return try await read { try self.getObservation(id) }
        }
        router.get("/api/public/v2/observations") { request, _ in try await read { try self.listObservationsV2(request) } }
        router.get("/api/traces/:id/metadata") { _, context in
            let id = QueryAPI.pathID(context)
            return try await read { try self.traceMetadata(id) }
        }
        router.get("/api/metrics/summary") { request, _ in try await read { try self.summary(request) } }
        router.get("/api/metrics/timeseries") { request, _ in try await read { try self.timeSeries(request) } }
        router.get("/api/public/sessions") { request, _ in try await read { try self.listSessions(request) } }
        router.get("/api/public/sessions/:id") { _, context in
            let id = QueryAPI.pathID(context)
            return try await read { try self.getSession(id) }
        }
    }

    /// The `{id}` of a route, percent-decoded: session and score ids may
    /// hold any character (`/sessions/chat%20one`).
    static func pathID(_ context: BasicRequestContext) -> String {
        let raw = context.parameters.get("id") ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    /// The body limit of the JSON write routes (scores, ingestion, bulk
    /// delete): Langfuse's (Next.js's default), to which the SDK caps its
    /// score batches.
    public static let maxJSONBody = 1 << 20

    /// Hands the body as JSON, with the time it was received, to `handle`;
    /// answers 413 past `maxJSONBody` and 400 when it is not JSON.
    static func withJSONBody(_ request: Request, _ handle: (JSONValue, UInt64) async throws -> Response) async throws -> Response {
        let receivedAt = WallClock.nowUnixNano()
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxJSONBody)
        } catch {
            return QueryAPI.error(.contentTooLarge, "Request body too large", "the body may have at most \(maxJSONBody) bytes")
        }
        guard let value = try? JSONParser.parse(Array(buffer: buffer)) else {
            return QueryAPI.error(.badRequest, "InvalidRequestError", "the body must be JSON")
        }
        return try await handle(value, receivedAt)
    }

    /// A store read, after what was acknowledged before it is visible.
    func read<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Self.offload { [awaitVisibility] in
            awaitVisibility()
            return try body()
        }
    }

    /// Store calls block (GRDB, or a wait for PostgreSQL), so they run on
    /// NIO's thread pool for blocking work, not on Swift's cooperative pool.
    static func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    // MARK: handlers

    func listTraces(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        var f = TraceFilter()
        f.userID = q.one("userId")
        f.name = q.one("name")
        f.sessionID = q.one("sessionId")
        f.version = q.one("version")
        f.release = q.one("release")
        f.tags = q.list("tags")
        f.environments = q.list("environment")
        do {
            f.level = try q.one("level").map(Self.traceLevel)
            (f.page, f.limit) = try q.page()
            f.fromUnixNano = try q.time("fromTimestamp")
            f.toUnixNano = try q.time("toTimestamp")
            if let order = q.one("orderBy") {
                let parts = order.split(separator: ".")
                guard parts.count == 2, TraceFilter.orderColumns[String(parts[0])] != nil, parts[1] == "asc" || parts[1] == "desc" else {
                    throw QueryError("orderBy must be <column>.<asc|desc> with column one of \(TraceFilter.orderColumns.keys.sorted().joined(separator: ", "))")
                }
                f.orderBy = (String(parts[0]), parts[1] == "asc")
            }
            if let filter = q.one("filter") { try applyFilter(filter, to: &f) }
            let (records, total) = try store.traces(f)
            return Self.json(.ok, .object(["data": .array(try traceItems(records)), "meta": Self.meta(page: f.page, limit: f.limit, total: total)]))
        } catch let e as QueryError {
            return e.response
        }
    }

    func getTrace(_ id: String) throws -> Response {
        guard let traceID = TraceID(hex: id), let text = try store.traceRecord(traceID) else {
            return Self.error(.notFound, "Trace not found", "no trace with id \"\(id)\"")
        }
        var trace = try listItem(JSONParser.parse(text)).objectValue ?? [:]
        // On the single-trace route observations and scores are full
        // objects (Langfuse v1).
        trace["observations"] = .array(try store.observationRecords(of: traceID).map { try observationItem(JSONParser.parse($0)) })
        let scores = ScoresAPI(store: store, projectID: projectID)
        trace["scores"] = .array(try store.scores(ofTraces: [traceID.hex])[traceID.hex, default: []].map(scores.v2))
        return Self.json(.ok, .object(trace))
    }

    /// SPEC §7.3: every metadata entry of the trace, grouped by scope and then
    /// kind; observation and extended-trace entries carry their span id.
    func traceMetadata(_ id: String) throws -> Response {
        guard let traceID = TraceID(hex: id), let text = try allEntries(traceID) else {
            return Self.error(.notFound, "Trace not found", "no trace with id \"\(id)\"")
        }
        var grouped = [String: [String: JSONValue]]()
        var entries = try JSONParser.parse(text).arrayValue ?? []
        Self.addScores(try store.scores(ofTraces: [traceID.hex])[traceID.hex] ?? [], to: &entries)
        for entry in entries {
            guard let scope = entry["scope"]?.stringValue, let kind = entry["kind"]?.stringValue, var body = entry.objectValue else { continue }
            body["scope"] = nil
            body["kind"] = nil
            grouped[scope, default: [:]][kind, default: .array([])] = .array((grouped[scope]?[kind]?.arrayValue ?? []) + [.object(body)])
        }
        return Self.json(.ok, .object(["traceId": .string(traceID.hex), "metadata": .object(grouped.mapValues(JSONValue.object))]))
    }

    /// A trace's scores as `tracefold.score` entries ("Scores"): trace and
    /// session-less scores in the trace scope, an observation's in its
    /// observation scope, each value under the score's name, the latest
    /// score of a name winning. A client-written `tracefold.score` entry of
    /// the same scope takes them into its values.
    static func addScores(_ scores: [StoredScore], to entries: inout [JSONValue]) {
        for score in scores {
            let r = score.record
            let value = score.typedValue
            let spanID = r["observationId"]?.stringValue
            let scope = spanID == nil ? "trace" : "observation"
            let i = entries.firstIndex {
                $0["kind"]?.stringValue == "tracefold.score" && $0["scope"]?.stringValue == scope && $0["spanId"]?.stringValue == spanID
            }
            var entry = i.flatMap { entries[$0].objectValue } ?? [
                "kind": .string("tracefold.score"), "label": .string(MetadataKind.label("tracefold.score")), "scope": .string(scope),
                "values": .object([:]), "updatedAt": .null,
            ]
            if let spanID { entry["spanId"] = .string(spanID) }
            var values = entry["values"]?.objectValue ?? [:]
            values[r["name"]?.stringValue ?? ""] = value
            entry["values"] = .object(values)
            // ISO-8601 UTC strings of one format order as their times do.
            if let updated = r["updatedAt"]?.stringValue, (entry["updatedAt"]?.stringValue ?? "") < updated { entry["updatedAt"] = .string(updated) }
            if let i { entries[i] = .object(entry) } else { entries.append(.object(entry)) }
        }
    }

    /// SPEC §7.4: per group, traces, observations, errors, p50/p95 latency,
    /// tokens and cost, computed by the store's query.
    func summary(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        do {
            guard let by = q.one("groupBy") else { throw QueryError("groupBy is required: metadata.KEY, userId, environment, model or name") }
            let grouping: SummaryGrouping
            switch by {
            case "userId": grouping = .userID
            case "environment": grouping = .environment
            case "model": grouping = .model
            case "name": grouping = .name
            default:
                guard by.hasPrefix("metadata."), by.count > 9 else {
                    throw QueryError("groupBy must be metadata.KEY, userId, environment, model or name, got \"\(by)\"")
                }
                grouping = .metadata(String(by.dropFirst(9)))
            }
            let rows = try store.summary(groupBy: grouping, fromUnixNano: try q.time("from"), toUnixNano: try q.time("to"))
            let number = Self.number
            let data: [JSONValue] = rows.map { r in
                .object([
                    "group": r.group, "traces": .int(Int64(r.traces)), "observations": .int(Int64(r.observations)),
                    "errors": .int(Int64(r.errors)),
                    "latencyP50": r.latencyP50.map(JSONValue.double) ?? .null, "latencyP95": r.latencyP95.map(JSONValue.double) ?? .null,
                    "inputTokens": number(r.inputTokens), "outputTokens": number(r.outputTokens), "totalTokens": number(r.totalTokens),
                    "totalCost": .double(r.totalCost),
                    "scores": .object(r.scores.mapValues { .object(["count": .int(Int64($0.count)), "average": .double($0.average)]) }),
                ])
            }
            return Self.json(.ok, .object(["groupBy": .string(by), "data": .array(data)]))
        } catch let e as QueryError {
            return e.response
        }
    }

    func listObservations(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        var f = ObservationFilter()
        do {
            (f.page, f.limit) = try q.page()
            try q.observationFilter(into: &f)
            return try Self.list(store.observations(f), page: f.page, limit: f.limit, item: observationItem)
        } catch let e as QueryError {
            return e.response
        }
    }

    func getObservation(_ id: String) throws -> Response {
        guard let spanID = SpanID(hex: id), let text = try store.observation(spanID) else {
            return Self.error(.notFound, "Observation not found", "no observation with id \"\(id)\"")
        }
        return Self.json(.ok, try observationItem(JSONParser.parse(text)))
    }

    /// `filter`: a JSON array of Langfuse filter objects. Metadata takes
    /// `stringObject` with `=` or `contains` on a top-level key; the simple
    /// columns take `=` (or `any of` / `all of` for environment and tags).
    func applyFilter(_ text: String, to f: inout TraceFilter) throws {
        guard case .array(let items)? = try? JSONParser.parse(text) else { throw QueryError("filter must be a JSON array of filter objects") }
        for (i, item) in items.enumerated() {
            guard let column = item["column"]?.stringValue, let op = item["operator"]?.stringValue else {
                throw QueryError("filter[\(i)] needs column and operator")
            }
            let value = item["value"]
            switch column {
            case "metadata":
                guard let key = item["key"]?.stringValue, !key.isEmpty, let v = value?.stringValue else {
                    throw QueryError("filter[\(i)]: a metadata filter needs type stringObject, a key and a string value")
                }
                switch op {
                case "=": f.metadata.append((key, .equals, v))
                case "contains": f.metadata.append((key, .contains, v))
                default: throw QueryError("filter[\(i)]: metadata supports the operators = and contains")
                }
            case "userId", "name", "sessionId", "version", "release":
                guard op == "=", let v = value?.stringValue else { throw QueryError("filter[\(i)]: \(column) supports = with a string value") }
                switch column {
                case "userId": f.userID = v
                case "name": f.name = v
                case "sessionId": f.sessionID = v
                case "version": f.version = v
                default: f.release = v
                }
            case "level":
                guard op == "=", let v = value?.stringValue else { throw QueryError("filter[\(i)]: level supports = with a string value") }
                f.level = try Self.traceLevel(v)
            case "environment":
                f.environments = value?.arrayValue?.compactMap(\.stringValue) ?? value?.stringValue.map { [$0] } ?? []
            case "tags":
                f.tags = value?.arrayValue?.compactMap(\.stringValue) ?? value?.stringValue.map { [$0] } ?? []
            case "timestamp":
                guard let s = value?.stringValue, let t = ISOTime.parse(s) else { throw QueryError("filter[\(i)]: timestamp needs an ISO-8601 value") }
                switch op {
                case ">=", ">": f.fromUnixNano = op == ">" ? t + 1 : t
                case "<", "<=": f.toUnixNano = op == "<=" ? t + 1 : t
                default: throw QueryError("filter[\(i)]: timestamp supports >, >=, < and <=")
                }
            default:
                throw QueryError("filter[\(i)]: unknown column \"\(column)\"")
            }
        }
    }

    // MARK: shapes

    /// A trace's level, spelled as an observation's (`ObservationLevel`).
    static func traceLevel(_ value: String) throws -> ObservationLevel {
        guard let level = ObservationLevel(alias: value) else { throw QueryError("level must be DEBUG, DEFAULT, WARNING or ERROR, got \"\(value)\"") }
        return level
    }

    /// Trace records in the list shape, each with its score ids, the latest
    /// value per score name (`scoreValues`) and what its observations add
    /// up to: `observationCount`, `errorCount` and the
    /// tokens (tracefold's, beside Langfuse's `totalCost`).
    func traceItems(_ records: [String]) throws -> [JSONValue] {
        var items = try records.map { try listItem(JSONParser.parse($0)) }
        let ids = items.map { $0["id"]?.stringValue }
        let traceIDs = ids.map { $0.flatMap { TraceID(hex: $0) } }
        let scores = try store.scores(ofTraces: ids.compactMap { $0 })
        let totals = try store.traceTotals(of: traceIDs.compactMap { $0 })
        for i in items.indices {
            guard case .object(var o) = items[i], let id = ids[i] else { continue }
            if let list = scores[id] {
                o["scores"] = .array(list.map { .string($0.id) })
                // The latest value of each score name, oldest first in `list`.
                var values = [String: JSONValue]()
                for score in list { values[score.record["name"]?.stringValue ?? ""] = score.typedValue }
                o["scoreValues"] = .object(values)
            } else {
                o["scoreValues"] = .object([:])
            }
            let t = traceIDs[i].flatMap { totals[$0] } ?? TraceTotals()
            o["observationCount"] = .int(Int64(t.observations))
            o["errorCount"] = .int(Int64(t.errors))
            o["inputTokens"] = Self.number(t.inputTokens)
            o["outputTokens"] = Self.number(t.outputTokens)
            o["totalTokens"] = Self.number(t.totalTokens)
            items[i] = .object(o)
        }
        return items
    }

    /// A whole number as an integer, anything else as a double.
    static func number(_ d: Double) -> JSONValue { d == d.rounded() && abs(d) < 9e15 ? .int(Int64(d)) : .double(d) }

    func listItem(_ record: JSONValue) -> JSONValue {
        guard var o = record.objectValue, let id = o["id"]?.stringValue else { return record }
        o["projectId"] = .string(projectID)
        o["htmlPath"] = .string("/project/\(projectID)/traces/\(id)")
        o["externalId"] = .null
        o["bookmarked"] = .bool(false)
        o["scores"] = .array([])
        o["createdAt"] = o["timestamp"]
        o["updatedAt"] = o["timestamp"]
        return .object(o)
    }

    func observationItem(_ record: JSONValue) -> JSONValue {
        guard var o = record.objectValue else { return record }
        o["projectId"] = .string(projectID)
        // Langfuse's legacy usage fields, summed from keys containing input/output.
        if let usage = o["usageDetails"]?.objectValue {
            func sum(_ part: String) -> Int64 {
                usage.reduce(0) { acc, kv in
                    guard kv.key.contains(part), case .int(let n) = kv.value else { return acc }
                    return acc + n
                }
            }
            let total: Int64 = { if case .int(let t)? = usage["total"] { return t } else { return sum("input") + sum("output") } }()
            o["usage"] = .object(["unit": .string("TOKENS"), "input": .int(sum("input")), "output": .int(sum("output")), "total": .int(total)])
            o["promptTokens"] = .int(sum("input"))
            o["completionTokens"] = .int(sum("output"))
            o["totalTokens"] = .int(total)
        }
        return .object(o)
    }

    /// `{data, meta:{page, limit, totalItems, totalPages}}`.
    static func list(_ result: (records: [String], total: Int), page: Int, limit: Int, item: (JSONValue) -> JSONValue) throws -> Response {
        let data = try result.records.map { try item(JSONParser.parse($0)) }
        return json(.ok, .object(["data": .array(data), "meta": meta(page: page, limit: limit, total: result.total)]))
    }

    static func meta(page: Int, limit: Int, total: Int) -> JSONValue {
        .object([
            "page": .int(Int64(page)), "limit": .int(Int64(limit)), "totalItems": .int(Int64(total)),
            "totalPages": .int(Int64((total + limit - 1) / limit)),
        ])
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var w = JSONWriter(reservingCapacity: 4096)
        w.write(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: w.bytes)))
    }

    static func error(_ status: HTTPResponse.Status, _ error: String, _ message: String) -> Response {
        json(status, .object(["error": .string(error), "message": .string(message)]))
    }
}

struct QueryError: Error {
    var message: String
    init(_ message: String) { self.message = message }
    var response: Response { QueryAPI.error(.badRequest, "InvalidRequestError", message) }
}

/// Query parameters with the validation every list route shares.
/// A request's query parameters, decoded once as form data (`FormQuery`,
/// SPEC §7.8) for every endpoint.
struct QueryParameters {
    let raw: FormQuery

    init(_ request: Request) { self.raw = FormQuery(request.uri.query) }

    /// The parameter as sent, empty included; nil when absent.
    func value(_ name: String) -> String? { raw[name] }

    func one(_ name: String) -> String? {
        raw[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Repeated (`tags=a&tags=b`) or comma-separated (`tags=a,b`).
    func list(_ name: String) -> [String] {
        raw.all(name).flatMap { $0.split(separator: ",").map { String($0) } }.filter { !$0.isEmpty }
    }

    func time(_ name: String) throws -> UInt64? {
        guard let s = one(name) else { return nil }
        guard let t = ISOTime.parse(s) else { throw QueryError("\(name) must be an ISO-8601 timestamp, got \"\(s)\"") }
        return t
    }

    /// The observation filters the v1 and v2 lists share.
    func observationFilter(into f: inout ObservationFilter) throws {
        if let t = one("type") {
            guard ObservationType(rawValue: t.uppercased()) != nil else {
                throw QueryError("type must be one of \(ObservationType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            f.type = t.uppercased()
        }
        if let level = one("level") {
            guard let l = ObservationLevel(alias: level) else { throw QueryError("level must be DEBUG, DEFAULT, WARNING or ERROR") }
            f.level = l.rawValue
        }
        if let t = one("traceId") {
            guard let id = TraceID(hex: t) else { throw QueryError("traceId must be 32 hex digits") }
            f.traceID = id
        }
        f.name = one("name")
        f.userID = one("userId")
        f.version = one("version")
        f.parentObservationID = one("parentObservationId")
        f.environments = list("environment")
        f.fromUnixNano = try time("fromStartTime")
        f.toUnixNano = try time("toStartTime")
    }

    /// SPEC §7.1: page ≥ 1 (default 1), 1 ≤ limit ≤ 100 (default 50).
    func page() throws(QueryError) -> (page: Int, limit: Int) {
        var page = 1
        if let p = one("page") {
            guard let v = Int(p), v >= 1 else { throw QueryError("page must be an integer of at least 1, got \"\(p)\"") }
            page = v
        }
        return (page, try limit())
    }

    /// 1 ≤ limit ≤ 100, default 50: every list, paged or with a cursor.
    func limit() throws(QueryError) -> Int {
        guard let l = one("limit") else { return 50 }
        guard let v = Int(l), (1...100).contains(v) else { throw QueryError("limit must be an integer from 1 to 100, got \"\(l)\"") }
        return v
    }
}
