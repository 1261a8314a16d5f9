import ArgumentParser
import TracefoldAllocator
import Foundation
import Logging
import TracefoldCollector
import TracefoldConfig
import TracefoldExport
import TracefoldIntake
import TracefoldMapping
import TracefoldStore

@main
struct Tracefold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracefold",
        abstract: "An OTLP/HTTP tracing collector that folds spans into trace and observation records.",
        subcommands: [Serve.self, Validate.self, Export.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the collector.")

    @Option(name: .long, help: "Config file. Default: ./collector.yaml, or the embedded defaults if it does not exist.")
    var config: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let loaded: CollectorConfig
        var source = config ?? "./collector.yaml"
        do {
            if config == nil && !FileManager.default.fileExists(atPath: source) {
                source = "embedded defaults"
                loaded = try CollectorConfig.parse(yaml: CollectorConfig.embeddedDefaultYAML, source: source, environment: environment)
            } else {
                loaded = try CollectorConfig.load(path: source, environment: environment)
            }
        } catch {
            FileHandle.standardError.write(Data("tracefold: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let level = Logger.Level(rawValue: loaded.service.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "tracefold")
        logger.logLevel = level
        logger.info("config loaded", metadata: ["source": "\(source)"])
        logger.info("allocator", metadata: [
            "malloc": "\(tracefold_allocator_settings().map { String(cString: $0) } ?? "the system's")",
            "sqlite": "\(String(cString: tracefold_sqlite_settings()))",
        ])
        let collector: Collector
        do {
            collector = try Collector(config: loaded, logger: logger)
        } catch let error as ConfigError {
            // Unreadable or mismatched certificate files, found at start.
            FileHandle.standardError.write(Data("tracefold: \(error)\n".utf8))
            throw ExitCode(2)
        }
        // Returns once everything is written; past service.shutdown_timeout
        // the collector's watchdog ends the process itself.
        do {
            try await collector.run()
        } catch let error as ReceiverFailure {
            FileHandle.standardError.write(Data("tracefold: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a config file without starting anything.")

    @Option(name: .long, help: "The config file to check.")
    var config: String

    func run() throws {
        do {
            let loaded = try CollectorConfig.load(path: config, environment: ProcessInfo.processInfo.environment)
            // The certificate files too: unreadable, not PEM, or a key that
            // is not the certificate's would stop `serve`.
            for tls in [loaded.receiver.tls, loaded.grpc?.tls].compactMap({ $0 }) { try ServerTLS.check(tls) }
            print("\(config): valid (receiver \(loaded.receiver.endpoint), exporters: \(loaded.service.exporters.joined(separator: ", ")), durability \(loaded.store.durability.rawValue))")
            for (name, tls) in [("http", loaded.receiver.tls), ("grpc", loaded.grpc?.tls)] {
                guard let tls else { continue }
                print("\(name) TLS: \(tls.certFile), TLS \(tls.minVersion.rawValue)+\(tls.clientCAFile.map { ", client certificates from \($0) required" } ?? "")")
            }
            if let limiter = loaded.activeMemoryLimiter {
                print("memory limiter: 503 above \(limiter.softLimitBytes >> 20) MiB resident (limit \(limiter.limitMiB) MiB), checked every \(limiter.checkInterval)")
            }
            let m = loaded.metadata
            for name in m.deniedHeaders {
                FileHandle.standardError.write(Data("tracefold: warning: HEADERS_TO_METADATA names \"\(name)\", which carries credentials and is never copied into metadata\n".utf8))
            }
            if !m.headersToMetadata.isEmpty { print("headers to metadata: \(m.headersToMetadata.joined(separator: ", "))") }
            // SPEC §5.5: what each key contributes, with schema defaults filled in.
            for key in loaded.receiver.auth.apiKeys where key.workspace != nil || !key.metadata.isEmpty {
                var effective = m.defaults(forKeyIn: key.workspace)
                for (k, v) in key.metadata { effective[k] = v }
                for (k, v) in key.workspace.flatMap(m.workspace(named:))?.metadata ?? [:] { effective[k] = v }
                let pairs = effective.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
                print("api key \(key.publicKey)\(key.workspace.map { " (workspace \($0))" } ?? ""): \(pairs)")
            }
        } catch {
            FileHandle.standardError.write(Data("tracefold: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the records of traces that started in [from, to) as JSON lines, from the store."
    )

    @Option(name: .long, help: "Config file naming the store. Default: ./collector.yaml, or the embedded defaults.")
    var config: String?
    @Option(name: .long, help: "Start of the range, ISO-8601, inclusive.") var from: String
    @Option(name: .long, help: "End of the range, ISO-8601, exclusive.") var to: String
    @Option(name: .long, help: "Output file, or - for standard output.") var out = "-"
    @Flag(name: .long, help: "gzip the output.") var gzip = false

    func run() throws {
        func fail(_ message: String) -> ExitCode {
            FileHandle.standardError.write(Data("tracefold export: \(message)\n".utf8))
            return ExitCode(1)
        }
        guard let fromNano = ISOTime.parse(from) else { throw fail("--from must be an ISO-8601 time, got \"\(from)\"") }
        guard let toNano = ISOTime.parse(to) else { throw fail("--to must be an ISO-8601 time, got \"\(to)\"") }
        let environment = ProcessInfo.processInfo.environment
        let loaded: CollectorConfig
        do {
            let path = config ?? "./collector.yaml"
            loaded = config == nil && !FileManager.default.fileExists(atPath: path)
                ? try CollectorConfig.parse(yaml: CollectorConfig.embeddedDefaultYAML, source: "embedded defaults", environment: environment)
                : try CollectorConfig.load(path: path, environment: environment)
        } catch {
            throw fail("\(error)")
        }
        let store: any RecordStore
        if let url = loaded.store.postgresURL {
            do { store = try PostgresStore(url: url, logger: Logger(label: "tracefold.export")) } catch { throw fail("\(error)") }
        } else {
            let storePath = loaded.store.resolvedSQLitePath
            guard FileManager.default.fileExists(atPath: storePath) else { throw fail("no store at \(storePath)") }
            store = try SQLiteStore(path: storePath)
        }
        defer { store.close() }
        let handle: FileHandle
        if out == "-" {
            handle = .standardOutput
        } else {
            guard FileManager.default.createFile(atPath: out, contents: nil), let h = FileHandle(forWritingAtPath: out) else {
                throw fail("cannot write \(out)")
            }
            handle = h
        }
        // A progress bar only when a person is watching.
        let tty = isatty(STDERR_FILENO) == 1
        let count = try BatchExport(store: store, fromUnixNano: fromNano, toUnixNano: toNano, gzip: gzip).run(
            write: { handle.write(Data($0)) },
            progress: { done, total in
                guard tty, total > 0 else { return }
                let width = 30
                let filled = width * done / total
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) traces".utf8))
            }
        )
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
        if out != "-" {
            try handle.synchronize()
            try handle.close()
        }
        FileHandle.standardError.write(Data("tracefold export: \(count) traces\n".utf8))
    }
}
