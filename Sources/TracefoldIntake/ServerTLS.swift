import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import TracefoldConfig

/// A receiver's TLS credentials (`protocols.*.tls`), shared by the HTTP and
/// gRPC listeners. Each accepted connection takes the context current at
/// that moment, so `reload()` (SIGHUP) changes what new connections are
/// offered while connections already open keep the context they started
/// with: certificates rotate without dropping anyone.
public final class ServerTLS: Sendable {
    public let config: TLSServerConfig
    /// ALPN names offered: `h2` for gRPC, `http/1.1` for the HTTP receiver.
    let applicationProtocols: [String]
    private let current: NIOLockedValueBox<NIOSSLContext>

    /// Reads the files and builds the context; throws a `ConfigError` that
    /// names the file, the config key and its line.
    public init(config: TLSServerConfig, applicationProtocols: [String]) throws(ConfigError) {
        self.config = config
        self.applicationProtocols = applicationProtocols
        current = NIOLockedValueBox(try Self.makeContext(config, applicationProtocols: applicationProtocols))
    }

    /// The context for a connection accepted now.
    public var context: NIOSSLContext { current.withLockedValue { $0 } }

    /// Re-reads the files. On any problem the previous context stays in use
    /// (a half-written certificate must not take the receiver down) and the
    /// error is thrown for the caller to log.
    public func reload() throws(ConfigError) {
        let fresh = try Self.makeContext(config, applicationProtocols: applicationProtocols)
        current.withLockedValue { $0 = fresh }
    }

    /// The handler that terminates TLS on one accepted connection.
    func makeHandler() -> NIOSSLServerHandler { NIOSSLServerHandler(context: context) }

    /// Checks that the files load and belong together, as `tracefold
    /// validate` and startup do.
    public static func check(_ config: TLSServerConfig) throws(ConfigError) {
        _ = try makeContext(config, applicationProtocols: [])
    }

    static func makeContext(_ config: TLSServerConfig, applicationProtocols: [String]) throws(ConfigError) -> NIOSSLContext {
        let origin = config.origin
        let chain = try certificates(in: config.certFile, key: "cert_file", origin: origin)
        let keyBytes = try read(config.keyFile, key: "key_file", origin: origin)
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw origin.error("key_file", "\(config.keyFile) is not an unencrypted PEM private key (\(error))")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        tls.minimumTLSVersion = config.minVersion == .tls13 ? .tlsv13 : .tlsv12
        tls.applicationProtocols = applicationProtocols
        if let caFile = config.clientCAFile {
            // A server with verification on asks for a client certificate
            // and fails the handshake without a valid one.
            tls.trustRoots = .certificates(try certificates(in: caFile, key: "client_ca_file", origin: origin))
            tls.certificateVerification = .noHostnameVerification
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            // BoringSSL checks the key against the leaf certificate when the
            // context takes it; that is the one failure left here.
            throw origin.error("key_file", "\(config.keyFile) does not match the certificate in \(config.certFile) (\(error))")
        }
    }

    private static func read(_ path: String, key: String, origin: TLSServerConfig.Origin) throws(ConfigError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "is not readable" : "does not exist"
            throw origin.error(key, "\(path) \(reason)")
        }
        return [UInt8](data)
    }

    private static func certificates(in path: String, key: String, origin: TLSServerConfig.Origin) throws(ConfigError) -> [NIOSSLCertificate] {
        let bytes = try read(path, key: key, origin: origin)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw origin.error(key, "\(path) holds no PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else { throw origin.error(key, "\(path) holds no PEM certificate") }
        return certificates
    }
}

extension [ServerTLS] {
    /// SIGHUP: every receiver re-reads its files; a failure keeps that
    /// receiver's previous certificates and is logged.
    public func reloadAll(logger: Logger) {
        for tls in self {
            do {
                try tls.reload()
                logger.notice("TLS certificates reloaded", metadata: ["receiver": "\(tls.config.origin.path)", "cert_file": "\(tls.config.certFile)"])
            } catch {
                logger.error("TLS reload failed; the previous certificates stay in use", metadata: ["error": "\(error)"])
            }
        }
    }
}
