import Yams

/// `tls` under `receivers.otlp.protocols.http` or `.grpc`: the Collector's
/// `configtls` server settings. Parsing checks the shape only; the files are
/// read (and a key that does not match its certificate is refused) when the
/// receiver starts, by `tracefold validate`, and again at each SIGHUP.
public struct TLSServerConfig: Sendable, Equatable {
    /// The lowest protocol version a client may negotiate.
    public enum Version: String, Sendable, Equatable, CaseIterable {
        case tls12 = "1.2"
        case tls13 = "1.3"
    }

    /// PEM certificate chain, leaf first.
    public var certFile: String
    /// PEM private key of the leaf certificate.
    public var keyFile: String
    /// PEM CA certificates; when set, a client must present a certificate
    /// that chains to one of them (mTLS).
    public var clientCAFile: String?
    /// configtls's default is 1.2.
    public var minVersion: Version = .tls12
    /// Where each file was named, for errors found when it is read: the
    /// config path (`receivers.otlp.protocols.grpc.tls`), the file, and the
    /// line of each key.
    public var origin: Origin

    public struct Origin: Sendable, Equatable {
        public var path: String
        public var source: String
        public var lines: [String: Int]

        /// A problem with one of the files, at the line that names it.
        public func error(_ key: String, _ message: String) -> ConfigError {
            ConfigError(source: source, line: lines[key], "\(path).\(key): \(message)")
        }
    }

    public init(certFile: String, keyFile: String, clientCAFile: String? = nil, minVersion: Version = .tls12, path: String = "tls", source: String = "config") {
        self.certFile = certFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
        self.minVersion = minVersion
        self.origin = Origin(path: path, source: source, lines: [:])
    }

    static func parse(_ node: Node, _ r: YAMLReader, at path: String) throws(ConfigError) -> TLSServerConfig? {
        guard let entries = try r.mapping(node, at: path, allowed: ["cert_file", "key_file", "client_ca_file", "min_version"]) else { return nil }
        var cert: String?
        var key: String?
        var c = TLSServerConfig(certFile: "", keyFile: "", path: path, source: r.source)
        for (name, keyNode, value) in entries {
            c.origin.lines[name] = value.mark?.line ?? keyNode.mark?.line
            let text = try r.string(value, at: "\(path).\(name)")
            switch name {
            case "cert_file":
                cert = text
            case "key_file":
                key = text
            case "client_ca_file":
                c.clientCAFile = text
            default:
                guard let v = Version(rawValue: text) else {
                    throw r.error(value, "\(path).min_version must be \"1.2\" or \"1.3\", got \"\(text)\" (TLS 1.0 and 1.1 are not offered)")
                }
                c.minVersion = v
            }
            guard !text.isEmpty || name == "min_version" else { throw r.error(value, "\(path).\(name) must name a file") }
        }
        guard let cert else { throw r.error(node, "\(path) needs cert_file (a PEM certificate chain)") }
        guard let key else { throw r.error(node, "\(path) needs key_file (the certificate's PEM private key)") }
        c.certFile = cert
        c.keyFile = key
        return c
    }
}
