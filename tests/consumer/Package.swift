// swift-tools-version:6.1
import PackageDescription

// An app as an outside user writes it: it depends on the tracefold checkout
// by path with `traits: []`, so it gets TracefoldTracing without the
// collector (no protobuf-c, no GRDB, postgres-nio, Hummingbird, Prometheus
// or Yams). tests/python/test_consumer_package.py builds and runs it.
let package = Package(
    name: "tracefold-consumer",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "tracefold", path: "../..", traits: [])
    ],
    targets: [
        .executableTarget(
            name: "consumer-app",
            dependencies: [.product(name: "TracefoldTracing", package: "tracefold")]
        )
    ]
)
