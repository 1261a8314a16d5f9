/// Expands `${env:VAR}`, `${env:VAR:-default}` and the older bare `${VAR}`
/// inside a config value, as otelcol's env provider does. `$$` is a literal
/// `$`. An unset variable with no default expands to the empty string.
public struct EnvironmentExpansion: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public struct Failure: Error, Sendable { public var message: String }

    public func expand(_ value: String) throws(Failure) -> String {
        guard value.contains("$") else { return value }
        var out = ""
        var rest = Substring(value)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            let after = rest.index(after: dollar)
            if after < rest.endIndex, rest[after] == "$" {
                out += "$"
                rest = rest[rest.index(after: after)...]
                continue
            }
            guard after < rest.endIndex, rest[after] == "{" else {
                out += "$"
                rest = rest[after...]
                continue
            }
            guard let close = rest[after...].firstIndex(of: "}") else {
                throw Failure(message: "unterminated ${ in \"\(value)\"")
            }
            var inner = rest[rest.index(after: after)..<close]
            if inner.hasPrefix("env:") { inner = inner.dropFirst(4) }
            var name = inner
            var fallback: Substring?
            if let sep = inner.range(of: ":-") {
                name = inner[..<sep.lowerBound]
                fallback = inner[sep.upperBound...]
            }
            guard Self.isValidName(name) else {
                throw Failure(message: "invalid environment variable name \"\(name)\" in \"\(value)\"")
            }
            let resolved = environment[String(name)]
            if let resolved, !(resolved.isEmpty && fallback != nil) {
                out += resolved
            } else {
                out += fallback ?? ""
            }
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        return out
    }

    private static func isValidName(_ name: Substring) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first.properties.isAlphabetic else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }
}
