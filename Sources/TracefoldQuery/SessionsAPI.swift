import Hummingbird
import TracefoldMapping
import TracefoldModel
import TracefoldStore

/// Langfuse's sessions (SPEC §7.9): the traces that share a `sessionId`.
extension QueryAPI {
    /// `GET /api/public/sessions`: page and limit, `fromTimestamp` /
    /// `toTimestamp` on the session's creation, `environment` any-of.
    func listSessions(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        do {
            let (page, limit) = try q.page()
            let (rows, total) = try store.sessions(
                fromUnixNano: try q.time("fromTimestamp"), toUnixNano: try q.time("toTimestamp"), environments: q.list("environment"),
                page: page, limit: limit
            )
            return Self.json(.ok, .object(["data": .array(rows.map(session)), "meta": Self.meta(page: page, limit: limit, total: total)]))
        } catch let e as QueryError {
            return e.response
        }
    }

    /// `GET /api/public/sessions/{id}`: the session with its traces, oldest
    /// first.
    func getSession(_ id: String) throws -> Response {
        let records = try store.traceRecords(inSession: id)
        guard !records.isEmpty else { return Self.error(.notFound, "Session not found", "no session with id \"\(id)\"") }
        let traces = try traceItems(records)
        let first = traces.first
        let created = first?["timestamp"]?.stringValue.flatMap(ISOTime.parse).map { Int64(bitPattern: $0) } ?? 0
        guard case .object(var o) = session(SessionRow(id: id, createdAtUnixNano: created, environment: first?["environment"]?.stringValue)) else {
            return Self.error(.notFound, "Session not found", "no session with id \"\(id)\"")
        }
        o["traces"] = .array(traces)
        return Self.json(.ok, .object(o))
    }

    func session(_ row: SessionRow) -> JSONValue {
        .object([
            "id": .string(row.id), "createdAt": .string(ISOTime.format(unixNano: UInt64(bitPattern: row.createdAtUnixNano))),
            "projectId": .string(projectID), "environment": row.environment.map(JSONValue.string) ?? .string("default"),
        ])
    }
}
