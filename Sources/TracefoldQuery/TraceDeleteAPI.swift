import Hummingbird
import NIOCore
import TracefoldFold
import TracefoldModel

/// `DELETE /api/public/traces/{id}` and `DELETE /api/public/traces` with
/// `{"traceIds":[…]}` (SPEC §7.9), in the shape of the SDK's
/// `DeleteTraceResponse`. A trace goes with its observations, spans,
/// metadata and scores, under the fold's locks; the JSONL export writes a
/// tombstone per deleted record.
public struct TraceDeleteAPI: Sendable {
    let folder: TraceFolder
    /// A delete covers every span acknowledged before it.
    let awaitVisibility: @Sendable () -> Void
    /// Ids one bulk delete may name; Langfuse's own bulk delete takes lists
    /// of this order too.
    public static let maxTraceIDs = 1_000

    public init(folder: TraceFolder, awaitVisibility: @escaping @Sendable () -> Void = {}) {
        self.folder = folder
        self.awaitVisibility = awaitVisibility
    }

    public func register(on router: Router<BasicRequestContext>) {
        router.delete("/api/public/traces/:id") { _, context in
            let raw = QueryAPI.pathID(context)
            guard let id = TraceID(hex: raw) else { return QueryAPI.error(.notFound, "Trace not found", "no trace with id \"\(raw)\"") }
            let deleted = try await self.delete([id])
            guard !deleted.isEmpty else { return QueryAPI.error(.notFound, "Trace not found", "no trace with id \"\(raw)\"") }
            return QueryAPI.json(.ok, .object(["message": .string("Trace deleted")]))
        }
        router.delete("/api/public/traces") { request, _ in
            try await QueryAPI.withJSONBody(request) { body, _ in try await self.deleteMany(body) }
        }
    }

    /// `{"traceIds":[…]}`: 1 to `maxTraceIDs` ids.
    func deleteMany(_ body: JSONValue) async throws -> Response {
        guard case .array(let items)? = body["traceIds"] else {
            return QueryAPI.error(.badRequest, "InvalidRequestError", "the body must be {\"traceIds\": [trace ids]}")
        }
        guard (1...Self.maxTraceIDs).contains(items.count) else {
            return QueryAPI.error(.badRequest, "InvalidRequestError", "traceIds must hold 1 to \(Self.maxTraceIDs) ids, got \(items.count)")
        }
        var ids = [TraceID]()
        var seen = Set<TraceID>()
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue else {
                return QueryAPI.error(.badRequest, "InvalidRequestError", "traceIds[\(i)] must be a string")
            }
            // An id that is not 32 hex digits names no trace here.
            if let id = TraceID(hex: s), seen.insert(id).inserted { ids.append(id) }
        }
        let deleted = try await self.delete(ids)
        return QueryAPI.json(.ok, .object(["message": .string("Traces deleted"), "deleted": .int(Int64(deleted.count))]))
    }

    func delete(_ ids: [TraceID]) async throws -> [TraceID] {
        guard !ids.isEmpty else { return [] }
        return try await QueryAPI.offload { [folder, awaitVisibility] in
            awaitVisibility()
            return try folder.delete(ids)
        }
    }
}
