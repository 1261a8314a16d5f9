import HummingbirdCore
import Logging
import NIOCore

/// The HTTP receiver's connections with TLS in front: Hummingbird's
/// `HTTP1Channel` behind a handler made from the context `ServerTLS` holds
/// when the connection is accepted (so a SIGHUP reload reaches new
/// connections only; Hummingbird's own TLS channel fixes its context once).
struct HTTPSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let tls: ServerTLS

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(tls.makeHandler())
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1, over TLS when `tls` is set.
    public static func http1(configuration: HTTP1Channel.Configuration, tls: ServerTLS?) -> HTTPServerBuilder {
        guard let tls else { return .http1(configuration: configuration) }
        return HTTPServerBuilder { responder in
            HTTPSChannel(base: HTTP1Channel(responder: responder, configuration: configuration), tls: tls)
        }
    }
}
