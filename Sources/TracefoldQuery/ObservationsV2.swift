import Foundation
import Hummingbird
import TracefoldMapping
import TracefoldModel
import TracefoldStore

/// `GET /api/public/v2/observations` (SPEC §7.2): cursor pagination and field
/// groups, in the shape the langfuse v5 client's `observations.get_many` reads.
extension QueryAPI {
    static let fieldGroups: [String: [String]] = [
        "core": ["id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type"],
        "basic": ["name", "level", "statusMessage", "version", "environment", "bookmarked", "public", "userId", "sessionId", "isRootObservation"],
        "time": ["completionStartTime", "createdAt", "updatedAt"],
        "io": ["input", "output"],
        "metadata": ["metadata"],
        "model": ["model", "internalModelId", "modelParameters"],
        "usage": ["usageDetails", "costDetails", "totalCost", "usagePricingTierName"],
        "prompt": ["promptId", "promptName", "promptVersion"],
        "metrics": ["latency", "timeToFirstToken"],
        "trace_context": ["tags", "release", "traceName"],
    ]

    func listObservationsV2(_ request: Request) throws -> Response {
        let q = QueryParameters(request)
        var r = ObservationPageRequest()
        do {
            if let l = q.one("limit") {
                guard let v = Int(l), (1...1000).contains(v) else { throw QueryError("limit must be an integer from 1 to 1000, got \"\(l)\"") }
                r.limit = v
            }
            var groups = Set(["core", "basic"])
            if let fields = q.one("fields") {
                groups = ["core"]
                for g in fields.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) where !g.isEmpty {
                    guard Self.fieldGroups[g] != nil else {
                        throw QueryError("fields: unknown group \"\(g)\"; use \(Self.fieldGroups.keys.sorted().joined(separator: ", "))")
                    }
                    groups.insert(g)
                }
            }
            if q.one("parseIoAsJson") == "true" { throw QueryError("parseIoAsJson is deprecated; input and output are raw strings") }
            try q.observationFilter(into: &r.filter)
            if let root = q.one("isRootObservation") {
                guard root == "true" || root == "false" else { throw QueryError("isRootObservation must be true or false") }
                r.isRoot = root == "true"
            }
            r.sessionID = q.one("sessionId")
            // v2: an empty parentObservationId asks for observations without a parent.
            r.filter.parentObservationID = q.value("parentObservationId")
            if let cursor = q.one("cursor") { r.after = try Self.decodeCursor(cursor) }
            let expand = Set(q.list("expandMetadata"))

            var rows = try store.observationPage(r)
            let more = rows.count > r.limit
            if more { rows.removeLast() }
            let data = try rows.map { try v2Item($0, groups: groups, expand: expand) }
            var meta: [String: JSONValue] = [:]
            if more, let last = rows.last { meta["cursor"] = .string(Self.encodeCursor(last)) }
            return Self.json(.ok, .object(["data": .array(data), "meta": .object(meta)]))
        } catch let e as QueryError {
            return e.response
        }
    }

    func v2Item(_ row: ObservationRow, groups: Set<String>, expand: Set<String>) throws -> JSONValue {
        guard var o = try JSONParser.parse(row.record).objectValue else { return .null }
        o["projectId"] = .string(projectID)
        o["isRootObservation"] = .bool(o["parentObservationId"] == .null)
        o["bookmarked"] = .bool(false)
        o["public"] = .bool(row.isPublic)
        o["userId"] = row.userID.map(JSONValue.string) ?? .null
        o["sessionId"] = row.sessionID.map(JSONValue.string) ?? .null
        o["createdAt"] = o["startTime"]
        o["updatedAt"] = o["endTime"]
        o["internalModelId"] = .null
        o["usagePricingTierName"] = .null
        o["promptId"] = .null
        o["totalCost"] = o["costDetails"]?["total"] ?? .null
        o["tags"] = (try? JSONParser.parse(row.tags)) ?? .array([])
        o["release"] = row.release.map(JSONValue.string) ?? o["release"] ?? .null
        o["traceName"] = row.traceName.map(JSONValue.string) ?? .null
        if let start = o["startTime"]?.stringValue.flatMap(ISOTime.parse),
            let first = o["completionStartTime"]?.stringValue.flatMap(ISOTime.parse), first >= start
        {
            o["timeToFirstToken"] = .double(Double(first - start) / 1e9)
        } else {
            o["timeToFirstToken"] = .null
        }
        // The v2 API returns input and output as raw strings.
        for k in ["input", "output"] {
            if let v = o[k], v != .null, v.stringValue == nil { o[k] = .string(JSONWriter.serialize(v)) }
        }
        if case .object(let metadata)? = o["metadata"] {
            o["metadata"] = .object(metadata.reduce(into: [:]) { out, kv in
                let text = kv.value.stringValue ?? JSONWriter.serialize(kv.value)
                out[kv.key] = expand.contains(kv.key) || text.count <= 200 ? kv.value : .string(String(text.prefix(200)))
            })
        }
        let keep = Set(groups.flatMap { Self.fieldGroups[$0] ?? [] })
        return .object(o.filter { keep.contains($0.key) })
    }

    static func encodeCursor(_ row: ObservationRow) -> String {
        let cursor: JSONValue = .object([
            "lastStartTimeTo": .string(String(row.startUnixNano)),
            "lastTraceId": .string(HexCoding.encode(bytes: row.traceID)),
            "lastId": .string(HexCoding.encode(bytes: row.spanID)),
        ])
        return Base64.encode(Array(JSONWriter.serialize(cursor).utf8))
    }

    static func decodeCursor(_ text: String) throws -> (Int64, Data, Data) {
        guard let bytes = Base64.decode(text), let v = try? JSONParser.parse(bytes),
            let t = v["lastStartTimeTo"]?.stringValue.flatMap({ Int64($0) }),
            let trace = v["lastTraceId"]?.stringValue.flatMap({ HexCoding.decode($0) }),
            let span = v["lastId"]?.stringValue.flatMap({ HexCoding.decode($0) })
        else { throw QueryError("cursor is not a cursor this API returned") }
        return (t, Data(trace), Data(span))
    }
}
