import NIOConcurrencyHelpers

/// Whether a receiver's socket is bound and accepting, for `/health/ready`:
/// the HTTP port answering says nothing about the gRPC one, which binds on
/// its own and closes on its own at shutdown.
public final class ListenerStatus: Sendable {
    /// What `/health/ready` names when it is not listening.
    public let name: String
    private let listening = NIOLockedValueBox(false)

    public init(name: String) { self.name = name }

    public var isListening: Bool { listening.withLockedValue { $0 } }

    func set(_ value: Bool) { listening.withLockedValue { $0 = value } }
}
