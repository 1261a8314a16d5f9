#!/usr/bin/env python3
"""One huge request must not stall everyone (issue: suite reliability).

A release tracefold (fsync + fold + SQLite + JSONL) gets small batches from
one client, 8 spans each over keep-alive HTTP, first alone and then while a
second client sends requests within max_request_body_size that are slow to
fold: one span of 10^6 attributes, one of 10^6 events and one with a 10 MB
value. Prints the small client's ack p50/p99/max in both phases, the huge
requests' own ack times, and the time until the huge span is visible.

    python3 bench/huge_span.py [--bin-dir .build/release]
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "python"))
from protobuf_bytes import attribute, ld, request  # noqa: E402
from run import ROOT, config_yaml, start_tracefold  # noqa: E402


def fixed64(field, value):
    return bytes([(field << 3) | 1]) + value.to_bytes(8, "little")


def span(trace_id, span_id, extra=b""):
    start = 1_700_000_000_000_000_000
    return (ld(1, trace_id) + ld(2, span_id.to_bytes(8, "big")) + ld(5, b"s") + fixed64(7, start) + fixed64(8, start + 1000) + extra)


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else None


class SmallClient(threading.Thread):
    """8-span batches, one trace each, back to back on one connection."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.acks, self.n, self.errors = port, threading.Event(), [], 0, 0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        while not self.stop.is_set():
            self.n += 1
            trace = self.n.to_bytes(16, "big")
            body = request(*[span(trace, self.n * 16 + i, attribute(b"k", b"v")) for i in range(8)])
            t0 = time.monotonic()
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            r = conn.getresponse()
            r.read()
            elapsed = time.monotonic() - t0
            if r.status == 200:
                self.acks.append((t0, elapsed))
            else:
                self.errors += 1
            time.sleep(0.01)


def post(url, body):
    req = urllib.request.Request(url + "/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"})
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=600) as r:
        r.read()
        return r.status, time.monotonic() - t0


def summary(values_s):
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50Ms": round(percentile(ms, 50), 1), "p99Ms": round(percentile(ms, 99), 1), "maxMs": round(max(ms), 1)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin-dir", default=os.path.join(ROOT, ".build", "release"))
    p.add_argument("--baseline-seconds", type=float, default=5)
    args = p.parse_args()
    proc, url, data, work = start_tracefold(args.bin_dir, lambda port, data: config_yaml(port, data, "fsync", True), "tracefold-huge-")
    port = int(url.rsplit(":", 1)[1])
    try:
        small = SmallClient(port)
        small.start()
        time.sleep(args.baseline_seconds)
        baseline_end = time.monotonic()
        huge = [
            ("10^6 attributes", span(bytes(16 * [0x11]), 1, b"".join(attribute(b"k%d" % i, b"") for i in range(1_000_000)))),
            ("10^6 events", span(bytes(16 * [0x12]), 2, b"".join(ld(11, ld(2, b"e")) for _ in range(1_000_000)))),
            ("one 10 MB value", span(bytes(16 * [0x13]), 3, attribute(b"big", b"x" * 10_000_000))),
        ]
        huge_results = []
        huge_start = time.monotonic()
        for name, s in huge:
            body = request(s)
            status, took = post(url, body)
            huge_results.append({"request": name, "bytes": len(body), "status": status, "ackMs": round(took * 1000, 1)})
        # Until the first huge span is readable: the fold's own cost.
        while True:
            try:
                with urllib.request.urlopen(url + "/api/public/observations/0000000000000001", timeout=600) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError:
                time.sleep(0.05)
        visible = time.monotonic() - huge_start
        time.sleep(1)
        huge_end = time.monotonic()
        small.stop.set()
        small.join()
        before = [d for t, d in small.acks if t < baseline_end]
        during = [d for t, d in small.acks if huge_start <= t < huge_end]
        result = {
            "config": "huge-span fsync+fold+sqlite+jsonl",
            "binDir": os.path.abspath(args.bin_dir),
            "smallAlone": summary(before),
            "smallWhileHuge": summary(during),
            "smallErrors": small.errors,
            "huge": huge_results,
            "hugeVisibleAfterMs": round(visible * 1000, 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    a, d = result["smallAlone"], result["smallWhileHuge"]
    print("small batches of 8 spans, ack latency:")
    print(f"  alone:                 n={a['n']:5d}  p50 {a['p50Ms']:8.1f} ms  p99 {a['p99Ms']:8.1f} ms  max {a['maxMs']:8.1f} ms")
    print(f"  while huge requests:   n={d['n']:5d}  p50 {d['p50Ms']:8.1f} ms  p99 {d['p99Ms']:8.1f} ms  max {d['maxMs']:8.1f} ms")
    print(f"  p99 ratio while/alone: {d['p99Ms'] / max(a['p99Ms'], 0.001):.1f}; errors {result['smallErrors']}")
    for h in result["huge"]:
        print(f"  huge request, {h['request']:16s} {h['bytes'] / 1e6:6.1f} MB: {h['status']} after {h['ackMs']:8.1f} ms")
    print(f"  the 10^6-attribute span is readable {result['hugeVisibleAfterMs']:.0f} ms after the huge requests began")
    print(f"  target: small-batch ack p99 while huge < 1000 ms: {'HOLDS' if d['p99Ms'] < 1000 else 'MISSED'}")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", time.strftime("huge-span-%Y%m%dT%H%M%S.json", time.gmtime()))
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"  results: {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
