"""A live tracefold for the real-client tests.

Each test gets its own process on a free loopback port with its own data
directory, configured through the repository's collector.yaml and the
TRACEFOLD_* environment variables it reads (SPEC §9.6).
"""
import glob
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TRACEFOLD_BIN", os.path.join(ROOT, ".build", "debug", "tracefold"))


# Ports handed out in this run. A port is free once its probe socket is
# closed, so the kernel may give it out again straight away: a collector's
# HTTP and gRPC ports once came out the same, and it failed to start with
# "Address already in use" on its second listener.
_handed_out = set()


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


# The repository's collector.yaml plus the spans_jsonl debug exporter, so the
# tests can see every span as it arrived as well as the folded records.
TEST_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:TRACEFOLD_GRPC_ENDPOINT:-127.0.0.1:4317}
      http:
        endpoint: ${env:TRACEFOLD_ENDPOINT}
        read_timeout: ${env:TRACEFOLD_READ_TIMEOUT:-30s}
processors:
  fold: {}
exporters:
  jsonl:
    directory: ${env:TRACEFOLD_DATA_DIR}/export
    flush_after: ${env:TRACEFOLD_FLUSH_AFTER:-200ms}
    flush_interval: 100ms
  spans_jsonl:
    directory: ${env:TRACEFOLD_DATA_DIR}/spans
store:
  directory: ${env:TRACEFOLD_DATA_DIR}
  durability: ${env:TRACEFOLD_DURABILITY:-fsync}
  max_pending_spans: ${env:TRACEFOLD_MAX_PENDING_SPANS:-8192}
service:
  shutdown_timeout: ${env:TRACEFOLD_SHUTDOWN_TIMEOUT:-30s}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [fold]
      exporters: [jsonl, spans_jsonl]
"""


class Tracefold:
    def __init__(self, data_dir, config=None, port=None, env=None, tls=None):
        """tls: an ssl.SSLContext when the HTTP receiver serves HTTPS; the
        helpers below then speak HTTPS with it."""
        self.data_dir = str(data_dir)
        self.tls = tls
        if config is None:
            os.makedirs(self.data_dir, exist_ok=True)
            config = os.path.join(self.data_dir, "test-collector.yaml")
            with open(config, "w") as f:
                f.write(TEST_CONFIG)
        self.config = config
        self.port = port or free_port()
        self.grpc_port = free_port()
        self.extra_env = env or {}
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "tracefold.log")
        self._line_cache = {}

    @property
    def base_url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def urlopen(self, url, timeout):
        return urllib.request.urlopen(url, timeout=timeout, context=self.tls)

    @property
    def traces_url(self):
        return self.base_url + "/v1/traces"

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "TRACEFOLD_ENDPOINT": f"127.0.0.1:{self.port}",
            "TRACEFOLD_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "TRACEFOLD_DATA_DIR": self.data_dir,
        })
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config], env=env, stdout=log, stderr=log)
        # Generous: a restart first replays the intake log past its
        # checkpoint, and a debug build under `make soak` took 8 to 18 s for
        # that (more as the store grew, and past 30 s while the machine was
        # busy). A crash is seen at once by poll(); only a hang waits this long.
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tracefold exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with self.urlopen(self.base_url + "/health/live", timeout=1) as r:
                    if r.status == 200 and self._grpc_listening():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("tracefold did not start:\n" + self.log())

    def _grpc_listening(self):
        """The gRPC socket binds apart from the HTTP one: a test that calls
        it (or asks /health/ready) right after start must find it bound."""
        with open(self.config) as f:
            if "\n      grpc:" not in f.read():
                return True
        try:
            socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1).close()
            return True
        except OSError:
            return False

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    @property
    def shutdown_timeout(self):
        """service.shutdown_timeout in seconds, as the test config sets it."""
        value = self.extra_env.get("TRACEFOLD_SHUTDOWN_TIMEOUT", os.environ.get("TRACEFOLD_SHUTDOWN_TIMEOUT", "30s"))
        units = {"ms": 0.001, "s": 1, "m": 60}
        for unit in ("ms", "s", "m"):
            if value.endswith(unit):
                return float(value[: -len(unit)]) * units[unit]
        return float(value)

    def stop(self):
        """SIGTERM; the collector promises to exit within shutdown_timeout
        (SPEC §9), and 5 s more covers process start-up and tear-down."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=self.shutdown_timeout + 5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode if self.proc else None

    def _json_lines(self, pattern):
        """Every line of the files matching pattern, parsed; .gz files are
        gunzipped. The tests poll these files while the collector writes
        them, so a file's parsed lines are kept and only what was appended
        since is read and parsed again: re-parsing a file of 10^6-attribute
        spans every 50 ms took a core away from the collector under test."""
        import gzip
        lines = []
        for path in sorted(glob.glob(pattern)):
            try:
                lines.extend(self._parsed_lines(path, gzip))
            except FileNotFoundError:
                # Rotated away between the glob and the open: its lines are
                # in the rotated file, which the next poll finds.
                continue
        return lines

    def _parsed_lines(self, path, gzip):
        stat = os.stat(path)
        cached = self._line_cache.get(path)
        if path.endswith(".gz"):
            # A rotated file is written once; it is read whole, once.
            if cached is None or cached[0] != (stat.st_ino, stat.st_size, stat.st_mtime_ns):
                with gzip.open(path, "rb") as f:
                    data = f.read()
                complete = data[: data.rfind(b"\n") + 1]
                cached = ((stat.st_ino, stat.st_size, stat.st_mtime_ns), 0, [json.loads(raw) for raw in complete.split(b"\n") if raw])
                self._line_cache[path] = cached
            return cached[2]
        with open(path, "rb") as f:
            offset, parsed = 0, []
            if cached is not None and cached[0] == stat.st_ino and stat.st_size >= cached[1]:
                # Still the same file, grown or not: it must still have a
                # line end where the parsed part ended, or it is read again.
                f.seek(max(cached[1] - 1, 0))
                if cached[1] == 0 or f.read(1) == b"\n":
                    offset, parsed = cached[1], cached[2]
                else:
                    f.seek(0)
            data = f.read()
        # A file being written may end in part of a line: a reader takes
        # whole lines only.
        complete = data[: data.rfind(b"\n") + 1]
        if complete:
            parsed = parsed + [json.loads(raw) for raw in complete.split(b"\n") if raw]
        self._line_cache[path] = (stat.st_ino, offset + len(complete), parsed)
        return parsed

    def span_lines(self):
        """Every line of the spans_jsonl debug exporter."""
        return self._json_lines(os.path.join(self.data_dir, "spans", "spans-*.jsonl"))

    def export_lines(self):
        """Every line of the record JSONL export, rotated files included."""
        return self._json_lines(os.path.join(self.data_dir, "export", "tracefold-*.jsonl*"))

    def latest_records(self):
        """The highest revision per (recordType, id), as a reader keeps them."""
        latest = {}
        for line in self.export_lines():
            key = (line["recordType"], line["id"])
            if key not in latest or line["revision"] > latest[key]["revision"]:
                latest[key] = line
        return latest

    def wait_for_records(self, predicate, timeout=15):
        deadline = time.time() + timeout
        while True:
            records = self.latest_records()
            if predicate(records) or time.time() > deadline:
                return records
            time.sleep(0.05)

    def wait_for_span_keys(self, keys, timeout=60):
        """Waits until every (traceId, spanId) in keys is in the debug export
        (a count is not enough: spans that were logged but never acknowledged
        count too) and returns the lines."""
        keys = set(keys)
        deadline = time.time() + timeout
        while True:
            lines = self.span_lines()
            if keys <= {(l["traceId"], l["spanId"]) for l in lines} or time.time() > deadline:
                return lines
            time.sleep(0.1)

    def wait_for_trace(self, trace_id, observations, timeout=15):
        """GET /api/public/traces/{id} until the trace has `observations`
        observations (404 until its first span is folded); returns it."""
        deadline = time.time() + timeout
        while True:
            try:
                with self.urlopen(f"{self.base_url}/api/public/traces/{trace_id}", timeout=5) as r:
                    trace = json.loads(r.read())
                if len(trace["observations"]) >= observations:
                    return trace
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
            if time.time() > deadline:
                raise AssertionError(f"trace {trace_id} has not got {observations} observations")
            time.sleep(0.1)

    def wait_for_spans(self, count, timeout=10):
        deadline = time.time() + timeout
        while True:
            lines = self.span_lines()
            if len(lines) >= count or time.time() > deadline:
                return lines
            time.sleep(0.05)


# Tests that wait for a package the test command builds in the background
# (scripts/test.sh): they run last, so that those builds overlap the rest of
# the suite instead of being waited for early on.
WAIT_FOR_BACKGROUND_BUILDS = ("test_consumer_package.py", "test_swift_otel_exporter.py")


def pytest_collection_modifyitems(session, config, items):
    items[:] = sorted(items, key=lambda item: os.path.basename(str(item.fspath)) in WAIT_FOR_BACKGROUND_BUILDS)


@pytest.fixture
def tracefold(tmp_path):
    tf = Tracefold(tmp_path / "data").start()
    yield tf
    tf.stop()


@pytest.fixture
def make_tracefold(tmp_path):
    started = []

    def make(**kwargs):
        kwargs.setdefault("data_dir", tmp_path / "data")
        tf = Tracefold(**kwargs)
        started.append(tf)
        return tf

    yield make
    for tf in started:
        if tf.proc and tf.proc.poll() is None:
            tf.proc.kill()
            tf.proc.wait()
