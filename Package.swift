// swift-tools-version:6.1
import CompilerPluginSupport
import PackageDescription

// Modules follow the path of a span: receive (TracefoldIntake) → decode (OTLP)
// → map (TracefoldMapping) → fold (TracefoldFold) → store (TracefoldStore) →
// export (TracefoldExport), read back by TracefoldQuery and shown by
// TracefoldExplorer (the /ui/ pages, on the query API); TracefoldCollector
// assembles the pipeline from TracefoldConfig, and `tracefold` is the command
// line, linked with jemalloc through TracefoldAllocator. The store keeps its
// big columns zstd-compressed (CZstd); the jsonl exporter gzips the files it
// rotates with libdeflate (CLibdeflate).
//
// An app's side is TracefoldTracing: it encodes with OTLPProtobufEncoding (pure
// Swift) and gzips with Compression (CZlib); only the collector needs
// protobuf-c (CProtobufC, OTLPProtoC: the reference its own protobuf decoder
// is tested against, and glibc's malloc_trim). The default trait `Collector`
// brings the collector's heavy dependencies; an app that depends on this
// package with `traits: []` builds TracefoldTracing without any of them
// (tests/consumer is such an app).

/// What only the collector's modules need.
let collector: TargetDependencyCondition? = .when(traits: ["Collector"])

let package = Package(
    name: "tracefold",
    platforms: [.macOS(.v15)],
    products: [
        // The collector's products need the `Collector` trait (on by default).
        .executable(name: "tracefold", targets: ["tracefold"]),
        .executable(name: "tracefold-loadgen", targets: ["tracefold-loadgen"]),
        // Langfuse-style instrumentation for Swift apps: observe, propagate,
        // updates, Inngest-style metadata, @Observed, and an OTLP/HTTP exporter.
        .library(name: "TracefoldTracing", targets: ["TracefoldTracing"]),
        .executable(name: "tracefold-demo", targets: ["tracefold-demo"]),
    ],
    traits: [
        .trait(
            name: "Collector",
            description: """
                The collector: tracefold, tracefold-loadgen and their modules, with GRDB, postgres-nio, Hummingbird, \
                swift-prometheus, Yams, swift-argument-parser, swift-service-lifecycle, swift-http-types, gRPC \
                (grpc-swift-2, grpc-swift-nio-transport) and swift-nio-ssl for the receivers' TLS, and swift-otel for the tests' swift-otel-app. \
                Without it the package builds TracefoldTracing (and tracefold-demo) only.
                """
        ),
        .default(enabledTraits: ["Collector"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swiftlang/swift-syntax", from: "603.0.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        // TLS on both receivers; already in the graph through postgres-nio.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // swift-otel's OTLP/gRPC exporter, for the swift-otel-app the tests
        // run against the collector; only its gRPC exporter trait.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPGRPC"]),
    ],
    targets: [
        // zlib: what Compression needs, and all TracefoldTracing links.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // zstd, for the store's compressed rows: the collector's only.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .systemLibrary(name: "CLibdeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"]), .brew(["libdeflate"])]),
        // protobuf-c (and glibc's malloc_trim): the collector's only.
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"]), .brew(["protobuf-c"])]),
        // Generated by scripts/generate-proto.sh from proto/; committed.
        .target(name: "OTLPProtoC", dependencies: ["CProtobufC"]),
        .target(name: "TracefoldModel"),
        // The OTLP encoder, pure Swift: TracefoldTracing's exporter and the
        // collector share it. OTLP (the decoders) re-exports it.
        .target(name: "OTLPProtobufEncoding", dependencies: ["TracefoldModel"]),
        .target(name: "OTLP", dependencies: ["OTLPProtobufEncoding", "OTLPProtoC", "CProtobufC", "TracefoldModel"]),
        .target(name: "Compression", dependencies: ["CZlib"]),
        .target(name: "TracefoldMapping", dependencies: ["TracefoldModel"]),
        // The collector's own metrics (SPEC §9.3).
        .target(name: "TracefoldTelemetry", dependencies: [.product(name: "Prometheus", package: "swift-prometheus", condition: collector)]),
        .target(
            name: "TracefoldFold",
            dependencies: ["TracefoldModel", "TracefoldMapping", "TracefoldTelemetry", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "TracefoldStore",
            dependencies: [
                "TracefoldModel", "TracefoldMapping", "TracefoldFold", "OTLP", "CZstd",
                .product(name: "GRDB", package: "GRDB.swift", condition: collector),
                .product(name: "GRDBSQLite", package: "GRDB.swift", condition: collector),
                .product(name: "PostgresNIO", package: "postgres-nio", condition: collector),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TracefoldConfig",
            dependencies: [.product(name: "Yams", package: "Yams", condition: collector)]
        ),
        .target(
            name: "TracefoldQuery",
            dependencies: [
                "TracefoldModel", "TracefoldMapping", "TracefoldStore", "TracefoldFold", "TracefoldConfig",
                .product(name: "Hummingbird", package: "hummingbird", condition: collector),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The trace explorer at /ui/: HTML, CSS and JavaScript modules in
        // assets/, embedded by scripts/embed-explorer.sh.
        .target(
            name: "TracefoldExplorer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird", condition: collector),
                .product(name: "HTTPTypes", package: "swift-http-types", condition: collector),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["assets"]
        ),
        .target(
            name: "TracefoldIntake",
            dependencies: [
                "OTLP", "TracefoldModel", "Compression", "TracefoldConfig", "TracefoldTelemetry", "CProtobufC",
                .product(name: "Hummingbird", package: "hummingbird", condition: collector),
                .product(name: "GRPCCore", package: "grpc-swift-2", condition: collector),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport", condition: collector),
                .product(name: "HTTPTypes", package: "swift-http-types", condition: collector),
                .product(name: "HummingbirdCore", package: "hummingbird", condition: collector),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: collector),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "TracefoldExport",
            dependencies: [
                "TracefoldModel", "TracefoldConfig", "OTLP", "TracefoldStore", "Compression", "TracefoldTelemetry", "CLibdeflate",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TracefoldCollector",
            dependencies: [
                "TracefoldIntake", "TracefoldExport", "TracefoldConfig", "TracefoldModel", "OTLP", "Compression",
                "TracefoldFold", "TracefoldStore", "TracefoldMapping", "TracefoldQuery", "TracefoldTelemetry", "TracefoldExplorer",
                .product(name: "Hummingbird", package: "hummingbird", condition: collector),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: collector),
                .product(name: "GRPCCore", package: "grpc-swift-2", condition: collector),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport", condition: collector),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The collector allocates through jemalloc (libjemalloc-dev), which
        // replaces malloc for the whole process: with glibc's malloc, a sixth
        // of its CPU went to malloc and free (chunk consolidation, frees of
        // chunks allocated on another thread). Its settings are in
        // allocator.c, with SQLite's process-wide one (its allocation
        // accounting off). Only the collector: the libraries do not impose it.
        .target(
            name: "TracefoldAllocator",
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux])), .linkedLibrary("dl", .when(platforms: [.linux])), .linkedLibrary("sqlite3")]
        ),
        .executableTarget(
            name: "tracefold",
            dependencies: [
                "TracefoldCollector", "TracefoldConfig", "TracefoldExport", "TracefoldIntake", "TracefoldStore", "TracefoldMapping", "TracefoldAllocator",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: collector),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // @Observed's expansion; a compiler plugin, so only swift-syntax.
        .macro(
            name: "TracefoldTracingMacros",
            dependencies: [
                .product(name: "SwiftSyntax", package: "swift-syntax"),
                .product(name: "SwiftSyntaxMacros", package: "swift-syntax"),
                .product(name: "SwiftCompilerPlugin", package: "swift-syntax"),
            ]
        ),
        .target(
            name: "TracefoldTracing",
            dependencies: [
                "TracefoldModel", "OTLPProtobufEncoding", "Compression", "TracefoldTracingMacros",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "tracefold-demo", dependencies: ["TracefoldTracing"]),
        // What the libFuzzer targets run; the XCTest suite replays their
        // corpora through it too.
        .target(name: "TracefoldFuzzing", dependencies: ["OTLP", "Compression", "TracefoldMapping", "TracefoldModel"]),
        .executableTarget(
            name: "tracefold-loadgen",
            dependencies: [
                "OTLP", "TracefoldModel", "TracefoldMapping", "TracefoldFold", "Compression", "TracefoldConfig", "TracefoldIntake",
                // The store, the exporter and the collector's allocator for
                // --pipeline-bench, which runs the fold and the export in process.
                "TracefoldStore", "TracefoldExport", "TracefoldAllocator",
                .product(name: "GRPCCore", package: "grpc-swift-2", condition: collector),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport", condition: collector),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: collector),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The app that tests/python/test_swift_otel_exporter.py runs:
        // swift-otel's OTLP/gRPC exporter against a live collector. It was a
        // package of its own, and the test command then compiled SwiftNIO,
        // BoringSSL (twice), gRPC and swift-certificates a second time for
        // it; here it shares the collector's graph and adds only swift-otel
        // and swift-protobuf. Collector-only, like the packages it needs.
        .executableTarget(
            name: "swift-otel-app",
            dependencies: [
                .product(name: "OTel", package: "swift-otel", condition: collector),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: collector),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "tests/swift-otel-app/Sources/swift-otel-app"
        ),
        .testTarget(
            name: "TracefoldTests",
            dependencies: [
                "OTLP", "TracefoldModel", "Compression", "TracefoldConfig", "TracefoldIntake",
                "TracefoldExport", "TracefoldCollector", "TracefoldMapping", "TracefoldFold", "TracefoldStore", "TracefoldQuery",
                "TracefoldTelemetry", "TracefoldFuzzing",
                .product(name: "GRDB", package: "GRDB.swift", condition: collector),
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: collector),
                .product(name: "HTTPTypes", package: "swift-http-types", condition: collector),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "TracefoldExplorerTests",
            dependencies: [
                "TracefoldExplorer",
                .product(name: "HummingbirdTesting", package: "hummingbird", condition: collector),
                .product(name: "Hummingbird", package: "hummingbird", condition: collector),
            ]
        ),
        .testTarget(
            name: "TracefoldTracingTests",
            dependencies: [
                "TracefoldTracing", "TracefoldTracingMacros", "TracefoldModel", "OTLP", "Compression",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "SwiftSyntaxMacrosTestSupport", package: "swift-syntax"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)

// The libFuzzer targets exist only in the fuzzing build (scripts/fuzz.sh sets
// TRACEFOLD_FUZZ=1 and passes --sanitize=fuzzer): their entry point is
// LLVMFuzzerTestOneInput, and libFuzzer supplies main.
if Context.environment["TRACEFOLD_FUZZ"] == "1" {
    for name in ["protobuf", "json", "gzip", "metadata"] {
        package.targets.append(.executableTarget(name: "fuzz-\(name)", dependencies: ["TracefoldFuzzing"], path: "Fuzz/\(name)"))
    }
}
