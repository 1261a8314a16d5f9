// swift-tools-version:6.2
import PackageDescription

// A small app instrumented with swift-otel, exporting over OTLP/gRPC: what
// tests/python/test_swift_otel_exporter.py runs against a live tracefold,
// in plaintext, over TLS and over mTLS. Only the exporter's trait (OTLPGRPC)
// is on, so it builds no HTTP exporter.
let package = Package(
    name: "swift-otel-app",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPGRPC"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "swift-otel-app",
            dependencies: [
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ]
)
