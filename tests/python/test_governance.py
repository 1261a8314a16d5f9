"""SPEC §5 end to end: an app using the real OpenTelemetry Python exporters,
configured only through OTEL_EXPORTER_OTLP_HEADERS, sends spans with
x-tracefold-metadata and an injected header to a governed tracefold, over
OTLP/HTTP (protobuf and JSON) and OTLP/gRPC. The
records, read through the query API and from the JSONL export, show the
governed metadata."""
import base64
import json
import os
import subprocess
import sys
import textwrap
import urllib.parse
import urllib.request

from conftest import TEST_CONFIG, Tracefold

GOVERNED = TEST_CONFIG.replace("        endpoint: ${env:TRACEFOLD_ENDPOINT}\n", """        endpoint: ${env:TRACEFOLD_ENDPOINT}
        auth:
          api_keys:
            - public_key: pk-lf-checkout
              secret_key: sk-lf-checkout
              workspace: payments
              metadata: {service_tier: gold, team: key-team}
""") + """
metadata:
  schemas:
    workspace:
      type: object
      additionalProperties: true
      required: [cost_center]
      properties:
        cost_center: {type: string}
        region: {type: string, enum: [eu, us], default: eu}
  workspaces:
    payments:
      metadata: {team: payments, cost_center: cc-42}
"""

APP = textwrap.dedent("""
    import sys
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    if sys.argv[1] == "proto":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    elif sys.argv[1] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("checkout")
    with tracer.start_as_current_span("handle-order", attributes={"user.id": "user-" + sys.argv[1]}) as root:
        with tracer.start_as_current_span("charge-card"):
            pass
    provider.shutdown()
    print(format(root.get_span_context().trace_id, "032x"))
""")


def run_app(tf, exporter, headers):
    grpc = exporter == "grpc"
    env = {**os.environ,
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"127.0.0.1:{tf.grpc_port}" if grpc else tf.traces_url,
           "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true",
           "OTEL_EXPORTER_OTLP_HEADERS": ",".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in headers.items())}
    out = subprocess.run([sys.executable, "-c", APP, exporter], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_otel_exporter_headers_carry_governed_request_metadata(tmp_path):
    config = tmp_path / "governed.yaml"
    config.write_text(GOVERNED)
    tf = Tracefold(tmp_path / "data", config=str(config), env={"HEADERS_TO_METADATA": "X-Feature,X-Api-Key"}).start()
    try:
        basic = "Basic " + base64.b64encode(b"pk-lf-checkout:sk-lf-checkout").decode()
        request_metadata = json.dumps({"team": "rogue", "release_train": "r7", "region": "us", "_user": "vip-1"})
        traces = {}
        # OTLP/HTTP protobuf and JSON, and OTLP/gRPC (headers become metadata).
        for exporter in ("proto", "json", "grpc"):
            traces[exporter] = run_app(tf, exporter, {
                "authorization": basic, "x-tracefold-metadata": request_metadata,
                "x-feature": f"checkout-{exporter}", "x-api-key": "must-not-leak",
            })

        for exporter, trace_id in traces.items():
            req = urllib.request.Request(f"{tf.base_url}/api/public/traces/{trace_id}", headers={"Authorization": basic})
            with urllib.request.urlopen(req, timeout=5) as r:
                record = json.load(r)
            m = record["metadata"]
            assert m["team"] == "payments", "the workspace layer beats the key and the request"
            assert m["cost_center"] == "cc-42"
            assert m["service_tier"] == "gold"
            assert m["release_train"] == "r7", "request keys the layers do not govern stay"
            assert m["region"] == "us", "a request value beats a schema default"
            assert m["x-feature"] == f"checkout-{exporter}", "HEADERS_TO_METADATA injects the header"
            assert "x-api-key" not in m
            assert m["_user"] == "vip-1", "an explicit _user wins over userId"
            assert record["userId"] == f"user-{exporter}"
            kinds = {e["kind"]: e for e in record["metadataEntries"]}
            assert kinds["tracefold.workspace"]["label"] == "Workspace Metadata (payments)"
            assert kinds["tracefold.api_key"]["values"] == {"service_tier": "gold", "team": "key-team"}
            assert "must-not-leak" not in json.dumps(record)

        # The same metadata in the JSONL export a warehouse reads.
        records = tf.wait_for_records(lambda rs: all(("trace", t) in rs for t in traces.values()))
        for exporter, trace_id in traces.items():
            m = records[("trace", trace_id)]["metadata"]
            assert (m["team"], m["cost_center"], m["x-feature"]) == ("payments", "cc-42", f"checkout-{exporter}")

        # The governed keys filter and group like any other metadata key.
        flt = urllib.parse.quote(json.dumps([{"type": "stringObject", "column": "metadata", "key": "cost_center",
                                              "operator": "=", "value": "cc-42"}]))
        req = urllib.request.Request(f"{tf.base_url}/api/public/traces?filter={flt}", headers={"Authorization": basic})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert sorted(t["id"] for t in json.load(r)["data"]) == sorted(traces.values())
        req = urllib.request.Request(f"{tf.base_url}/api/metrics/summary?groupBy=metadata.x-feature", headers={"Authorization": basic})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert [(g["group"], g["traces"]) for g in json.load(r)["data"]] == [("checkout-grpc", 1), ("checkout-json", 1), ("checkout-proto", 1)]
        assert "x-api-key" in tf.log(), "the denylisted header is a startup warning"
    finally:
        assert tf.stop() == 0
