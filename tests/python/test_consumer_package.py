"""TracefoldTracing as an outside app uses it (issue 23).

tests/consumer depends on this checkout by path with `traits: []`. It is
built here with protobuf-c hidden from pkg-config, and the test checks what
that build compiled, resolved and linked: none of the collector's heavy
packages, no protobuf-c. Then the app runs against a live tracefold and its
trace reads back through the query API."""
import json
import os
import re
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONSUMER = os.path.join(ROOT, "tests", "consumer")
# Beside the collector's own .build (ignored by git): the consumer is its own
# package, with its own build folder.
SCRATCH = os.environ.get("TRACEFOLD_CONSUMER_SCRATCH", os.path.join(ROOT, ".build-consumer"))

# Packages only the collector needs; the `Collector` trait guards them.
COLLECTOR_PACKAGES = {
    "grdb.swift", "postgres-nio", "hummingbird", "swift-prometheus", "yams", "swift-argument-parser", "grpc-swift-2",
    "grpc-swift-nio-transport", "swift-otel", "swift-protobuf", "grpc-swift-protobuf",
}
# Their modules, and the collector's own protobuf-c side.
COLLECTOR_MODULES = {
    "GRDB", "GRDBSQLite", "PostgresNIO", "Hummingbird", "HummingbirdCore", "HummingbirdTesting", "Prometheus",
    "Yams", "ArgumentParser", "GRPCCore", "GRPCNIOTransportHTTP2", "OTLP", "TracefoldStore", "TracefoldCollector",
    "TracefoldIntake", "TracefoldQuery",
}
# C and Swift targets of the collector whose object files must not appear.
COLLECTOR_TARGETS = {"CProtobufC", "OTLPProtoC", "OTLP", "TracefoldStore", "TracefoldCollector", "TracefoldIntake"}


def build_consumer(tmp_path):
    """`swift build -v` of the consumer, with pkg-config seeing an empty
    folder instead of the system's .pc files, so that nothing can find
    libprotobuf-c through it. The binary is removed first so the build
    always links it again and prints its link line."""
    empty = tmp_path / "pkgconfig-empty"
    empty.mkdir()
    env = dict(os.environ, PKG_CONFIG_PATH=str(empty), PKG_CONFIG_LIBDIR=str(empty))
    binary = os.path.join(SCRATCH, "debug", "consumer-app")
    if os.path.exists(binary):
        os.remove(binary)
    # The build folder is kept between runs, so a collector module left by
    # an earlier build (of another checkout, say) is removed first: any
    # found afterwards, this build made.
    debug = os.path.join(SCRATCH, "debug")
    if os.path.isdir(os.path.join(debug, "Modules")):
        for name in os.listdir(os.path.join(debug, "Modules")):
            if name.split(".")[0] in COLLECTOR_MODULES:
                os.remove(os.path.join(debug, "Modules", name))
    for target in COLLECTOR_TARGETS:
        shutil.rmtree(os.path.join(debug, target + ".build"), ignore_errors=True)
    proc = subprocess.run(
        ["swift", "build", "-v", "--package-path", CONSUMER, "--scratch-path", SCRATCH],
        env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout + proc.stderr, binary


def compiled_modules():
    """The build's own list of the Swift modules it compiled."""
    modules = os.path.join(SCRATCH, "debug", "Modules")
    return {name.split(".")[0] for name in os.listdir(modules) if name.endswith(".swiftmodule")}


def targets_with_objects():
    """Targets (Swift and C) the build compiled code for; SwiftPM makes an
    empty folder for every target of the graph, so presence alone says
    nothing."""
    debug = os.path.join(SCRATCH, "debug")
    out = set()
    for entry in os.listdir(debug):
        if entry.endswith(".build"):
            for _, _, files in os.walk(os.path.join(debug, entry)):
                if any(f.endswith(".o") for f in files):
                    out.add(entry[: -len(".build")])
                    break
    return out


def test_an_app_with_traits_off_builds_without_the_collector_and_its_trace_reads_back(tracefold, tmp_path):
    output, binary = build_consumer(tmp_path)

    # The link line: zlib, and no protobuf-c, neither on the line nor
    # autolinked (ldd shows what the binary loads).
    link_lines = [line for line in output.splitlines() if re.search(r'"-o" "[^"]*/consumer-app"', line)]
    assert link_lines, "the verbose build printed no link line for consumer-app"
    assert "-lz" in output
    assert "-lprotobuf-c" not in output and "protobuf-c" not in "".join(link_lines)
    loaded = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    assert "libz.so" in loaded and "protobuf-c" not in loaded

    # What it compiled: TracefoldTracing and the light graph only.
    modules = compiled_modules()
    assert {"TracefoldTracing", "OTLPProtobufEncoding", "Compression", "TracefoldModel", "Tracing", "AsyncHTTPClient"} <= modules
    assert not modules & COLLECTOR_MODULES, sorted(modules & COLLECTOR_MODULES)
    compiled = targets_with_objects()
    assert not compiled & COLLECTOR_TARGETS, sorted(compiled & COLLECTOR_TARGETS)

    # What it resolved: with this toolchain, the trait-guarded packages are
    # not even fetched (tests/consumer/Package.resolved lists the rest).
    with open(os.path.join(CONSUMER, "Package.resolved")) as f:
        resolved = {pin["identity"] for pin in json.load(f)["pins"]}
    print("consumer resolves:", " ".join(sorted(resolved)))
    assert "swift-distributed-tracing" in resolved and "async-http-client" in resolved
    assert not resolved & COLLECTOR_PACKAGES, sorted(resolved & COLLECTOR_PACKAGES)

    # It runs: observe, @Observed, propagateAttributes and a metadata .do
    # batch, exported to the live collector.
    env = dict(os.environ, TRACEFOLD_BASE_URL=tracefold.base_url, TRACEFOLD_FLUSH_INTERVAL="0.2")
    proc = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert out["greeting"] == "Hello, world!"
    assert out["exported_spans"] == "2 dropped_spans: 0"
    trace_id = out["trace_id"]

    trace = tracefold.wait_for_trace(trace_id, 2)
    assert trace["name"] == "consumer-trace"
    assert trace["userId"] == "consumer-user"
    assert trace["sessionId"] == "consumer-session"
    assert trace["tags"] == ["consumer"]
    assert trace["input"] == "world"
    assert trace["output"] == {"text": "Hello, world!", "words": 2}

    by_name = {o["name"]: o for o in trace["observations"]}
    root, greet = by_name["consumer-root"], by_name["greet"]
    assert root["type"] == "AGENT" and greet["type"] == "TOOL"
    assert greet["parentObservationId"] == root["id"]
    assert greet["input"] == {"args": [], "kwargs": {"name": "world"}}
    assert greet["output"] == {"text": "Hello, world!", "words": 2}
    entries = {(e["scope"], e["kind"]): e for e in root["metadataEntries"]}
    assert entries[("observation", "userland.build")]["values"] == {"built": "traits: []"}
    assert entries[("observation", "userland.usage")]["values"] == {"words": 2}
    assert entries[("observation", "userland.usage")]["label"] == "User Metadata (usage)"
