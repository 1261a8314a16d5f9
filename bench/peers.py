#!/usr/bin/env python3
"""Issue 7's side-by-side run (`make bench-peers`): the same SPEC §10.1 load
to tracefold, MLflow 3.17.2 and Arize Phoenix 20.26.1, each on loopback on a
fresh embedded SQLite store, one after the other in one run.

For each system it records, from the first request until every span is
stored (polled by reading the store back):
  stored spans/s        spans stored / that wall time
  CPU-s per 100k spans  utime+stime of the server's whole process tree
  peak RSS              the largest sum of RSS over the tree, sampled every 100 ms
  time until queryable  from the last acknowledgement to the last span stored
and prints each peer's figure as a ratio to tracefold's.

MLflow's OTLP endpoint needs the header x-mlflow-experiment-id (experiment
0, the default one). Phoenix's gRPC receiver is rebound to 127.0.0.1 by
bench/phoenix_loopback.py; both peers come from PyPI into .venv-peers.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (ROOT, TICKS, config_yaml, free_port, loadgen_args, proc_stat, sqlite_count, start_tracefold,  # noqa: E402
                 write_results)

PEERS_VENV = os.path.join(ROOT, ".venv-peers")
PEER_PACKAGES = ["mlflow==3.17.2", "arize-phoenix==20.26.1"]


def ensure_venv():
    stamp = os.path.join(PEERS_VENV, ".installed-" + "-".join(PEER_PACKAGES).replace("=", ""))
    if os.path.exists(stamp):
        return
    shutil.rmtree(PEERS_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", PEERS_VENV], check=True)
    subprocess.run([os.path.join(PEERS_VENV, "bin", "pip"), "install", "-q", "--disable-pip-version-check", *PEER_PACKAGES], check=True)
    open(stamp, "w").close()


def tree(pid):
    """pid and all its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(proc_stat(entry)[1]), []).append(int(entry))
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu_seconds(pid):
    """CPU of the live tree plus what its reaped children used."""
    total = 0.0
    for i, p in enumerate(tree(pid)):
        try:
            fields = proc_stat(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if i == 0:
            total += int(fields[13]) + int(fields[14])
    return total / TICKS


def tree_rss_mib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total / 1024


class RSSSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss_mib(self.pid))
            time.sleep(0.1)


def wait_http(url, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def start_mlflow(work):
    port = free_port()
    db = os.path.join(work, "mlflow.db")
    # The job runner (online scoring, trace archival: six huey consumers of
    # ~240 MB each) takes no part in trace ingest; it is turned off so that
    # the tree measured is the server and its one uvicorn worker.
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen(
        [os.path.join(PEERS_VENV, "bin", "mlflow"), "server", "--backend-store-uri", f"sqlite:///{db}",
         "--default-artifact-root", os.path.join(work, "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"), start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/health")
    return {"proc": proc, "url": f"http://127.0.0.1:{port}/v1/traces", "headers": ["x-mlflow-experiment-id: 0"],
            "stored": lambda: sqlite_count(db, "SELECT COUNT(*) FROM spans")}


def start_phoenix(work):
    port, grpc = free_port(), free_port()
    env = dict(os.environ, PHOENIX_WORKING_DIR=work, PHOENIX_HOST="127.0.0.1", PHOENIX_PORT=str(port),
               PHOENIX_GRPC_PORT=str(grpc), PHOENIX_TELEMETRY_ENABLED="false")
    proc = subprocess.Popen([os.path.join(PEERS_VENV, "bin", "python"), os.path.join(ROOT, "bench", "phoenix_loopback.py")],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"),
                            start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    db = os.path.join(work, "phoenix.db")
    return {"proc": proc, "url": f"http://127.0.0.1:{port}/v1/traces", "headers": [],
            "stored": lambda: sqlite_count(db, "SELECT COUNT(*) FROM spans")}


def start_tracefold_peer(work, bin_dir):
    proc, url, data, tf_work = start_tracefold(bin_dir, lambda port, data: config_yaml(port, data, "fsync", True), "tracefold-peers-")

    def stored():
        # Through the query API (8 spans a trace) and the store's span rows.
        with urllib.request.urlopen(url + "/api/public/traces?limit=1", timeout=30) as r:
            traces = json.loads(r.read())["meta"]["totalItems"]
        return min(sqlite_count(os.path.join(data, "tracefold.sqlite")), traces * 8)
    return {"proc": proc, "url": url + "/v1/traces", "headers": [], "stored": stored, "cleanup": tf_work}


def measure(name, system, bin_dir, requests, timeout):
    pid = system["proc"].pid
    sampler = RSSSampler(pid)
    sampler.start()
    time.sleep(3)  # settle after start-up
    cpu0 = tree_cpu_seconds(pid)
    t0 = time.time()
    cmd = loadgen_args(os.path.join(bin_dir, "tracefold-loadgen"), system["url"], requests, seed=31)
    for h in system["headers"]:
        cmd += ["--header", h]
    sent = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    acked_at = time.time()
    expected = sent["ackedSpans"]
    stored = system["stored"]()
    while stored < expected and time.time() - acked_at < timeout:
        time.sleep(0.05)
        stored = system["stored"]()
    done = time.time()
    cpu = tree_cpu_seconds(pid) - cpu0
    sampler.stop.set()
    sampler.join()
    return {
        "system": name, "sentSpans": requests * 512, "ackedSpans": expected, "storedSpans": stored,
        "allStored": stored == expected,
        "storedSpansPerSec": round(stored / (done - t0), 1),
        "cpuSecondsPer100kSpans": round(cpu / max(stored, 1) * 100_000, 2),
        "peakRssMiB": round(sampler.peak, 1),
        "secondsUntilQueryable": round(done - acked_at, 3),
        "ackP99Ms": round(sent["ackP99Ms"], 1),
        "statuses": sent["statuses"], "errors": sent["errors"],
    }


def stop(system):
    proc = system["proc"]
    try:
        os.killpg(proc.pid, 15)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def run_peers(bin_dir, requests, timeout, systems=("tracefold", "mlflow", "phoenix")):
    ensure_venv()
    rows = []
    for name in systems:
        work = tempfile.mkdtemp(prefix=f"peer-{name}-")
        print(f"peers: running {name} ...", file=sys.stderr)
        system = {"tracefold": lambda: start_tracefold_peer(work, bin_dir), "mlflow": lambda: start_mlflow(work),
                  "phoenix": lambda: start_phoenix(work)}[name]()
        try:
            rows.append(measure(name, system, bin_dir, requests, timeout))
        finally:
            stop(system)
            shutil.rmtree(system.get("cleanup", work), ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    return rows


def print_peers(rows):
    cols = [("system", 10), ("storedSpans", 8), ("storedSpansPerSec", 10), ("cpuSecondsPer100kSpans", 11), ("peakRssMiB", 9),
            ("secondsUntilQueryable", 10), ("ackP99Ms", 9)]
    heads = ["system", "stored", "stored/s", "cpu-s/100k", "RSS MiB", "queryable s", "ack p99"]
    print("  ".join(h.ljust(w) for h, (_, w) in zip(heads, cols)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in cols) + ("" if r["allStored"] else f"  (only {r['storedSpans']} of {r['ackedSpans']} stored)"))
    base = next(r for r in rows if r["system"] == "tracefold")
    for r in rows:
        if r is base:
            continue
        print(f"tracefold vs {r['system']}: stored spans/s {base['storedSpansPerSec'] / r['storedSpansPerSec']:.1f}x; "
              f"CPU per span {r['cpuSecondsPer100kSpans'] / base['cpuSecondsPer100kSpans']:.1f}x less; "
              f"peak RSS {r['peakRssMiB'] / base['peakRssMiB']:.1f}x less; "
              f"time until queryable: {r['system']} {r['secondsUntilQueryable']:.2f}s, tracefold {base['secondsUntilQueryable']:.3f}s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    p.add_argument("--requests", type=int, default=20, help="requests of 512 spans sent to every system (Phoenix stores ~100 spans/s)")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for a system to store everything")
    p.add_argument("--systems", default="tracefold,mlflow,phoenix")
    args = p.parse_args()
    rows = run_peers(args.bin_dir, args.requests, args.timeout, tuple(args.systems.split(",")))
    print_peers(rows)
    write_results("peers", rows)


if __name__ == "__main__":
    main()
