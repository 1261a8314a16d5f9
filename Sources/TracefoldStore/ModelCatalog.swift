import Foundation
import TracefoldMapping
import TracefoldModel

/// Every model definition (issue 22): the built-in ones
/// (`pricing/models.json`), those of `processors.fold.models`, and those
/// made through `POST /api/public/models`, which the store keeps. It puts
/// them all in force in the fold's `ModelPricer` whenever they change.
public final class ModelCatalog: @unchecked Sendable {
    let store: any RecordStore
    public let pricer: ModelPricer
    public let configured: [ModelDefinition]
    private let lock = NSLock()

    public init(store: any RecordStore, configured: [ModelDefinition], pricer: ModelPricer = ModelPricer()) throws {
        self.store = store
        self.configured = configured
        self.pricer = pricer
        try reload()
    }

    /// Reads the stored definitions and puts everything in force.
    public func reload() throws {
        let stored = try self.stored()
        lock.withLock { pricer.replace(ModelDefinition.builtIns + configured + stored) }
    }

    /// All definitions: user ones (config, API) first, then built-ins, each
    /// group by model name.
    public func all() throws -> [ModelDefinition] {
        let user = (configured + (try stored())).sorted { ($0.modelName, $0.id) < ($1.modelName, $1.id) }
        return user + ModelDefinition.builtIns.sorted { ($0.modelName, $0.id) < ($1.modelName, $1.id) }
    }

    public func definition(id: String) throws -> ModelDefinition? {
        try all().first { $0.id == id }
    }

    /// Stores a definition made through the API and puts it in force: the
    /// next generation folded is priced by it.
    public func add(_ d: ModelDefinition) throws {
        try store.durableWrite { s in
            try s.execute("INSERT INTO models(id, created_at, record) VALUES (?, ?, ?)", [
                .text(d.id), .int(Int64(bitPattern: d.createdAtUnixNano)), .text(JSONWriter.serialize(d.storedJSON)),
            ])
        }
        try reload()
    }

    /// Why a definition cannot be deleted, or nil once it is gone.
    public enum DeleteRefusal: Error, Equatable {
        case builtIn, configured, notFound
    }

    public func delete(id: String) throws -> DeleteRefusal? {
        if ModelDefinition.builtIns.contains(where: { $0.id == id }) { return .builtIn }
        if configured.contains(where: { $0.id == id }) { return .configured }
        let gone = try store.durableWrite { s -> Bool in
            guard try s.row("SELECT id FROM models WHERE id = ?", [.text(id)]) != nil else { return false }
            try s.execute("DELETE FROM models WHERE id = ?", [.text(id)])
            return true
        }
        guard gone else { return .notFound }
        try reload()
        return nil
    }

    func stored() throws -> [ModelDefinition] {
        try store.read { s in
            try s.rows("SELECT id, created_at, record FROM models ORDER BY created_at, id", []).compactMap { row in
                guard let id = row["id"].string, let text = row["record"].string, let v = try? JSONParser.parse(text) else { return nil }
                return ModelDefinition(json: v, id: id, isBuiltIn: false, createdAtUnixNano: UInt64(bitPattern: row["created_at"].int ?? 0))
            }
        }
    }
}
