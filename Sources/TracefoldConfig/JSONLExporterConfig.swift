import Yams

/// The record exporter (SPEC §6), `exporters.jsonl`: trace and observation
/// revisions as JSON lines, in files rotated by size and age.
public struct JSONLExporterConfig: Sendable, Equatable {
    public var directory: String
    /// A trace is written once it has been idle this long.
    public var flushAfter: Duration = .seconds(5)
    /// How often pending records are written and the active file flushed.
    public var flushInterval: Duration = .seconds(1)
    public var maxMegabytes: Int = 100
    public var maxAge: Duration = .seconds(3600)
    public var compressRotated = true
    /// `rotation.gzip_level`: libdeflate's level for rotated files, 1 to 12.
    /// The default is 1. On the bench's lines level 1 compresses 840 MB a
    /// CPU-second against 320 at level 6, where gzipping the rotated files
    /// was 7% of the collector's CPU; its files are about 1.5 times the
    /// size of level 6's (4.8% of the lines' bytes against 3.2%). Rotated
    /// files are written once and rarely read, so the default spends the
    /// CPU on intake; a user keeping them long may raise it.
    public var gzipLevel: Int = 1
    public static let gzipLevels = 1...12

    public init(directory: String) { self.directory = directory }

    static func parse(_ node: Node, _ r: YAMLReader) throws(ConfigError) -> JSONLExporterConfig {
        var c = JSONLExporterConfig(directory: "./data/export")
        let path = "exporters.jsonl"
        for (key, _, value) in try r.mapping(node, at: path, allowed: ["directory", "flush_after", "flush_interval", "rotation"]) ?? [] {
            switch key {
            case "directory":
                c.directory = try r.string(value, at: "\(path).directory")
                guard !c.directory.isEmpty else { throw r.error(value, "\(path).directory is empty") }
            case "flush_after": c.flushAfter = try r.duration(value, at: "\(path).flush_after")
            case "flush_interval":
                c.flushInterval = try r.duration(value, at: "\(path).flush_interval")
                guard c.flushInterval > .zero else { throw r.error(value, "\(path).flush_interval must be positive") }
            default:
                try c.parseRotation(value, r, at: "\(path).rotation")
            }
        }
        return c
    }

    private mutating func parseRotation(_ node: Node, _ r: YAMLReader, at path: String) throws(ConfigError) {
        for (key, _, value) in try r.mapping(node, at: path, allowed: ["max_megabytes", "max_age", "compress", "gzip_level"]) ?? [] {
            switch key {
            case "max_megabytes":
                maxMegabytes = try r.int(value, at: "\(path).max_megabytes")
                guard maxMegabytes > 0 else { throw r.error(value, "\(path).max_megabytes must be positive") }
            case "max_age": maxAge = try r.duration(value, at: "\(path).max_age")
            case "gzip_level":
                gzipLevel = try r.int(value, at: "\(path).gzip_level")
                guard Self.gzipLevels.contains(gzipLevel) else {
                    throw r.error(value, "\(path).gzip_level must be from \(Self.gzipLevels.lowerBound) to \(Self.gzipLevels.upperBound), got \(gzipLevel)")
                }
            default:
                let s = try r.string(value, at: "\(path).compress")
                guard s == "gzip" || s == "none" else { throw r.error(value, "\(path).compress must be gzip or none, got \"\(s)\"") }
                compressRotated = s == "gzip"
            }
        }
    }
}
