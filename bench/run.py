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
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def config_yaml(port, data, durability, full):
    """full: the fold into SQLite and the JSONL record export (the defaults);
    otherwise intake only (decode, intake log, no sinks)."""
    fold = (f"processors:\n  fold: {{}}\n"
            f"exporters:\n  jsonl:\n    directory: {data}/export\n    flush_after: 1s\n") if full else ""
    return (
        f"receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{port}\n"
        f"{fold}"
        f"store:\n  directory: {data}\n  durability: {durability}\n"
        f"service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        f"      processors: [{'fold' if full else ''}]\n"
        f"      exporters: [{'jsonl' if full else ''}]\n"
        f"  telemetry:\n    logs:\n      level: warning\n"
    )


def stored_spans(data):
    """Spans in the SQLite store, read back through sqlite3."""
    import sqlite3
    db = sqlite3.connect(os.path.join(data, "tracefold.sqlite"), timeout=30)
    try:
        return db.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    finally:
        db.close()


def loadgen_args(binary, url, requests, rate=0.0, seed=1, connections=4, batch=512, spans_per_trace=8):
    """The SPEC §10.1 load by default: 512-span gzip batches over 4 connections."""
    return [binary, "--url", url, "--requests", str(requests), "--rate", str(rate), "--connections", str(connections),
            "--batch", str(batch), "--spans-per-trace", str(spans_per_trace), "--seed", str(seed)]


def loadgen(binary, url, requests, rate=0.0, seed=1, **shape):
    out = subprocess.run(loadgen_args(binary, url, requests, rate, seed, **shape), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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


def run_config(bin_dir, name, durability, full, throughput_requests, latency_requests):
    proc, url, data, work = start_tracefold(
        bin_dir, lambda port, data: config_yaml(port, data, durability, full), "tracefold-bench-")
    try:
        gen = os.path.join(bin_dir, "tracefold-loadgen")
        cpu0 = cpu_seconds(proc.pid)
        thr = loadgen(gen, url + "/v1/traces", throughput_requests, seed=11)
        # A 200 waits for the fold, so the records are already stored; wait
        # for the JSONL export too, so CPU per span includes it.
        time.sleep(2.5 if full else 0.5)
        cpu1 = cpu_seconds(proc.pid)
        # The paced phase; with the fold on, ack-to-visible probes run beside it.
        visible = []
        if full:
            from query import ack_to_visible
            result = {}
            paced = threading.Thread(target=lambda: result.update(loadgen(gen, url + "/v1/traces", latency_requests, rate=10000, seed=12)))
            paced.start()
            visible = ack_to_visible(url, 10)
            paced.join()
            lat = result
        else:
            lat = loadgen(gen, url + "/v1/traces", latency_requests, rate=10000, seed=12)
        rss = peak_rss_mib(proc.pid)
        stored = stored_spans(data) if full else None
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    acked = thr["ackedSpans"]
    return {
        "config": name,
        "durability": durability,
        "pipeline": "fold+sqlite+jsonl" if full else "intake-only",
        "acceptedSpansPerSec": round(thr["ackedSpansPerSecond"]),
        "cpuSecondsPer100kSpans": round((cpu1 - cpu0) / acked * 100_000, 3) if acked else None,
        "spansPerCpuSecond": round(acked / (cpu1 - cpu0)) if cpu1 > cpu0 else None,
        "peakRssMiB": round(rss, 1),
        "ackP50MsAt10k": round(lat["ackP50Ms"], 2),
        "ackP99MsAt10k": round(lat["ackP99Ms"], 2),
        "throughputAckP99Ms": round(thr["ackP99Ms"], 2),
        "errors": thr["errors"] + lat["errors"],
        "retried503": thr["retries"] + lat["retries"],
        "non200": {k: v for k, v in {**thr["statuses"], **lat["statuses"]}.items() if k != "200"},
        "storedSpans": stored,
        "ackToVisibleMaxMs": round(max(visible), 2) if visible else None,
        "offeredSpans": acked + lat["ackedSpans"],
    }


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
    proc, url, data, work = start_tracefold(bin_dir, yaml, "tracefold-overload-")
    try:
        gen = os.path.join(bin_dir, "tracefold-loadgen")
        offered = 10 * sustainable
        requests = max(100, int(offered * seconds / 512))
        out = subprocess.run([gen, "--url", url + "/v1/traces", "--requests", str(requests), "--rate", str(offered),
                              "--connections", "32", "--batch", "512", "--seed", "51"], check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rss = peak_rss_mib(proc.pid)
        with urllib.request.urlopen(url + "/metrics") as r:
            refusals = {line.split(" ")[0].split('reason="')[1].rstrip('"}'): int(float(line.split(" ")[1]))
                        for line in r.read().decode().splitlines() if line.startswith("tracefold_receiver_refused_requests_total{")}
        stored = stored_spans(data)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
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


def print_decode_limit(d, pipeline_spans_per_cpu_second):
    for stage in ("gunzip", "nestingCheck", "protobufCUnpack", "decodeToSwift"):
        s = d["stages"][stage]
        print(f"decode limit: {stage:16} {s['spansPerSecond']:>10,.0f} spans/s  {s['megabytesPerSecond']:>7} MB/s")
    floor = d["stages"]["protobufCUnpack"]["spansPerSecond"]
    if pipeline_spans_per_cpu_second:
        print(f"decode limit: the whole fsync pipeline reaches {pipeline_spans_per_cpu_second / floor:.3f} of protobuf-c unpack alone "
              f"({d['uncompressedBytesPerSpan']} bytes a span)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    p.add_argument("--requests", type=int, default=400, help="throughput-phase requests of 512 spans")
    p.add_argument("--latency-requests", type=int, default=100, help="latency-phase requests at 10k spans/s")
    p.add_argument("--overload-only", action="store_true", help="only the 10x overload phase (sustainable rate measured first)")
    p.add_argument("--decode-only", action="store_true", help="only the decode stages on one core (the physical limit)")
    args = p.parse_args()
    if args.decode_only:
        decode = decode_limit(args.bin_dir)
        print_decode_limit(decode, None)
        write_results("bench-decode", [decode])
        return
    if args.overload_only:
        base = run_config(args.bin_dir, "fsync+fold+sqlite+jsonl", "fsync", True, args.requests, 20)
        overload = run_overload(args.bin_dir, base["acceptedSpansPerSec"])
        print_overload(overload)
        write_results("bench-overload", [base, overload])
        return
    rows = []
    for full in (True, False):
        for durability in ("fsync", "none"):
            name = f"{durability}+{'fold+sqlite+jsonl' if full else 'intake-only'}"
            print(f"running {name} ...", file=sys.stderr)
            rows.append(run_config(args.bin_dir, name, durability, full, args.requests, args.latency_requests))
    cols = [("config", 30), ("acceptedSpansPerSec", 12), ("spansPerCpuSecond", 12), ("cpuSecondsPer100kSpans", 12),
            ("peakRssMiB", 9), ("ackP50MsAt10k", 9), ("ackP99MsAt10k", 9), ("retried503", 8), ("errors", 6)]
    heads = ["config", "spans/s", "spans/cpu-s", "cpu-s/100k", "RSS MiB", "p50 ms", "p99 ms", "503s", "errors"]
    print("  ".join(h.ljust(w) for h, (_, w) in zip(heads, cols)))
    for r in rows:
        print("  ".join(str(r[k]).ljust(w) for k, w in cols))
    by = {r["config"]: r for r in rows}
    for exp in ("fold+sqlite+jsonl", "intake-only"):
        f, n = by[f"fsync+{exp}"], by[f"none+{exp}"]
        if f["spansPerCpuSecond"] and n["spansPerCpuSecond"]:
            print(f"fsync/none throughput ratio ({exp}): {f['acceptedSpansPerSec'] / n['acceptedSpansPerSec']:.2f}; "
                  f"CPU-per-span ratio: {f['cpuSecondsPer100kSpans'] / n['cpuSecondsPer100kSpans']:.2f}")
    for r in rows:
        if r["storedSpans"] is not None and r["storedSpans"] != r["offeredSpans"]:
            print(f"WARNING {r['config']}: stored {r['storedSpans']} of {r['offeredSpans']} acknowledged spans")
    for r in rows:
        if r["ackToVisibleMaxMs"] is not None:
            print(f"ack-to-visible {r['config']}: max {r['ackToVisibleMaxMs']} ms over 10 probes at 10k spans/s (target 1000 ms)")
    overload = run_overload(args.bin_dir, by["fsync+fold+sqlite+jsonl"]["acceptedSpansPerSec"])
    print_overload(overload)
    decode = decode_limit(args.bin_dir)
    print_decode_limit(decode, by["fsync+fold+sqlite+jsonl"]["spansPerCpuSecond"])
    write_results("bench", rows + [overload, decode])


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
