"""Faults (issue: reliability §4): the store's PostgreSQL stops and restarts,
and the data disk fills up and frees again. While the fault lasts intake
answers 503 with Retry-After and /health/ready fails; both recover without a
restart, and every span that got a 200 is in the records afterwards."""
import json
import os
import signal
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

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


def grpc_export(tf):
    """One span over OTLP/gRPC; returns the status code and the error."""
    body = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[
        trace_pb2.Span(trace_id=b"\x0f" * 16, span_id=b"\x0f" * 8, name="grpc", start_time_unix_nano=1_700_000_000_000_000_000,
                       end_time_unix_nano=1_700_000_001_000_000_000)])])]).SerializeToString()
    with grpc.insecure_channel(f"127.0.0.1:{tf.grpc_port}") as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        try:
            export(body, timeout=30)
            return grpc.StatusCode.OK, None
        except grpc.RpcError as e:
            return e.code(), e


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


def require_postgres():
    if not os.path.isdir("/usr/lib/postgresql"):
        if os.environ.get("TRACEFOLD_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL server binaries are missing")
        pytest.skip("PostgreSQL server binaries are missing")


def start_on_private_postgres(tmp_path, store_options="", env=None):
    """A private PostgreSQL cluster (not under tmp_path: the postgres user
    must reach its directory) and a tracefold whose store is in it. Returns
    (tracefold, cluster directory, cluster port)."""
    require_postgres()
    pgdir, pgport = tempfile.mkdtemp(prefix="tracefold-pg-faults-", dir="/tmp"), free_port()
    url = subprocess.run([CLUSTER, "start", pgdir, str(pgport)], check=True, capture_output=True, text=True).stdout.strip()
    config = tmp_path / "pg.yaml"
    config.write_text(TEST_CONFIG.replace("  durability:", f"  postgres:\n    url: {url}\n{store_options}  durability:"))
    return Tracefold(tmp_path / "data", config=str(config), env=env).start(), pgdir, pgport


@pytest.mark.skipif(shutil.which("runuser") is None and os.geteuid() == 0, reason="needs runuser to start PostgreSQL as root")
def test_postgres_stops_and_restarts(tmp_path):
    tf, pgdir, pgport = start_on_private_postgres(tmp_path)
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
        # The same refusal over gRPC: UNAVAILABLE, with a google.rpc.RetryInfo
        # detail that OTLP exporters read as the delay before their retry.
        code, error = grpc_export(tf)
        assert code == grpc.StatusCode.UNAVAILABLE, code
        status = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
        info = error_details_pb2.RetryInfo()
        assert status.code == 14 and status.details[0].Unpack(info) and info.retry_delay.seconds == 5, status

        subprocess.run([CLUSTER, "start", pgdir, str(pgport)], check=True, capture_output=True)
        assert wait_for(lambda: ready(tf)[0] == 200, timeout=60), ready(tf)
        assert wait_for(lambda: s.send() == 200)
        assert grpc_export(tf)[0] == grpc.StatusCode.OK
        for _ in range(5):
            assert s.send() == 200
        s.assert_all_stored()
        assert 503 in s.statuses and 500 not in s.statuses
    finally:
        started = time.monotonic()
        assert tf.stop() == 0, tf.log()[-3000:]
        took = time.monotonic() - started
        print(f"\nSIGTERM after the store came back to exit: {took:.2f}s")
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


class BackgroundSender(threading.Thread):
    """Posts spans until told to stop, as an exporter with retries would,
    and remembers the ones that got a 200. Connection errors (the collector
    has stopped listening) end it."""

    def __init__(self, tf, first):
        super().__init__(daemon=True)
        self.sender, self.stopping = Sender(tf), threading.Event()
        self.sender.n = first

    def run(self):
        while not self.stopping.is_set():
            try:
                self.sender.send()
            except (OSError, urllib.error.URLError):
                return
            time.sleep(0.02)

    def finish(self):
        self.stopping.set()
        self.join()
        return self.sender.acked


@pytest.mark.skipif(shutil.which("runuser") is None and os.geteuid() == 0, reason="needs runuser to start PostgreSQL as root")
@pytest.mark.parametrize("phase", ["outage", "reconnect", "frozen"])
def test_sigterm_while_postgres_is_down_or_reconnecting_exits_within_shutdown_timeout(tmp_path, phase):
    """SIGTERM while PostgreSQL is stopped, while it is starting again and
    the collector reconnects, or while it is frozen (SIGSTOP: connections
    stay open and nothing answers), with a client sending throughout: the
    process exits 0 within service.shutdown_timeout (+5 s for process
    start-up and tear-down), and after a restart with the database back
    every span that got a 200 is in the records."""
    timeout = 4
    tf, pgdir, pgport = start_on_private_postgres(tmp_path, env={"TRACEFOLD_SHUTDOWN_TIMEOUT": f"{timeout}s"})
    starter, frozen = None, []
    try:
        s = Sender(tf)
        for _ in range(5):
            assert s.send() == 200
        if phase == "frozen":
            frozen = postgres_processes(pgdir)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
        else:
            subprocess.run([CLUSTER, "stop", pgdir], check=True)
            assert wait_for(lambda: s.send() == 503), "intake keeps answering 200 while the store is down"
        background = BackgroundSender(tf, first=1000)
        background.start()
        if phase == "reconnect":
            # pg_ctl start returns once the server accepts connections; the
            # signal goes out while it starts and the store reconnects.
            starter = subprocess.Popen([CLUSTER, "start", pgdir, str(pgport)], stdout=subprocess.DEVNULL)
            time.sleep(0.3)
        else:
            time.sleep(1.0)
        started = time.monotonic()
        tf.proc.send_signal(signal.SIGTERM)
        try:
            code = tf.proc.wait(timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            tf.proc.kill()
            pytest.fail(f"no exit within shutdown_timeout {timeout}s + 5s of SIGTERM ({phase}); log:\n{tf.log()[-3000:]}")
        elapsed = time.monotonic() - started
        acked = s.acked + background.finish()
        assert code == 0, tf.log()[-3000:]
        print(f"\nSIGTERM during the {phase} to exit: {elapsed:.2f}s (shutdown_timeout {timeout}s); {len(acked)} spans acknowledged")

        # The database is back; every acknowledged span reaches the records.
        if starter:
            assert starter.wait() == 0
        elif phase == "frozen":
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        else:
            subprocess.run([CLUSTER, "start", pgdir, str(pgport)], check=True, capture_output=True)
        tf.start()
        assert wait_for(lambda: all_stored(tf, acked), timeout=120), f"acknowledged spans missing after a restart:\n{tf.log()[-3000:]}"
    finally:
        if tf.proc and tf.proc.poll() is None:
            assert tf.stop() == 0
        if starter and starter.poll() is None:
            starter.wait()
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        subprocess.run([CLUSTER, "stop", pgdir])
        shutil.rmtree(pgdir, ignore_errors=True)


def all_stored(tf, traces):
    for trace in traces:
        try:
            with urllib.request.urlopen(f"{tf.base_url}/api/public/traces/{trace}", timeout=30) as r:
                if r.status != 200:
                    return False
        except urllib.error.HTTPError:
            return False
    return True


def postgres_processes(pgdir):
    """The cluster's postmaster and its children (read from /proc, so that
    the suite's own cluster is left alone)."""
    with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(shutil.which("runuser") is None and os.geteuid() == 0, reason="needs runuser to start PostgreSQL as root")
def test_frozen_postgres_is_given_up_after_request_timeout_and_intake_recovers(tmp_path):
    """PostgreSQL stops answering without closing its connections (SIGSTOP,
    as in a network partition). A span acknowledged then is in the intake
    log; the fold's store call is given up after store.postgres.request_timeout,
    intake answers 503 and /health/ready names the store until the database
    answers again; then every acknowledged span reaches the records."""
    tf, pgdir, pgport = start_on_private_postgres(tmp_path, store_options="    request_timeout: 2s\n")
    frozen = []
    try:
        s = Sender(tf)
        for _ in range(5):
            assert s.send() == 200
        frozen = postgres_processes(pgdir)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        assert s.send() == 200, "durable in the intake log: acknowledged before the fold"
        assert wait_for(lambda: s.send() == 503, timeout=120), "intake keeps answering 200 while the store does not answer"
        status, body = ready(tf)
        assert status == 503 and "not ready" in body, body
        assert "no answer within" in tf.log()
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        frozen = []
        assert wait_for(lambda: ready(tf)[0] == 200, timeout=120), ready(tf)
        assert wait_for(lambda: s.send() == 200, timeout=60)
        assert wait_for(lambda: all_stored(tf, s.acked), timeout=120), "an acknowledged span is missing"
        assert 500 not in s.statuses
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        assert tf.stop() == 0, tf.log()[-3000:]
        subprocess.run([CLUSTER, "stop", pgdir])
        shutil.rmtree(pgdir, ignore_errors=True)
