"""SPEC §9.2–9.4: health, /metrics counters checked against known traffic, and
secrets that never reach the log, even at trace level."""
import base64
import json
import os
import re
import time
import urllib.error
import urllib.request

from conftest import TEST_CONFIG, Tracefold

SECRET = "sk-lf-very-secret-value"
CONFIG = TEST_CONFIG.replace("        endpoint: ${env:TRACEFOLD_ENDPOINT}\n", f"""        endpoint: ${{env:TRACEFOLD_ENDPOINT}}
        auth:
          api_keys:
            - public_key: pk-lf-obs
              secret_key: {SECRET}
""") + """  telemetry:
    logs:
      level: trace
"""
BASIC = "Basic " + base64.b64encode(f"pk-lf-obs:{SECRET}".encode()).decode()
WRONG = "Basic " + base64.b64encode(b"pk-lf-obs:sk-lf-wrong-guess").decode()


def span(trace, span_id, attributes=()):
    return {"traceId": trace, "spanId": span_id, "name": "s", "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000001000000000",
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes]}


def call(tf, path, body=None, headers=None, method=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(tf.base_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def export(spans):
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "obs"}, "spans": spans}]}]}


def metric(text, name, **labels):
    """The value of one sample; 0 when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+-]+)$"
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.group(1))
    return 0.0


def test_metrics_count_known_traffic_and_secrets_are_never_logged(tmp_path):
    config = tmp_path / "obs.yaml"
    config.write_text(CONFIG)
    tf = Tracefold(tmp_path / "data", config=str(config)).start()
    auth = {"Authorization": BASIC}
    try:
        assert call(tf, "/health/live")[0] == 200
        assert call(tf, "/health/ready")[0] == 200
        # 3 valid spans and 1 with a short id: 200, rejected 1.
        status, body = call(tf, "/v1/traces", export([span("a" * 32, f"{i:016x}") for i in range(1, 4)] + [span("b" * 32, "12")]), auth)
        assert status == 200 and '"rejectedSpans":"1"' in body.replace(" ", ""), body
        # Folded and committed before the next request is sent: batches
        # that queue up together are folded in one commit, so without this
        # wait the commit count below depended on the machine's speed.
        deadline = time.time() + 60
        while metric(call(tf, "/metrics", headers=auth)[1], "tracefold_store_commit_duration_seconds_count") < 1:
            assert time.time() < deadline, "the first request was never committed"
            time.sleep(0.05)
        # 1 span with two bad request-metadata keys and an update over 64 KB.
        big = json.dumps({"blob": "x" * 70000})
        status, body = call(tf, "/v1/traces", export([span("c" * 32, "00000000000000c1", [("langfuse.observation.metadata", big)])]),
                            {**auth, "x-tracefold-metadata": json.dumps({"n": 1, "ok": "yes", "": "x"})})
        assert status == 200, body
        assert call(tf, "/v1/traces", b"{}", {**auth, "Content-Type": "text/plain"})[0] == 415
        assert call(tf, "/v1/traces", export([span("d" * 32, "0000000000000001")]), {"Authorization": WRONG})[0] == 401
        assert call(tf, "/api/public/traces/" + "f" * 32, headers=auth)[0] == 404
        assert call(tf, "/metrics")[0] == 401, "metrics need the credentials when auth is on"

        records = tf.wait_for_records(lambda rs: len(rs) >= 6)  # 2 traces, 4 observations
        assert len(records) == 6
        # The exporter counts its lines once the pass that wrote them has
        # marked them exported, a moment after they reach the file.
        deadline = time.time() + 60
        while True:
            status, text = call(tf, "/metrics", headers=auth)
            assert status == 200
            if metric(text, "tracefold_exporter_records_total", exporter="jsonl") >= 6 or time.time() > deadline:
                break
            time.sleep(0.05)
        assert metric(text, "tracefold_receiver_accepted_spans_total", transport="http") == 4
        assert metric(text, "tracefold_receiver_rejected_spans_total", transport="http") == 1
        assert metric(text, "tracefold_receiver_refused_spans_total", transport="http") == 0
        assert metric(text, "tracefold_receiver_accepted_spans_total", transport="grpc") == 0
        assert metric(text, "tracefold_receiver_requests_total", transport="http", code="200") == 2
        assert metric(text, "tracefold_receiver_requests_total", transport="http", code="415") == 1
        assert metric(text, "tracefold_receiver_requests_total", transport="http", code="401") == 1
        assert metric(text, "tracefold_http_requests_total", handler="intake", code="200") == 2
        assert metric(text, "tracefold_http_requests_total", handler="intake", code="415") == 1
        assert metric(text, "tracefold_http_requests_total", handler="intake", code="401") == 1
        assert metric(text, "tracefold_http_requests_total", handler="query", code="404") == 1
        assert metric(text, "tracefold_http_requests_total", handler="health", code="200") >= 2  # start() polls too
        assert metric(text, "tracefold_metadata_updates_dropped_total", reason="request_header") == 2
        assert metric(text, "tracefold_metadata_updates_dropped_total", reason="update_too_large") == 1
        lines = tf.export_lines()
        assert metric(text, "tracefold_exporter_records_total", exporter="jsonl") == len(lines)
        size = sum(os.path.getsize(os.path.join(tf.data_dir, "export", f)) for f in os.listdir(os.path.join(tf.data_dir, "export")))
        assert metric(text, "tracefold_exporter_bytes_total", exporter="jsonl") == size
        # Both traces went from the fold to the exporter in memory; none was
        # read back from the store.
        assert metric(text, "tracefold_exporter_traces_total", exporter="jsonl", **{"from": "cache"}) == 2
        assert metric(text, "tracefold_exporter_traces_total", exporter="jsonl", **{"from": "store"}) == 0
        assert metric(text, "tracefold_store_commit_duration_seconds_count") == 2, "a commit for each request"
        assert metric(text, "tracefold_process_resident_memory_bytes") > 10 << 20
    finally:
        assert tf.stop() == 0
    log = tf.log()
    assert "trace" in log.lower() and len(log) > 0
    for secret in (SECRET, BASIC.split()[1], WRONG.split()[1], "sk-lf-wrong-guess"):
        assert secret not in log, f"{secret} is in the log"
