import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix

/// Binds the gRPC receiver's socket and puts TLS in front of each accepted
/// connection when configured. grpc-swift's own Posix listener builds its
/// TLS context once, with TLS 1.2 as the floor; this one takes the context
/// `ServerTLS` holds when the connection arrives, so `min_version` and a
/// SIGHUP reload apply to gRPC as they do to HTTP.
public struct GRPCListener: HTTP2ServerTransport.ListenerFactory {
    public let host: String
    public let port: Int
    public let tls: ServerTLS?
    /// Set once the socket is bound, cleared when it closes.
    public let status: ListenerStatus?
    public var eventLoopGroup: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    public init(host: String, port: Int, tls: ServerTLS?, status: ListenerStatus? = nil) {
        self.host = host
        self.port = port
        self.tls = tls
        self.status = status
    }

    public func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let tls = self.tls
        let listener: NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
                }.flatMap {
                    // ALPN is offered (h2) but not required: grpcio and
                    // grpc-go negotiate it, and h2 without it still works.
                    connectionConfigurator.configure(channel: channel, tls: tls == nil ? .none : .configured(requireALPN: false))
                }
            }
        if let status {
            status.set(true)
            listener.channel.closeFuture.whenComplete { _ in status.set(false) }
        }
        return listener
    }
}
