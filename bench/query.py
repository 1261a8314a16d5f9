#!/usr/bin/env python3
"""Query benchmark (SPEC §10.3, issue 4), run by `make bench-query`.

For SQLite and for PostgreSQL (a private cluster this script starts), it
starts a release tracefold, loads --traces traces of 8 spans each with
tracefold-loadgen (the SPEC §10.1 shape: 512-span gzip batches), then times
over HTTP, one request at a time:

  list      GET /api/public/traces with a metadata filter (tenant = acme-3,
            about 1/7 of the traces), limit 50, totalItems included
  get       GET /api/public/traces/{id} for random loaded ids
  visible   ack-to-visible: a one-trace request is sent while a 10k spans/s
            load runs, and GET /api/public/traces/{id} is polled until it
            answers 200; the time from the 200 ack to that answer

It prints p50/p99 per backend and writes JSON to bench/results/.
"""
import argparse
import json
import os
import random
import shutil
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import PostgresCluster, loadgen, start_tracefold, write_results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, -(-len(xs) * p // 100) - 1))]


def config_yaml(port, data, postgres_url):
    pg = f"  postgres:\n    url: {postgres_url}\n" if postgres_url else ""
    return (
        f"receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{port}\n"
        f"processors:\n  fold: {{}}\n"
        f"exporters:\n  jsonl:\n    directory: {data}/export\n    flush_after: 1s\n"
        f"store:\n  directory: {data}\n  durability: none\n{pg}"
        f"service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [fold]\n      exporters: [jsonl]\n"
        f"  telemetry:\n    logs:\n      level: warning\n"
    )


def timed_get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        body = r.read()
        status = r.status
    return (time.perf_counter() - t0) * 1000, status, body


def probe_body(trace_id):
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [{
        "traceId": trace_id, "spanId": "00000000000000aa", "name": "probe", "kind": 1,
        "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000),
        "attributes": [{"key": "langfuse.trace.metadata.tenant", "value": {"stringValue": "\"probe\""}}],
    }]}]}]}).encode()


def ack_to_visible(url, probes):
    """ms from each probe's 200 to the first 200 of its GET."""
    out = []
    for i in range(probes):
        trace_id = f"{0xF00D0000 + i:032x}"
        req = urllib.request.Request(url + "/v1/traces", data=probe_body(trace_id), method="POST",
                                     headers={"Content-Type": "application/json"})
        while True:
            # Back-pressure answers 503 (or 429) with Retry-After, and an OTLP
            # exporter sends again: so does the probe; visibility counts from the 200.
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    assert r.status == 200
                break
            except urllib.error.HTTPError as e:
                if e.code not in (429, 503):
                    raise
                time.sleep(float(e.headers.get("Retry-After") or 1))
        acked = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/public/traces/{trace_id}", timeout=60) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
            time.sleep(0.001)
        out.append((time.perf_counter() - acked) * 1000)
        time.sleep(0.05)
    return out


def run_backend(bin_dir, name, postgres_url, traces, samples):
    proc, url, _, work = start_tracefold(
        bin_dir, lambda port, data: config_yaml(port, data, postgres_url), "tracefold-qbench-")
    gen = os.path.join(bin_dir, "tracefold-loadgen")
    try:
        requests = -(-traces * 8 // 512)
        t0 = time.time()
        load = loadgen(gen, url + "/v1/traces", requests, seed=21)
        load_s = time.time() - t0
        print(f"  {name}: loaded {load['ackedSpans']} spans in {load_s:.0f}s", file=sys.stderr)

        # Ids to fetch: a random sample of pages.
        first = json.loads(timed_get(url + "/api/public/traces?limit=1")[2])
        total = first["meta"]["totalItems"]
        pages = max(1, total // 100)
        ids = []
        rng = random.Random(5)
        for page in rng.sample(range(1, pages + 1), min(pages, 20)):
            body = json.loads(timed_get(f"{url}/api/public/traces?limit=100&page={page}")[2])
            ids += [t["id"] for t in body["data"]]

        flt = urllib.parse.quote(json.dumps([{"type": "stringObject", "column": "metadata", "key": "tenant", "operator": "=", "value": "acme-3"}]))
        list_url = f"{url}/api/public/traces?limit=50&filter={flt}"
        timed_get(list_url)  # warm
        list_ms, matched = [], None
        for i in range(samples):
            ms, status, body = timed_get(list_url if i % 2 == 0 else list_url + f"&page={1 + i % 20}")
            assert status == 200
            list_ms.append(ms)
            if matched is None:
                matched = json.loads(body)["meta"]["totalItems"]
        get_ms = []
        for i in range(samples):
            ms, status, _ = timed_get(f"{url}/api/public/traces/{rng.choice(ids)}")
            assert status == 200
            get_ms.append(ms)

        # Visibility under a paced background load.
        background = threading.Thread(target=loadgen, args=(gen, url + "/v1/traces", 200), kwargs={"rate": 10000, "seed": 22})
        background.start()
        visible = ack_to_visible(url, 20)
        background.join()
    finally:
        proc.terminate()
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "backend": name, "traces": total, "loadSeconds": round(load_s, 1),
        "loadSpansPerSec": round(load["ackedSpans"] / load_s),
        "metadataFilterMatches": matched,
        "listP50Ms": round(percentile(list_ms, 50), 2), "listP99Ms": round(percentile(list_ms, 99), 2),
        "getP50Ms": round(percentile(get_ms, 50), 2), "getP99Ms": round(percentile(get_ms, 99), 2),
        "visibleP50Ms": round(percentile(visible, 50), 2), "visibleMaxMs": round(max(visible), 2),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    p.add_argument("--traces", type=int, default=100_000)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--backends", default="sqlite,postgres")
    args = p.parse_args()
    rows = []
    for backend in args.backends.split(","):
        pg = PostgresCluster() if backend == "postgres" else None
        try:
            print(f"running {backend} ...", file=sys.stderr)
            rows.append(run_backend(args.bin_dir, backend, pg.fresh_database() if pg else None, args.traces, args.samples))
        finally:
            if pg:
                pg.stop()
    cols = ["backend", "traces", "loadSpansPerSec", "metadataFilterMatches", "listP50Ms", "listP99Ms", "getP50Ms", "getP99Ms",
            "visibleP50Ms", "visibleMaxMs"]
    print("  ".join(c.ljust(14) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(14) for c in cols))
    print("target (SPEC §10.3): metadata-filtered list p99 <= 50 ms over 100k traces; visibility <= 1000 ms")
    write_results("query", rows)


if __name__ == "__main__":
    main()
