#!/usr/bin/env python3
"""tracefold benchmark (SPEC §10.1–10.2), run by `make bench`.

For each configuration it starts a release tracefold on a fresh data
directory, sends the §10.1 load with tracefold-loadgen, and reads the
collector's own CPU time (utime+stime from /proc/PID/stat) and peak RSS
(VmHWM from /proc/PID/status). Two phases per configuration:

  throughput  as fast as acknowledgements allow, 4 connections
  latency     paced at 10k spans/s, for ack p50/p99

The durability modes run back to back so their ratio is comparable on a
noisy machine. Prints a table and writes JSON to bench/results/.
"""
import argparse
import contextlib
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


_handed_out = set()


def free_port():
    """A port no earlier call gave: a closed probe's port can come back at
    once, and a collector's HTTP and gRPC ports must differ."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def status_mib(pid, field):
    """A memory figure of /proc/PID/status (VmHWM, VmRSS, …) in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib(pid):
    return status_mib(pid, "VmHWM")


def config_yaml(port, data, durability, full, postgres_url=None, max_open_traces=None, grpc_port=None):
    """full: the fold into SQLite (or PostgreSQL) and the JSONL record export
    (the defaults); otherwise intake only (decode, intake log, no sinks).
    grpc_port: also the OTLP/gRPC receiver there."""
    fold_cfg = f"\n    max_open_traces: {max_open_traces}\n" if max_open_traces else " {}\n"
    pg = f"  postgres:\n    url: {postgres_url}\n" if postgres_url else ""
    fold = (f"processors:\n  fold:{fold_cfg}"
            f"exporters:\n  jsonl:\n    directory: {data}/export\n    flush_after: 1s\n") if full else ""
    grpc = f"      grpc:\n        endpoint: 127.0.0.1:{grpc_port}\n" if grpc_port else ""
    return (
        f"receivers:\n  otlp:\n    protocols:\n{grpc}      http:\n        endpoint: 127.0.0.1:{port}\n"
        f"{fold}"
        f"store:\n  directory: {data}\n  durability: {durability}\n{pg}"
        f"service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        f"      processors: [{'fold' if full else ''}]\n"
        f"      exporters: [{'jsonl' if full else ''}]\n"
        f"  telemetry:\n    logs:\n      level: warning\n"
    )


def sqlite_count(path, sql="SELECT COUNT(*) FROM spans"):
    """One count read back from an SQLite file (read-only); 0 while the
    file or its table does not exist yet."""
    import sqlite3
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def stored_spans(data, postgres_url=None):
    """Spans in the store, read back through sqlite3 or psql."""
    if postgres_url:
        return int(subprocess.run([psql(), postgres_url, "-qAtc", "SELECT COUNT(*) FROM spans"], check=True,
                                  capture_output=True, text=True).stdout.strip())
    return sqlite_count(os.path.join(data, "tracefold.sqlite"))


def wait_stored(data, count, postgres_url=None, timeout=600):
    """Acks come once a batch is in the intake log, before the fold (SPEC
    1.10): waits until the store holds `count` spans and returns when it
    did."""
    deadline = time.monotonic() + timeout
    while stored_spans(data, postgres_url) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return time.monotonic()


def wait_exported(data, timeout=60):
    """Waits until the jsonl exporter has written every trace revision
    (SQLite): till then the export cache holds their records, up to 32 MiB
    the trace cache is not to be charged with."""
    path = os.path.join(data, "tracefold.sqlite")
    deadline = time.monotonic() + timeout
    while sqlite_count(path, "SELECT COUNT(*) FROM traces WHERE revision > exported_revision") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)


# The load generator draws trace and span ids at random, as tracers do;
# --counting-ids counts them up instead, as every result before 2026-12-05
# did (that only appends to the store's indexes by id, and hid a quarter of
# the store's cost then).
RANDOM_IDS = True

# Span times come from the wall clock, as tracers stamp them; --fixed-times
# gives every run the same times from a base in 2023, as every result before
# 2026-12-06 did. With fixed times a store's later runs put their spans among
# the earlier runs' in every index by time (the growth row's 1M stored spans
# and its measured batches shared their first 300 seconds), where a
# tracer's new spans go after the stored ones.
WALL_CLOCK_TIMES = True


def loadgen_args(binary, url, requests, rate=0.0, seed=1, connections=4, batch=512, spans_per_trace=8, no_gzip=False, grpc=None, rootless=False):
    """The SPEC §10.1 load by default: 512-span gzip batches over 4
    connections (grpc="host:port": the same bodies as Export calls over 4
    HTTP/2 connections, gzip per message). rootless: no trace gets its
    root, so every trace stays open in the fold's cache (a trace with its
    root is settled, and released from the cache once it is no longer hot)."""
    target = ["--grpc", grpc] if grpc else ["--url", url]
    return [binary, *target, "--requests", str(requests), "--rate", str(rate), "--connections", str(connections),
            "--batch", str(batch), "--spans-per-trace", str(spans_per_trace), "--seed", str(seed)] + (["--no-gzip"] if no_gzip else []) \
        + (["--random-ids"] if RANDOM_IDS else []) + (["--wall-clock-times"] if WALL_CLOCK_TIMES else []) + (["--rootless"] if rootless else [])


def loadgen(binary, url, requests, rate=0.0, seed=1, **shape):
    out = subprocess.run(loadgen_args(binary, url, requests, rate, seed, **shape), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_listening(port, timeout=20):
    """The gRPC socket binds apart from the HTTP one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_tracefold(bin_dir, make_yaml, prefix):
    """A release tracefold on a fresh temporary data directory, once it
    answers /health/live. make_yaml(port, data) gives its config. Returns
    (process, base URL, data directory, work directory)."""
    work = tempfile.mkdtemp(prefix=prefix)
    data = os.path.join(work, "data")
    port = free_port()
    cfg = os.path.join(work, "collector.yaml")
    with open(cfg, "w") as f:
        f.write(make_yaml(port, data))
    proc = subprocess.Popen([os.path.join(bin_dir, "tracefold"), "serve", "--config", cfg],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(url + "/health/live", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    return proc, url, data, work


@contextlib.contextmanager
def running(bin_dir, make_yaml, prefix, keep=False):
    """`start_tracefold` for a `with` block: yields (process, base URL, data
    directory), then stops the process and, unless `keep`, removes its
    work directory (the data directory's parent)."""
    proc, url, data, work = start_tracefold(bin_dir, make_yaml, prefix)
    try:
        yield proc, url, data
    finally:
        proc.terminate()
        proc.wait(timeout=120)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def psql():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    return bins[-1] if bins else "psql"


class PostgresCluster:
    """A private PostgreSQL cluster (scripts/postgres-cluster.sh) for the
    PostgreSQL rows; each run gets a fresh database in it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tracefold-bench-pg-")
        self.base = subprocess.run([os.path.join(ROOT, "scripts", "postgres-cluster.sh"), "start", self.dir, str(free_port())],
                                   check=True, capture_output=True, text=True).stdout.strip()
        self.n = 0

    def fresh_database(self):
        self.n += 1
        name = f"bench{self.n}"
        subprocess.run([psql(), self.base, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        return self.base.rsplit("/", 1)[0] + "/" + name

    def cpu_seconds(self):
        """CPU time of the server: the postmaster and every backend and
        worker it forked that is still running. Backends of the collector's
        pooled connections live as long as it does, so a phase's difference
        is PostgreSQL's own work for that phase."""
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        total = cpu_seconds(postmaster)
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    total += (int(fields[11]) + int(fields[12])) / TICKS
            except (OSError, ValueError, IndexError):
                continue
        return total

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts", "postgres-cluster.sh"), "stop", self.dir])
        shutil.rmtree(self.dir, ignore_errors=True)


def run_config(bin_dir, name, durability, full, throughput_requests, latency_requests, postgres_url=None, profile=False, postgres_cpu=None,
               grpc=False):
    """One §10.2 row. profile: also sample the throughput phase with perf and
    attribute the collector's CPU to its stages. grpc: the load goes to the
    OTLP/gRPC receiver instead of OTLP/HTTP."""
    grpc_port = free_port() if grpc else None
    target = {"grpc": f"127.0.0.1:{grpc_port}"} if grpc_port else {}
    with running(bin_dir, lambda port, data: config_yaml(port, data, durability, full, postgres_url, grpc_port=grpc_port),
                 "tracefold-bench-") as (proc, url, data):
        if grpc_port:
            wait_listening(grpc_port)
        work = os.path.dirname(data)
        gen = os.path.join(bin_dir, "tracefold-loadgen")
        # The paced phase first, so that the peak RSS after it is the RSS at
        # 10k spans/s; with the fold on, ack-to-visible probes run beside it.
        visible = []
        if full:
            from query import ack_to_visible
            result = {}
            paced = threading.Thread(target=lambda: result.update(loadgen(gen, url + "/v1/traces", latency_requests, rate=10000, seed=12, **target)))
            paced.start()
            visible = ack_to_visible(url, 10)
            paced.join()
            lat = result
        else:
            lat = loadgen(gen, url + "/v1/traces", latency_requests, rate=10000, seed=12, **target)
        rss_at_10k = peak_rss_mib(proc.pid)
        perf = start_perf(proc.pid, work) if profile else None
        cpu0 = cpu_seconds(proc.pid)
        pg0 = postgres_cpu() if postgres_cpu else None
        started = time.monotonic()
        thr = loadgen(gen, url + "/v1/traces", throughput_requests, seed=11, **target)
        # A 200 comes once the batch is in the intake log, before the fold
        # (SPEC 1.10): the phase ends when every acknowledged span is stored,
        # and spans/s counts until then, not until the last ack.
        stored_by = wait_stored(data, lat["ackedSpans"] + len(visible) + thr["ackedSpans"], postgres_url) if full else time.monotonic()
        # Then the JSONL export too, so CPU per span includes it: on SQLite
        # until every trace revision is exported (the exporter runs seconds
        # behind an unpaced load, and a fixed wait left part of its work
        # out), on PostgreSQL a fixed wait.
        if full and not postgres_url:
            wait_exported(data, timeout=300)
        else:
            time.sleep(2.5 if full else 0.5)
        cpu1 = cpu_seconds(proc.pid)
        pg1 = postgres_cpu() if postgres_cpu else None
        stages = stop_perf(perf, cpu1 - cpu0, thr["ackedSpans"]) if perf else None
        rss = peak_rss_mib(proc.pid)
        stored = stored_spans(data, postgres_url) if full else None
    acked = thr["ackedSpans"]
    return {
        "config": name,
        "store": ("postgres" if postgres_url else "sqlite") if full else "-",
        "durability": durability,
        "pipeline": "fold+store+jsonl" if full else "intake-only",
        "acceptedSpansPerSec": round(acked / (stored_by - started)) if full else round(thr["ackedSpansPerSecond"]),
        "ackedSpansPerSec": round(thr["ackedSpansPerSecond"]),
        "cpuSecondsPer100kSpans": round((cpu1 - cpu0) / acked * 100_000, 3) if acked else None,
        "spansPerCpuSecond": round(acked / (cpu1 - cpu0)) if cpu1 > cpu0 else None,
        # PostgreSQL's own CPU for the same phase, beside the collector's.
        "postgresCpuSecondsPer100kSpans": round((pg1 - pg0) / acked * 100_000, 3) if pg0 is not None and acked else None,
        "peakRssMiB": round(rss, 1),
        "rssMiBAt10k": round(rss_at_10k, 1),
        "ackP50MsAt10k": round(lat["ackP50Ms"], 2),
        "ackP99MsAt10k": round(lat["ackP99Ms"], 2),
        "throughputAckP99Ms": round(thr["ackP99Ms"], 2),
        "errors": thr["errors"] + lat["errors"],
        "retried503": thr["retries"] + lat["retries"],
        "non200": {k: v for k, v in {**thr["statuses"], **lat["statuses"]}.items() if k not in ("200", "OK")},
        "storedSpans": stored,
        "ackToVisibleMaxMs": round(max(visible), 2) if visible else None,
        "offeredSpans": acked + lat["ackedSpans"] + len(visible),  # each visibility probe is one span
        "stages": stages,
    }


# Stage of a stack: its innermost frame that names one of these, tried in
# this order (so RecordStore.exportPass is export, not store). Matched on
# demangled names.
STAGES = [
    ("export", ("JSONLRecordExporter", "exportPass", "SpansJSONLExporter")),
    ("store", ("SQLFoldTransaction", "RecordStore", "SQLiteStore", "PostgresStore", "GRDBSession", "PostgresSession")),
    ("map", ("SpanMapper",)),
    ("fold", ("TraceFolder", "TraceState", "RecordRenderer")),
    ("decode", ("OTLPProtobufDecoder", "OTLPJSONDecoder", "OTLPDecoder", "ProtobufNestingCheck", "StreamingInflater",
                "protobuf_c_", "inflate")),
    ("intake log", ("IntakeLog",)),
    ("pipeline queue", ("SpanPipeline",)),
    ("http", ("OTLPHTTPReceiver", "Hummingbird", "NIOPosix", "NIOCore", "NIOHTTP1", "FrontDoor", "RequestAuthenticator")),
]


def start_perf(pid, work):
    """perf record at 199 Hz (perf's hardware counters are not available on
    these machines; the software clock is), with DWARF stacks: frame-pointer
    stacks stop at glibc's malloc and free, which left about 40% of the
    samples without a stage."""
    out = os.path.join(work, "perf.data")
    try:
        p = subprocess.Popen(["perf", "record", "-F", "199", "--call-graph", "dwarf,16384", "-p", str(pid), "-o", out],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        print("perf not found: no per-stage profile (scripts/install-deps.sh --bench installs linux-perf)", file=sys.stderr)
        return None
    time.sleep(0.5)
    return (p, out)


def stop_perf(perf, cpu_seconds_used, spans):
    """Per stage: share of samples and CPU microseconds per span. Samples
    whose stack names no stage (an allocator or runtime leaf whose caller
    perf could not unwind) are spread over their thread's stages in
    proportion, and their share is reported as `unwoundShare`."""
    p, out = perf
    p.send_signal(2)
    p.wait(timeout=60)
    script = subprocess.run(f"perf script -i {out} -F tid,ip,sym 2>/dev/null | swift demangle --simplified",
                            shell=True, capture_output=True, text=True).stdout
    per_thread = {}
    for block in script.split("\n\n"):
        lines = [l.strip() for l in block.strip().splitlines()]
        if not lines:
            continue
        tid, frames = lines[0].split()[0], lines[1:]
        stage = None
        for frame in frames:  # leaf first
            stage = next((name for name, keys in STAGES if any(k in frame for k in keys)), None)
            if stage:
                break
        counts = per_thread.setdefault(tid, {})
        counts[stage] = counts.get(stage, 0) + 1
    total = sum(sum(c.values()) for c in per_thread.values())
    if not total:
        return None
    shares, unwound = {}, 0
    for counts in per_thread.values():
        known = {k: v for k, v in counts.items() if k}
        missing = counts.get(None, 0)
        unwound += missing
        if not known:
            shares["unattributed"] = shares.get("unattributed", 0) + missing
            continue
        k_total = sum(known.values())
        for k, v in known.items():
            shares[k] = shares.get(k, 0) + v + missing * v / k_total
    return {
        "samples": total,
        "unwoundShare": round(unwound / total, 3),
        "perStage": {k: {"share": round(v / total, 3), "cpuMicrosPerSpan": round(v / total * cpu_seconds_used / spans * 1e6, 2)}
                     for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
        "perLibrary": libraries(out, cpu_seconds_used, spans),
    }


# Where the samples' own code lies, whatever stage called it: what the C
# libraries and the kernel take is a floor that no change to our Swift code
# lowers, only a change in what is stored, compressed and written.
LIBRARIES = [
    ("sqlite", ("libsqlite3",)),
    ("zstd (stored rows)", ("libzstd",)),
    ("deflate (rotated JSONL, request bodies)", ("libdeflate", "libz.")),
    ("kernel", ("[kernel",)),
    ("allocator", ("libjemalloc", "libc.so")),
    ("swift runtime and stdlib", ("libswiftCore", "libswift_", "libFoundation", "libdispatch")),
    ("tracefold", ("tracefold",)),
]


def libraries(out, cpu_seconds_used, spans):
    """Self samples by shared object, grouped as LIBRARIES (libc is mostly
    memcpy, malloc and free, so it counts with the allocator)."""
    report = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
                            capture_output=True, text=True).stdout
    shares = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].endswith("%") or line.lstrip().startswith("#"):
            continue
        dso = " ".join(parts[1:])
        name = next((n for n, keys in LIBRARIES if any(dso.startswith(k) for k in keys)), "other")
        shares[name] = shares.get(name, 0) + float(parts[0].rstrip("%")) / 100
    return {k: {"share": round(v, 3), "cpuMicrosPerSpan": round(v * cpu_seconds_used / spans * 1e6, 2)}
            for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def print_stages(name, stages):
    if not stages:
        return
    parts = [f"{k} {v['cpuMicrosPerSpan']} us ({v['share'] * 100:.0f}%)" for k, v in stages["perStage"].items()]
    print(f"stages {name}: " + ", ".join(parts) + f"  [{stages['samples']} samples, {stages['unwoundShare'] * 100:.0f}% spread by thread]")
    if stages.get("perLibrary"):
        parts = [f"{k} {v['cpuMicrosPerSpan']} us ({v['share'] * 100:.0f}%)" for k, v in stages["perLibrary"].items()]
        print(f"libraries {name}: " + ", ".join(parts))


def run_scaling(bin_dir, open_traces):
    """Issue 7's scaling curve on fsync+fold+SQLite+JSONL: throughput and RSS
    by client connections and by batch size (about 100k spans each, fewer for
    one-span batches), and RSS by open traces (one span a trace, without
    its root so that the trace stays open, the fold's cache sized to hold
    them all)."""
    rows = []
    gen = os.path.join(bin_dir, "tracefold-loadgen")

    def one(kind, value, requests, yaml, **shape):
        with running(bin_dir, yaml, "tracefold-scale-") as (proc, url, data):
            rss0 = peak_rss_mib(proc.pid)
            cpu0 = cpu_seconds(proc.pid)
            started = time.monotonic()
            r = loadgen(gen, url + "/v1/traces", requests, seed=41, **shape)
            stored_by = wait_stored(data, r["ackedSpans"])
            cpu = cpu_seconds(proc.pid) - cpu0
            rows.append({"config": f"scaling {kind}={value}", "kind": kind, "value": value, "spans": r["ackedSpans"],
                         "acceptedSpansPerSec": round(r["ackedSpans"] / (stored_by - started)),
                         "spansPerCpuSecond": round(r["ackedSpans"] / cpu) if cpu > 0 else None,
                         "ackP99Ms": round(r["ackP99Ms"], 2), "idleRssMiB": round(rss0, 1), "peakRssMiB": round(peak_rss_mib(proc.pid), 1),
                         "errors": r["errors"]})
            print(f"scaling {kind}={value}: {rows[-1]['acceptedSpansPerSec']} spans/s, {rows[-1]['spansPerCpuSecond']} spans/cpu-s, "
                  f"peak RSS {rows[-1]['peakRssMiB']} MiB", file=sys.stderr)

    default = lambda port, data: config_yaml(port, data, "fsync", True)
    for c in (1, 2, 4):
        one("connections", c, 200, default, connections=c)
    for b, n in ((1, 3000), (64, 1600), (512, 200), (4096, 25)):
        one("batch", b, n, default, batch=b)
    for n in open_traces:
        one("openTraces", n, -(-n // 512),
            lambda port, data, n=n: config_yaml(port, data, "fsync", True, max_open_traces=n + n // 10), spans_per_trace=1, rootless=True)
    return rows


def rss_mib(pid):
    """The process's resident set now, not its peak."""
    return status_mib(pid, "VmRSS")


def run_footprint(bin_dir, open_traces=100_000, stored=1_000_000, measured_requests=100, growth_requests=300, repeats=3):
    """Issue 18's footprint figures on fsync+fold+SQLite+JSONL:

    disk      SQLite file plus WAL after a TRUNCATE checkpoint, per stored
              span, beside the load's uncompressed protobuf bytes per span
              (the wire size; the load is sent without gzip for this row)
    state     resident bytes per cached open trace: RSS at rest after
              `open_traces` one-span traces, open (without their roots),
              with the cache sized to hold them all, minus the same run with a cache of one trace; the
              median of `repeats` runs of each (one run's idle RSS alone
              varied from 34 to 83 MiB)
    growth    CPU per span for `growth_requests` batches on an empty
              store and again once `stored` spans are in it; each the
              median of `repeats` measurements (fresh stores for the
              empty one, one after another on the full one). 300 batches
              (about 8 s of load), not 100 (under 3 s, on which the runs
              of one build, 7dd8ff9, gave ratios from 1.03 to 1.28)."""
    import sqlite3
    gen = os.path.join(bin_dir, "tracefold-loadgen")
    rows = []

    # Disk.
    with running(bin_dir, lambda port, data: config_yaml(port, data, "fsync", True), "tracefold-disk-", keep=True) as (proc, url, data):
        r = loadgen(gen, url + "/v1/traces", measured_requests, seed=31, no_gzip=True)
        wait_stored(data, r["ackedSpans"])
        time.sleep(2.5)
    try:
        path = os.path.join(data, "tracefold.sqlite")
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n = db.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
        tables = {}
        try:
            for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                tables[name] = round(size / n, 1)
        except sqlite3.OperationalError:
            pass  # an sqlite3 built without dbstat
        db.close()
        size = os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0)
        rows.append({"config": "footprint disk", "storedSpans": n, "diskBytesPerSpan": round(size / n, 1),
                     "wireBytesPerSpan": round(r["wireBytes"] / r["ackedSpans"], 1), "bytesPerSpanByTable": tables})
    finally:
        shutil.rmtree(os.path.dirname(data), ignore_errors=True)

    # Cached state per open trace.
    at_rest = {}
    traces = 0
    for _ in range(repeats):
        # Alternated, so that a slow spell of the machine touches both.
        for cache in (open_traces + open_traces // 10, 1):
            yaml = lambda port, data, cache=cache: config_yaml(port, data, "fsync", True, max_open_traces=cache)
            with running(bin_dir, yaml, "tracefold-open-") as (proc, url, data):
                time.sleep(1)
                idle = rss_mib(proc.pid)
                # Without their roots: a settled trace is not kept once it
                # is no longer hot, and these must stay open to be counted.
                r = loadgen(gen, url + "/v1/traces", -(-open_traces // 512), seed=41, spans_per_trace=1, rootless=True)
                wait_stored(data, r["ackedSpans"])
                wait_exported(data)
                # Then jemalloc's dirty_decay_ms (5 s) and a margin.
                time.sleep(7)
                at_rest.setdefault(cache, []).append(rss_mib(proc.pid) - idle)
                traces = r["ackedSpans"]
    held, uncached = statistics.median(at_rest[open_traces + open_traces // 10]), statistics.median(at_rest[1])
    rows.append({"config": "footprint open traces", "openTraces": traces, "rssMiBCached": round(held, 1), "rssMiBUncached": round(uncached, 1),
                 "bytesPerOpenTrace": round((held - uncached) * 1048576 / traces),
                 "runsMiBCached": [round(x, 1) for x in at_rest[open_traces + open_traces // 10]],
                 "runsMiBUncached": [round(x, 1) for x in at_rest[1]]})

    # CPU per span on an empty store and on one holding `stored` spans.
    # Each measure ends once its spans are exported, and the full store's
    # begin once the fill's are: the exporter runs seconds behind an
    # unpaced load, and with fixed waits the first measure on the full
    # store paid for exporting the end of the fill.
    def measured(proc, url, data, seed, before):
        cpu0 = cpu_seconds(proc.pid)
        r = loadgen(gen, url + "/v1/traces", growth_requests, seed=seed)
        wait_stored(data, before + r["ackedSpans"])
        wait_exported(data, timeout=300)
        return r["ackedSpans"] / (cpu_seconds(proc.pid) - cpu0), before + r["ackedSpans"]
    yaml = lambda port, data: config_yaml(port, data, "fsync", True)
    empties, fulls = [], []
    # The empty store's figure, first on the store that then fills, then on fresh ones.
    with running(bin_dir, yaml, "tracefold-growth-") as (proc, url, data):
        first, total = measured(proc, url, data, 51, 0)
        empties.append(first)
        r = loadgen(gen, url + "/v1/traces", -(-(stored - total) // 512), seed=52)
        wait_stored(data, total + r["ackedSpans"], timeout=3600)
        total = stored_spans(data)
        wait_exported(data, timeout=600)
        for i in range(repeats):
            full, total = measured(proc, url, data, 53 + i, total)
            fulls.append(full)
    for i in range(repeats - 1):
        with running(bin_dir, yaml, "tracefold-growth-") as (proc, url, data):
            empties.append(measured(proc, url, data, 61 + i, 0)[0])
    empty, full = statistics.median(empties), statistics.median(fulls)
    rows.append({"config": "footprint growth", "storedSpans": total, "spansPerCpuSecondEmpty": round(empty),
                 "spansPerCpuSecondStored": round(full), "costRatio": round(empty / full, 2),
                 "runsEmpty": [round(x) for x in empties], "runsStored": [round(x) for x in fulls]})
    return rows


def print_footprint(rows):
    for r in rows:
        if r["config"] == "footprint disk":
            print(f"disk: {r['diskBytesPerSpan']} B per stored span (SQLite + WAL after a checkpoint, {r['storedSpans']} spans) "
                  f"against {r['wireBytesPerSpan']} B per span on the wire; by table: {r['bytesPerSpanByTable']}")
        elif r["config"] == "footprint open traces":
            print(f"state: {r['bytesPerOpenTrace']} B per cached open trace ({r['openTraces']} one-span traces: "
                  f"median {r['rssMiBCached']} MiB at rest with all cached {r['runsMiBCached']}, "
                  f"{r['rssMiBUncached']} MiB with a cache of one {r['runsMiBUncached']})")
        elif r["config"] == "footprint growth":
            print(f"growth: median {r['spansPerCpuSecondEmpty']} spans/cpu-s on an empty store {r['runsEmpty']}, "
                  f"{r['spansPerCpuSecondStored']} with {r['storedSpans']} stored {r['runsStored']}: cost ratio {r['costRatio']}")


def print_scaling(rows):
    for kind in ("connections", "batch", "openTraces"):
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            print(f"scaling by {kind}: " + "; ".join(
                f"{r['value']}: {r['acceptedSpansPerSec']} spans/s, {r['spansPerCpuSecond']} spans/cpu-s, RSS {r['peakRssMiB']} MiB" for r in sel))


def run_overload(bin_dir, sustainable, limit_mib=256, spike_mib=64, seconds=10):
    """SPEC §1.9 / §10.2 "memory at 10x overload": fold+SQLite+JSONL with a
    memory limiter, offered ten times the sustainable rate over 32
    connections; the load generator retries 503s after Retry-After. Reports
    peak RSS against the configured limit and checks the stored count."""
    def yaml(port, data):
        return config_yaml(port, data, "fsync", True).replace(
            "processors:\n  fold: {}\n",
            f"processors:\n  memory_limiter:\n    check_interval: 100ms\n    limit_mib: {limit_mib}\n    spike_limit_mib: {spike_mib}\n  fold: {{}}\n",
        ).replace("      processors: [fold]\n", "      processors: [memory_limiter, fold]\n")
    with running(bin_dir, yaml, "tracefold-overload-") as (proc, url, data):
        gen = os.path.join(bin_dir, "tracefold-loadgen")
        offered = 10 * sustainable
        requests = max(100, int(offered * seconds / 512))
        out = subprocess.run([gen, "--url", url + "/v1/traces", "--requests", str(requests), "--rate", str(offered),
                              "--connections", "32", "--batch", "512", "--seed", "51"], check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        wait_stored(data, result["ackedSpans"])
        rss = peak_rss_mib(proc.pid)
        with urllib.request.urlopen(url + "/metrics") as r:
            refusals = {line.split(" ")[0].split('reason="')[1].rstrip('"}'): int(float(line.split(" ")[1]))
                        for line in r.read().decode().splitlines() if line.startswith("tracefold_receiver_refused_requests_total{")}
        stored = stored_spans(data)
    return {
        "config": "overload 10x, fsync+fold+sqlite+jsonl",
        "offeredSpansPerSec": round(offered),
        "ackedSpansPerSec": round(result["ackedSpansPerSecond"]),
        "statuses": result["statuses"],
        "refusedByReason": refusals,
        "errors": result["errors"],
        "peakRssMiB": round(rss, 1),
        "limitMiB": limit_mib,
        "softLimitMiB": limit_mib - spike_mib,
        "ackedSpans": result["ackedSpans"],
        "storedSpans": stored,
    }


def print_overload(o):
    print(f"overload: offered {o['offeredSpansPerSec']} spans/s (10x), acked {o['ackedSpansPerSec']} spans/s; "
          f"statuses {o['statuses']}; refusals {o['refusedByReason']}; errors {o['errors']}")
    print(f"overload: peak RSS {o['peakRssMiB']} MiB against limit_mib {o['limitMiB']} (soft {o['softLimitMiB']}): "
          f"{o['peakRssMiB'] / o['limitMiB']:.2f} of the limit; stored {o['storedSpans']} of {o['ackedSpans']} acknowledged spans")


def decode_limit(bin_dir, requests=200):
    """Issue 7's physical limit: each decode stage alone on one core over the
    §10.1 bodies (tracefold-loadgen --decode-bench, no HTTP)."""
    out = subprocess.run([os.path.join(bin_dir, "tracefold-loadgen"), "--decode-bench", "--requests", str(requests), "--batch", "512"],
                         check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["config"] = "decode stages, one core"
    return result


def in_process(bin_dir, requests=48, rounds=5):
    """The fold, the SQLite store and the JSONL export in one process, no
    HTTP and no intake log (tracefold-loadgen --pipeline-bench): the least
    CPU a span of several rounds, each from an empty store. It moves by
    about 3% between runs of one build where the rows above move by up to
    10%, so it shows a change of a few percent first."""
    args = [os.path.join(bin_dir, "tracefold-loadgen"), "--pipeline-bench", "--requests", str(requests), "--rounds", str(rounds), "--seed", "7"]
    out = subprocess.run(args + (["--random-ids"] if RANDOM_IDS else []), check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["config"] = "in process: decode, fold, sqlite, jsonl"
    return result


def print_in_process(r):
    print(f"in process (decode, fold, SQLite, JSONL; no HTTP, no intake log): {r['usPerSpanBest']} us a span, "
          f"{r['spansPerCpuSecondBest']:,.0f} spans/CPU-s (least of {r['rounds']} rounds of {r['requests'] * r['spansPerRequest']:,} spans)"
          + (f"; store file {r['storedBytesPerSpanLastRound']} B a span against {r['wireBytesPerSpan']} B of protobuf"
             if "storedBytesPerSpanLastRound" in r else ""))


def print_decode_limit(d, pipeline_spans_per_cpu_second):
    # decodeToSwift is the collector's decoder; the protobufC rows are the
    # reference decoder it replaced (a run of an older build has no
    # protobufCDecodeToSwift row).
    for stage in ("gunzip", "decodeToSwift", "nestingCheck", "protobufCUnpack", "protobufCDecodeToSwift"):
        s = d["stages"].get(stage)
        if s:
            print(f"decode limit: {stage:22} {s['spansPerSecond']:>10,.0f} spans/s  {s['megabytesPerSecond']:>7} MB/s")
    fold = d.get("fold")
    if fold:
        # Issue 22: inference must cost the fold less than 3%.
        print(f"fold (map, fold, render; no store): {fold['spansPerCpuSecond']:>10,.0f} spans/CPU-s without cost inference, "
              f"{fold['spansPerCpuSecondPriced']:,.0f} with: cost ratio {fold['pricedCostRatio']:.3f} "
              f"(median of 41 paired rounds; quartiles {fold['pricedCostRatioQuartiles'][0]:.3f}-{fold['pricedCostRatioQuartiles'][1]:.3f})")
    floor = d["stages"]["decodeToSwift"]["spansPerSecond"]
    if pipeline_spans_per_cpu_second:
        print(f"decode limit: the whole fsync pipeline reaches {pipeline_spans_per_cpu_second / floor:.3f} of the decode alone "
              f"({d['uncompressedBytesPerSpan']} bytes a span)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    p.add_argument("--requests", type=int, default=400, help="throughput-phase requests of 512 spans")
    p.add_argument("--latency-requests", type=int, default=100, help="latency-phase requests at 10k spans/s")
    p.add_argument("--overload-only", action="store_true", help="only the 10x overload phase (sustainable rate measured first)")
    p.add_argument("--decode-only", action="store_true", help="only the decode stages on one core (the physical limit)")
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling curve")
    p.add_argument("--open-traces", default="10000,100000,1000000", help="open-trace counts for the RSS curve")
    p.add_argument("--no-footprint", action="store_true", help="skip the disk, state-per-trace and growth rows")
    p.add_argument("--footprint-only", action="store_true", help="only the disk, state-per-trace and growth rows")
    p.add_argument("--stored-spans", type=int, default=1_000_000, help="spans stored before the growth row's second measure")
    p.add_argument("--query-traces", type=int, default=100_000, help="traces loaded for the metadata-filter query p99 (0 skips it)")
    p.add_argument("--peers", action="store_true", help="also run MLflow and Phoenix side by side (bench/peers.py)")
    p.add_argument("--peer-requests", type=int, default=20)
    p.add_argument("--counting-ids", action="store_true",
                   help="trace and span ids that count up, as results before 2026-12-05 had, instead of random ones as tracers make them")
    p.add_argument("--fixed-times", action="store_true",
                   help="span times from a fixed base, the same in every run, as results before 2026-12-06 had, instead of the wall clock")
    args = p.parse_args()
    global RANDOM_IDS, WALL_CLOCK_TIMES
    RANDOM_IDS = not args.counting_ids
    WALL_CLOCK_TIMES = not args.fixed_times
    if args.decode_only:
        decode = decode_limit(args.bin_dir)
        print_decode_limit(decode, None)
        write_results("bench-decode", [decode])
        return
    if args.footprint_only:
        footprint = run_footprint(args.bin_dir, stored=args.stored_spans)
        print_footprint(footprint)
        write_results("bench-footprint", footprint)
        return
    if args.overload_only:
        base = run_config(args.bin_dir, "fsync+fold+sqlite+jsonl", "fsync", True, args.requests, 20)
        overload = run_overload(args.bin_dir, base["acceptedSpansPerSec"])
        print_overload(overload)
        write_results("bench-overload", [base, overload])
        return

    rows, extra = [], []
    pg = None if args.no_postgres else PostgresCluster()
    try:
        for store in ("sqlite",) + (() if pg is None else ("postgres",)):
            for durability in ("fsync", "none"):
                name = f"{durability}+fold+{store}+jsonl"
                print(f"running {name} ...", file=sys.stderr)
                rows.append(run_config(args.bin_dir, name, durability, True, args.requests, args.latency_requests,
                                       postgres_url=pg.fresh_database() if store == "postgres" else None,
                                       postgres_cpu=pg.cpu_seconds if store == "postgres" else None))
        # The profiles run on their own, so perf does not slow the table's rows.
        profiles = []
        for store in ("sqlite",) + (() if pg is None else ("postgres",)):
            print(f"profiling fsync+fold+{store}+jsonl ...", file=sys.stderr)
            prof = run_config(args.bin_dir, f"profile fsync+fold+{store}+jsonl", "fsync", True, 200, 20,
                              postgres_url=pg.fresh_database() if store == "postgres" else None, profile=True)
            profiles.append(prof)
    finally:
        if pg:
            pg.stop()
    # The same load over OTLP/gRPC, next to the HTTP row above it.
    print("running fsync+fold+sqlite+jsonl over gRPC ...", file=sys.stderr)
    rows.append(run_config(args.bin_dir, "fsync+fold+sqlite+jsonl grpc", "fsync", True, args.requests, args.latency_requests, grpc=True))
    for durability in ("fsync", "none"):
        name = f"{durability}+intake-only"
        print(f"running {name} ...", file=sys.stderr)
        rows.append(run_config(args.bin_dir, name, durability, False, args.requests, args.latency_requests))

    cols = [("config", 26), ("acceptedSpansPerSec", 9), ("spansPerCpuSecond", 11), ("cpuSecondsPer100kSpans", 10),
            ("postgresCpuSecondsPer100kSpans", 10),
            ("peakRssMiB", 8), ("rssMiBAt10k", 9), ("ackP50MsAt10k", 8), ("ackP99MsAt10k", 8), ("ackToVisibleMaxMs", 10),
            ("storedSpans", 8), ("errors", 6)]
    heads = ["config", "spans/s", "spans/cpu-s", "cpu-s/100k", "pg cpu-s/100k", "peak MiB", "MiB@10k/s", "p50 ms", "p99 ms", "visible ms", "stored", "errors"]
    print("  ".join(h.ljust(w) for h, (_, w) in zip(heads, cols)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in cols))
    by = {r["config"]: r for r in rows}
    for exp in ("fold+sqlite+jsonl", "fold+postgres+jsonl", "intake-only"):
        f, n = by.get(f"fsync+{exp}"), by.get(f"none+{exp}")
        if f and n and f["spansPerCpuSecond"] and n["spansPerCpuSecond"]:
            print(f"fsync/none throughput ratio ({exp}): {f['acceptedSpansPerSec'] / n['acceptedSpansPerSec']:.2f}; "
                  f"CPU-per-span ratio: {f['cpuSecondsPer100kSpans'] / n['cpuSecondsPer100kSpans']:.2f}")
    h, g = by.get("fsync+fold+sqlite+jsonl"), by.get("fsync+fold+sqlite+jsonl grpc")
    if h and g and h["spansPerCpuSecond"] and g["spansPerCpuSecond"]:
        print(f"gRPC/HTTP (fsync+fold+sqlite+jsonl): spans per CPU-second {g['spansPerCpuSecond'] / h['spansPerCpuSecond']:.2f}, "
              f"ack p99 at 10k/s {g['ackP99MsAt10k']} ms vs {h['ackP99MsAt10k']} ms")
    for r in rows:
        if r["storedSpans"] is not None and r["storedSpans"] != r["offeredSpans"]:
            print(f"WARNING {r['config']}: stored {r['storedSpans']} of {r['offeredSpans']} acknowledged spans")
    for prof in profiles:
        print_stages(prof["config"].removeprefix("profile "), prof["stages"])

    overload = run_overload(args.bin_dir, by["fsync+fold+sqlite+jsonl"]["acceptedSpansPerSec"])
    print_overload(overload)
    decode = decode_limit(args.bin_dir)
    print_decode_limit(decode, by["fsync+fold+sqlite+jsonl"]["spansPerCpuSecond"])
    inproc = in_process(args.bin_dir)
    print_in_process(inproc)
    extra += [overload, decode, inproc] + profiles

    query = None
    if args.query_traces:
        import query as query_bench
        print(f"running the query bench over {args.query_traces} traces (SQLite) ...", file=sys.stderr)
        query = query_bench.run_backend(args.bin_dir, "sqlite", None, args.query_traces, 200)
        query["config"] = "query sqlite"
        extra.append(query)
    if not args.no_scaling:
        scaling = run_scaling(args.bin_dir, [int(n) for n in args.open_traces.split(",") if n])
        print_scaling(scaling)
        extra += scaling
    footprint = [] if args.no_footprint else run_footprint(args.bin_dir, stored=args.stored_spans)
    extra += footprint
    if args.peers:
        import peers
        peer_rows = peers.run_peers(args.bin_dir, args.peer_requests, 900)
        peers.print_peers(peer_rows)
        extra += peer_rows
    print_footprint(footprint)
    print_targets(by["fsync+fold+sqlite+jsonl"], overload, query, footprint, by.get("fsync+fold+postgres+jsonl"))
    write_results("bench", rows + extra)


def print_targets(row, overload, query, footprint=(), postgres=None):
    """SPEC §10.3, for fsync+fold+SQLite+JSONL."""
    checks = [
        ("throughput >= 100000 spans per CPU-second", row["spansPerCpuSecond"], lambda v: v >= 100_000),
        ("RSS <= 150 MiB at 10k spans/s", row["rssMiBAt10k"], lambda v: v <= 150),
        ("memory bounded at 10x overload (peak RSS <= limit_mib)", overload["peakRssMiB"], lambda v: v <= overload["limitMiB"]),
        ("ack p99 <= 20 ms at 10k spans/s", row["ackP99MsAt10k"], lambda v: v <= 20),
        ("visibility <= 1000 ms", row["ackToVisibleMaxMs"], lambda v: v is not None and v <= 1000),
    ]
    if query:
        checks.append(("metadata-filtered list p99 <= 50 ms over 100k traces", query["listP99Ms"], lambda v: v <= 50))
    if postgres:
        checks.append((f"PostgreSQL store >= 20000 spans per collector CPU-second (PostgreSQL's own: "
                       f"{postgres['postgresCpuSecondsPer100kSpans']} CPU-s per 100k spans)", postgres["spansPerCpuSecond"], lambda v: v >= 20_000))
    for r in footprint:
        if r["config"] == "footprint disk":
            checks.append((f"disk bytes per span <= wire bytes per span ({r['wireBytesPerSpan']})", r["diskBytesPerSpan"],
                           lambda v, w=r["wireBytesPerSpan"]: v <= w))
        elif r["config"] == "footprint open traces":
            checks.append(("cached state <= 1024 B per open trace", r["bytesPerOpenTrace"], lambda v: v <= 1024))
        elif r["config"] == "footprint growth":
            checks.append((f"CPU per span with {r['storedSpans']} stored within 1.2x of an empty store", r["costRatio"], lambda v: v <= 1.2))
    for text, value, ok in checks:
        print(f"target {'HOLDS' if ok(value) else 'MISSED'}: {text}: measured {value}")


def write_results(prefix, rows):
    """bench/results/<prefix>-<UTC stamp>.json, for comparing runs."""
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = os.path.join(ROOT, "bench", "results", f"{prefix}-{stamp}.json")
    with open(out, "w") as f:
        json.dump({"when": stamp, "rows": rows}, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
