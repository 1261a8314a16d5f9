import OTLP
import TracefoldModel
import TracefoldConfig

/// Checks `Authorization` against the configured Langfuse-style key pairs
/// (`Basic base64(public:secret)`) and bearer tokens (SPEC §1.8). Secrets are
/// compared in constant time so response timing does not leak them.
public struct RequestAuthenticator: Sendable {
    private let keys: [(publicKey: [UInt8], secretKey: [UInt8], name: String)]
    private let tokens: [[UInt8]]

    public init(config: AuthConfig) {
        keys = config.apiKeys.map { (Array($0.publicKey.utf8), Array($0.secretKey.utf8), $0.publicKey) }
        tokens = config.bearerTokens.map { Array($0.utf8) }
    }

    public var isEnabled: Bool { !keys.isEmpty || !tokens.isEmpty }

    public enum Outcome: Sendable, Equatable {
        /// Allowed; `apiKey` is the public key of the matching key pair (nil
        /// when auth is off or a bearer token matched).
        case allowed(apiKey: String?)
        case denied
    }

    /// True when auth is off, or the header carries a configured credential.
    public func isAuthorized(authorization: String?) -> Bool {
        authenticate(authorization: authorization) != .denied
    }

    public func authenticate(authorization: String?) -> Outcome {
        guard isEnabled else { return .allowed(apiKey: nil) }
        guard let header = authorization else { return .denied }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return .denied }
        let credential = parts[1].filter { $0 != " " }
        switch parts[0].lowercased() {
        case "basic":
            guard let decoded = Base64.decode(String(credential)), let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else {
                return .denied
            }
            let pk = Array(decoded[..<colon])
            let sk = Array(decoded[(colon + 1)...])
            var match: String?
            for key in keys {
                // Evaluate both comparisons for every key: no early exit.
                let ok = Self.constantTimeEquals(pk, key.publicKey) & Self.constantTimeEquals(sk, key.secretKey)
                if ok { match = key.name }
            }
            return match.map { .allowed(apiKey: $0) } ?? .denied
        case "bearer":
            let token = Array(credential.utf8)
            var match = false
            for t in tokens { match = Self.constantTimeEquals(token, t) || match }
            return match ? .allowed(apiKey: nil) : .denied
        default:
            return .denied
        }
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0
    }
}

extension Bool {
    fileprivate static func & (a: Bool, b: Bool) -> Bool { a && b }
}
