"""swift-otel's OTLP/gRPC exporter (issue 20): tests/swift-otel-app sends a
Langfuse-attributed trace through swift-otel 1.6.0 from the package mirror,
in plaintext, over TLS and over mTLS (the test CA of test_tls.py), and the
trace reads back through the query API with the same records as the
Python HTTP exporter's.

The app is a target of the main package (swift-otel-app, built with the
collector's graph by the test command's one build); run alone, the test
builds it if TRACEFOLD_SWIFT_OTEL_APP names no binary and none is built."""
import os
import subprocess

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter

from conftest import ROOT
from test_grpc_receiver import langfuse_trace
from test_tls import exporter_env, pki, tls_config  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def swift_otel_app():
    binary = os.environ.get("TRACEFOLD_SWIFT_OTEL_APP", os.path.join(ROOT, ".build", "debug", "swift-otel-app"))
    if not os.path.exists(binary):
        proc = subprocess.run(["swift", "build", "--package-path", ROOT, "--product", "swift-otel-app"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return binary


def essentials(trace):
    """What the two exporters must agree on: the Langfuse attributes as
    folded (the resource and SDK attributes differ by design)."""
    observations = sorted(
        ({k: o.get(k) for k in ("name", "type", "model", "usageDetails", "costDetails", "input", "output", "level")}
         for o in trace["observations"]),
        key=lambda o: o["name"],
    )
    return {k: trace.get(k) for k in ("name", "userId", "sessionId", "tags", "input", "output", "totalCost")}, \
        trace["metadata"].get("tenant"), observations


@pytest.mark.parametrize("security", ["plaintext", "tls", "mtls"])
def test_swift_otel_grpc_exporter_gives_the_same_records_as_http(swift_otel_app, make_tracefold, pki, tmp_path, exporter_env, security):
    env = {"TRACEFOLD_USER": f"u-swift-{security}"}
    if security == "plaintext":
        tf = make_tracefold().start()
        env["TRACEFOLD_GRPC_URL"] = f"http://127.0.0.1:{tf.grpc_port}"
    else:
        client_ca = pki.path("ca.pem") if security == "mtls" else None
        config = tls_config(tmp_path, pki.path("server.pem"), pki.path("server.key"), client_ca=client_ca)
        tf = make_tracefold(config=config, tls=pki.context(client="client" if client_ca else None)).start()
        # By name: grpc-swift passes the URL's host to swift-nio-ssl as the
        # SNI name, and swift-nio-ssl refuses an IP address there
        # (cannotUseIPAddressInSNI), so with https://127.0.0.1 the exporter
        # never connects. The test certificate names localhost too.
        env.update(TRACEFOLD_GRPC_URL=f"https://localhost:{tf.grpc_port}", TRACEFOLD_CA_FILE=pki.path("ca.pem"))
        if client_ca:
            env.update(TRACEFOLD_CLIENT_CERT=pki.path("client.pem"), TRACEFOLD_CLIENT_KEY=pki.path("client.key"))
    run = subprocess.run([swift_otel_app], env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    trace_id = run.stdout.strip().splitlines()[-1]
    assert len(trace_id) == 32, run.stdout
    via_swift = tf.wait_for_trace(trace_id, 2)

    http = {"endpoint": tf.traces_url}
    if security != "plaintext":
        http["certificate_file"] = pki.path("ca.pem")
    if security == "mtls":
        http.update(client_certificate_file=pki.path("client.pem"), client_key_file=pki.path("client.key"))
    via_http = tf.wait_for_trace(langfuse_trace(HTTPSpanExporter(**http), user=env["TRACEFOLD_USER"]), 2)

    assert via_swift["name"] == "grpc-trace" and via_swift["userId"] == env["TRACEFOLD_USER"]
    generation = next(o for o in via_swift["observations"] if o["name"] == "llm")
    assert generation["type"] == "GENERATION" and generation["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert essentials(via_swift) == essentials(via_http)
    assert tf.stop() == 0
