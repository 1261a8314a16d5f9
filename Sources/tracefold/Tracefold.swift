import ArgumentParser
import Foundation
import Logging
import TracefoldCollector
import TracefoldConfig

@main
struct Tracefold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracefold",
        abstract: "An OTLP/HTTP tracing collector that folds spans into trace and observation records.",
        subcommands: [Serve.self, Validate.self],
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
        let collector = try Collector(config: loaded, logger: logger)
        try await collector.run()
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a config file without starting anything.")

    @Option(name: .long, help: "The config file to check.")
    var config: String

    func run() throws {
        do {
            let loaded = try CollectorConfig.load(path: config, environment: ProcessInfo.processInfo.environment)
            print("\(config): valid (receiver \(loaded.receiver.endpoint), exporters: \(loaded.service.exporters.joined(separator: ", ")), durability \(loaded.store.durability.rawValue))")
        } catch {
            FileHandle.standardError.write(Data("tracefold: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
