"""Security checks (reliability issue §8): auth on every route but the two
health checks, including paths that try to walk out of /health/ with dot
segments; nothing written outside the configured directories whatever the
spans say; a store row naming a file elsewhere is never truncated."""
import base64
import http.client
import os
import sqlite3
import urllib.request

from conftest import TEST_CONFIG, Tracefold
from test_bad_input import PB, attribute, ld, post, request, span

AUTHED = TEST_CONFIG.replace("        endpoint: ${env:TRACEFOLD_ENDPOINT}\n", """        endpoint: ${env:TRACEFOLD_ENDPOINT}
        auth:
          api_keys:
            - {public_key: pk-sec, secret_key: sk-sec}
""")
GOOD = "Basic " + base64.b64encode(b"pk-sec:sk-sec").decode()


def raw_get(tf, path, authorization=None, method="GET"):
    """The path is sent exactly as given (urllib would normalise it)."""
    conn = http.client.HTTPConnection("127.0.0.1", tf.port, timeout=10)
    headers = {"Authorization": authorization} if authorization else {}
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def test_every_route_but_health_needs_credentials(tmp_path):
    config = tmp_path / "authed.yaml"
    config.write_text(AUTHED)
    tf = Tracefold(tmp_path / "data", config=str(config)).start()
    try:
        for path in ["/health/live", "/health/ready"]:
            assert raw_get(tf, path)[0] == 200, path
        protected = ["/metrics", "/api/public/traces", "/api/public/observations", "/api/public/traces/" + "01" * 16,
                     "/api/public/observations/0102030405060708", "/api/public/v2/observations", "/nope"]
        for path in protected:
            assert raw_get(tf, path)[0] == 401, path
            assert raw_get(tf, path, GOOD)[0] in (200, 404), path
        assert raw_get(tf, "/v1/traces", method="POST")[0] == 401
        # Walking out of /health/ with dot segments, raw or encoded, never
        # skips auth and never reaches another route.
        sneaky = ["/health/../metrics", "/health/../api/public/traces", "/health/%2e%2e/metrics", "/health/..%2fmetrics",
                  "/health/live/../../metrics", "//health//..//metrics", "/health/ready/..", "/./metrics", "/health/./../metrics"]
        for path in sneaky:
            status, body = raw_get(tf, path)
            assert status in (401, 404), f"{path}: {status}"
            assert b"tracefold_" not in body, path
            status, body = raw_get(tf, path, GOOD)
            assert status == 404, f"{path}: {status} {body[:80]!r}"
        # Ids that look like paths are just unknown ids.
        for path in ["/api/public/traces/..%2F..%2F..%2Fetc%2Fpasswd", "/api/public/traces/../../../etc/passwd"]:
            status, body = raw_get(tf, path, GOOD)
            assert status in (400, 404) and b"root:" not in body, f"{path}: {status}"
    finally:
        tf.stop()


def test_nothing_is_written_outside_the_configured_directories(tmp_path):
    """Span and resource values that look like paths stay values: after
    traffic, a restart and a rotation, every file tracefold made is under
    its data directory."""
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    tf = Tracefold(sandbox / "data").start()
    hostile = [b"../../escape", b"/tmp/escape", b"..\\..\\escape", b"%2e%2e%2fescape", b"\x00escape"]
    for i, value in enumerate(hostile):
        extra = attribute(b"langfuse.trace.name", value) + attribute(b"service.name", value) + attribute(b"langfuse.trace.metadata." + value, value)
        assert post(tf, request(span(i + 1, name=value, extra=extra)), PB)[0] == 200
    tf.wait_for_records(lambda r: sum(1 for k in r if k[0] == "observation") >= len(hostile))
    assert tf.stop() == 0
    tf.start()
    assert tf.stop() == 0
    made = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files]
    outside = [p for p in made if not p.startswith(str(sandbox / "data") + os.sep)]
    assert not outside, outside
    assert not os.path.exists("/tmp/escape")


def test_a_store_row_naming_a_file_elsewhere_is_never_truncated(tmp_path, make_tracefold):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n" * 100)
    tf = make_tracefold().start()
    assert post(tf, request(span(1)), PB)[0] == 200
    tf.wait_for_records(lambda r: ("observation", "0000000000000001") in r)
    assert tf.stop() == 0
    db = sqlite3.connect(os.path.join(tf.data_dir, "tracefold.sqlite"))
    db.execute("UPDATE export_position SET file = ?, length = 3", (str(victim),))
    db.commit()
    db.close()
    tf.start()
    assert tf.stop() == 0
    assert victim.read_text() == "precious\n" * 100
    assert "outside the export directory; leaving it alone" in tf.log()
