import Yams

/// Reads a composed YAML tree strictly: every mapping names the keys it
/// allows, and an unknown key is an error with its line number (SPEC §9.1).
/// Scalars are env-expanded as they are read, so positions stay those of the
/// file.
struct YAMLReader {
    let source: String
    let expansion: EnvironmentExpansion

    func error(_ node: Node?, _ message: String) -> ConfigError {
        ConfigError(source: source, line: node?.mark?.line, column: node?.mark?.column, message)
    }

    /// A mapping's entries; nil for an absent or null node.
    func mapping(_ node: Node?, at path: String, allowed: [String]) throws(ConfigError) -> [(key: String, keyNode: Node, value: Node)]? {
        guard let node, !isNull(node) else { return nil }
        guard case .mapping(let m) = node else { throw error(node, "\(path) must be a mapping") }
        var seen = Set<String>()
        var out = [(key: String, keyNode: Node, value: Node)]()
        for (k, v) in m {
            guard let key = k.scalar?.string else { throw error(k, "keys in \(path) must be strings") }
            if !allowed.isEmpty, !allowed.contains(key) {
                let inPath = path.isEmpty ? "at the top level" : "in \(path)"
                throw error(k, "unknown key \"\(key)\" \(inPath) (expected one of: \(allowed.joined(separator: ", ")))")
            }
            guard seen.insert(key).inserted else { throw error(k, "duplicate key \"\(key)\" in \(path)") }
            out.append((key, k, v))
        }
        return out
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node else { return false }
        return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    func string(_ node: Node, at path: String) throws(ConfigError) -> String {
        guard case .scalar(let s) = node else { throw error(node, "\(path) must be a string") }
        do {
            return try expansion.expand(s.string)
        } catch {
            throw self.error(node, "\(path): \(error.message)")
        }
    }

    /// `host:port`, `[v6]:port` or `:port`, as both receivers take it.
    func endpoint(_ node: Node, at path: String) throws(ConfigError) -> String {
        let s = try string(node, at: path)
        guard OTLPReceiverConfig.split(s) != nil else { throw error(node, "\(path) must be host:port, got \"\(s)\"") }
        return s
    }

    func int(_ node: Node, at path: String) throws(ConfigError) -> Int {
        let s = try string(node, at: path)
        guard let v = Int(s.replacingUnderscores()) else { throw error(node, "\(path) must be an integer, got \"\(s)\"") }
        return v
    }

    func bool(_ node: Node, at path: String) throws(ConfigError) -> Bool {
        switch try string(node, at: path).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let s: throw error(node, "\(path) must be true or false, got \"\(s)\"")
        }
    }

    /// A byte size: an integer, or a number with KiB/MiB/GiB (or KB/MB/GB).
    func byteSize(_ node: Node, at path: String) throws(ConfigError) -> Int {
        let s = try string(node, at: path)
        guard let v = ByteSize.parse(s) else {
            throw error(node, "\(path) must be a byte size such as 67108864 or 64MiB, got \"\(s)\"")
        }
        return v
    }

    func duration(_ node: Node, at path: String) throws(ConfigError) -> Duration {
        let s = try string(node, at: path)
        guard let d = DurationParser.parse(s) else {
            throw error(node, "\(path) must be a duration such as 500ms, 5s, 1m, 2h or 30d, got \"\(s)\"")
        }
        return d
    }

    func strings(_ node: Node?, at path: String) throws(ConfigError) -> [String] {
        guard let node, !isNull(node) else { return [] }
        guard case .sequence(let seq) = node else { throw error(node, "\(path) must be a list") }
        var out = [String]()
        for (i, item) in seq.enumerated() { out.append(try string(item, at: "\(path)[\(i)]")) }
        return out
    }

    func sequence(_ node: Node?, at path: String) throws(ConfigError) -> [Node] {
        guard let node, !isNull(node) else { return [] }
        guard case .sequence(let seq) = node else { throw error(node, "\(path) must be a list") }
        return Array(seq)
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String { filter { $0 != "_" } }
}

public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let s = text.filter { $0 != " " && $0 != "_" }
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            guard let n = Int(s.dropLast(suffix.count)), n >= 0 else { return nil }
            return n.multipliedReportingOverflow(by: factor).overflow ? nil : n * factor
        }
        guard let n = Int(s), n >= 0 else { return nil }
        return n
    }
}

public enum DurationParser {
    public static func parse(_ text: String) -> Duration? {
        let s = text.filter { $0 != " " }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, seconds) in units where s.hasSuffix(suffix) {
            let number = s.dropLast(suffix.count)
            // "5ms" also ends in "s"; make sure the number part is all digits.
            guard let n = Double(number), n >= 0, !number.contains("m") else { continue }
            return .milliseconds(Int64((n * seconds * 1000).rounded()))
        }
        return nil
    }
}
