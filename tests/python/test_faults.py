"""Faults (issue: reliability §4): the store's PostgreSQL stops and restarts,
and the data disk fills up and frees again. While the fault lasts intake
answers 503 with Retry-After and /health/ready fails; both recover without a
restart, and every span that got a 200 is in the records afterwards."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, TEST_CONFIG, Tracefold, free_port

CLUSTER = os.path.join(ROOT, "scripts", "postgres-cluster.sh")


def post_span(tf, trace_hex, span_hex):
    body = json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "faults"}, "spans": [{
        "traceId": trace_hex, "spanId": span_hex, "name": "s", "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000"}]}]}]}).encode()
    req = urllib.request.Request(tf.traces_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def ready(tf):
    try:
        with urllib.request.urlopen(tf.base_url + "/health/ready", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


class Sender:
    """Posts one span per call and remembers which got a 200."""

    def __init__(self, tf):
        self.tf, self.n, self.acked, self.statuses = tf, 0, [], []

    def send(self):
        self.n += 1
        trace, span = f"{self.n:032x}", f"{self.n:016x}"
        status, headers = post_span(self.tf, trace, span)
        self.statuses.append(status)
        assert status in (200, 503), status
        if status == 503:
            assert headers.get("Retry-After"), headers
        else:
            self.acked.append(trace)
        return status

    def assert_all_stored(self):
        for trace in self.acked:
            with urllib.request.urlopen(f"{self.tf.base_url}/api/public/traces/{trace}", timeout=10) as r:
                assert r.status == 200


@pytest.mark.skipif(shutil.which("runuser") is None and os.geteuid() == 0, reason="needs runuser to start PostgreSQL as root")
def test_postgres_stops_and_restarts(tmp_path):
    if not [d for d in ["/usr/lib/postgresql"] if os.path.isdir(d)]:
        if os.environ.get("TRACEFOLD_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL server binaries are missing")
        pytest.skip("PostgreSQL server binaries are missing")
    # Not under tmp_path: the postgres user must reach the directory.
    pgdir, pgport = tempfile.mkdtemp(prefix="tracefold-pg-faults-", dir="/tmp"), free_port()
    url = subprocess.run([CLUSTER, "start", pgdir, str(pgport)], check=True, capture_output=True, text=True).stdout.strip()
    config = tmp_path / "pg.yaml"
    config.write_text(TEST_CONFIG.replace("  durability:", f"  postgres:\n    url: {url}\n  durability:"))
    tf = Tracefold(tmp_path / "data", config=str(config)).start()
    try:
        s = Sender(tf)
        for _ in range(5):
            assert s.send() == 200
        assert ready(tf)[0] == 200

        subprocess.run([CLUSTER, "stop", pgdir], check=True)
        assert wait_for(lambda: s.send() == 503), "intake keeps answering 200 while the store is down"
        status, body = ready(tf)
        assert status == 503 and "not ready" in body, body
        for _ in range(3):
            assert s.send() == 503

        subprocess.run([CLUSTER, "start", pgdir, str(pgport)], check=True, capture_output=True)
        assert wait_for(lambda: ready(tf)[0] == 200, timeout=60), ready(tf)
        assert wait_for(lambda: s.send() == 200)
        for _ in range(5):
            assert s.send() == 200
        s.assert_all_stored()
        assert 503 in s.statuses and 500 not in s.statuses
    finally:
        assert tf.stop() == 0
        subprocess.run([CLUSTER, "stop", pgdir])
        shutil.rmtree(pgdir, ignore_errors=True)


def test_disk_full_and_space_returns(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow a tmpfs mount")
    try:
        tf = Tracefold(mnt / "data", port=free_port())
        tf.log_path = str(tmp_path / "tracefold.log")
        tf.start()
        try:
            s = Sender(tf)
            for _ in range(5):
                assert s.send() == 200
            assert ready(tf)[0] == 200
            filler = mnt / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)  # until ENOSPC

            assert wait_for(lambda: s.send() == 503), "intake acknowledges data on a full disk"
            status, body = ready(tf)
            assert status == 503 and "bytes free" in body, body

            filler.unlink()
            assert wait_for(lambda: ready(tf)[0] == 200, timeout=60), ready(tf)
            assert wait_for(lambda: s.send() == 200)
            for _ in range(5):
                assert s.send() == 200
            s.assert_all_stored()
            assert 500 not in s.statuses
        finally:
            assert tf.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
