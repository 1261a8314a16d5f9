#!/usr/bin/env python3
"""Swift runtime calls a span of builds' in-process rounds, counted.

    python3 bench/runtime_calls.py DIR [DIR ...] [--requests 16]

A diagnostic, not a bench row. Each DIR holds a release
`tracefold-loadgen`; its `--pipeline-bench` (decode, fold, SQLite, JSONL in
one process) runs once with one round and once with two, under `perf stat`
on uprobes of libswiftCore: `swift_retain`, `swift_release`,
`swift_allocObject` and `Hasher._seed` (one a hash of a dictionary key or
set member). The difference of the two runs is one round's calls: the
process's start and the bench's set-up (making and encoding its request
bodies) cancel out. Printed a span, for each build, with each later
build's ratio to the first.

Why: CPU time of one build moves by 20% or more from run to run on these
shared machines (bench/pipeline_pairs.py saw pairs of 0.78-1.32 on
2026-12-07), so a change that removes a few percent of a span's work cannot
be told from noise. These counts are the same run after run; retain and
release alone are about a tenth of the collector's CPU profile.

Needs root and perf (`perf probe`). docs/architecture.md ("Which runtime
calls") says what the counts were and where they come from.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from allocations import LIBSWIFTCORE  # noqa: E402
# perf probe name -> symbol in libswiftCore.
PROBES = {
    "swift_retain": "swift_retain",
    "swift_release": "swift_release",
    "swift_allocObject": "swift_allocObject",
    "hasher_seed": "$ss6HasherV5_seedABSi_tcfC",
}


def add_probes():
    listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
    for name, symbol in PROBES.items():
        if f"probe_libswiftCore:{name} " not in listed:
            subprocess.run(["perf", "probe", "-q", "-x", LIBSWIFTCORE, "-a", f"{name}={symbol}"], check=True)


def counts(bin_dir, requests, rounds):
    events = ",".join(f"probe_libswiftCore:{n}" for n in PROBES)
    args = [os.path.join(bin_dir, "tracefold-loadgen"), "--pipeline-bench", "--requests", str(requests), "--rounds", str(rounds),
            "--seed", "7", "--random-ids"]
    r = subprocess.run(["perf", "stat", "-x", ",", "-e", events, "--", *args], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("probe_libswiftCore:"):
            out[fields[2].split(":", 1)[1]] = int(fields[0])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dirs", nargs="+")
    p.add_argument("--requests", type=int, default=16, help="batches of 512 spans a round")
    args = p.parse_args()
    add_probes()
    spans = args.requests * 512
    rows = []
    for d in args.dirs:
        one, two = counts(d, args.requests, 1), counts(d, args.requests, 2)
        per_span = {n: round((two[n] - one[n]) / spans, 2) for n in PROBES}
        rows.append(per_span)
        print(f"{d}: " + ", ".join(f"{n} {v}" for n, v in per_span.items()), flush=True)
    first = rows[0]
    print(json.dumps({
        "spansPerRound": spans,
        "perSpan": dict(zip(args.dirs, rows)),
        "ratioToFirst": {d: {n: round(r[n] / first[n], 3) if first[n] else None for n in PROBES} for d, r in zip(args.dirs[1:], rows[1:])},
    }))


if __name__ == "__main__":
    sys.exit(main())
