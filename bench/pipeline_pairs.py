#!/usr/bin/env python3
"""Two builds' `tracefold-loadgen --pipeline-bench`, run in turns.

    python3 bench/pipeline_pairs.py DIR_A DIR_B [--pairs 8] [--requests 48] [--rounds 3]

A diagnostic for telling whether a change to the fold, the store or the
export saves CPU, not a bench row. Each DIR holds a release
`tracefold-loadgen`; its `--pipeline-bench` decodes, folds into a real
SQLite store and exports the JSON lines in one process (no HTTP, no intake
log) and reports the least CPU time a span of `--rounds` rounds. The two
builds run in turns, A B B A A B …, so that neither always goes first, and
the ratio B/A of each pair is printed; the summary is their median.

On these shared machines two whole-pipeline runs of `make bench` with the
same build differ by up to 10%; the least of a few in-process rounds
differs by about 3%, so a change of a few percent shows here first. The
figure that counts stays `make bench`'s.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--requests", type=int, default=48, help="batches of 512 spans a round")
    p.add_argument("--rounds", type=int, default=3, help="rounds a run; a run reports its least")
    args = p.parse_args()
    rows = []
    for i in range(args.pairs):
        us = {}
        for side in (("a", "b") if i % 2 == 0 else ("b", "a")):
            us[side] = run.in_process(getattr(args, side), args.requests, args.rounds)["usPerSpanBest"]
        rows.append(us)
        print(f"pair {i}: A {us['a']:.2f} us a span, B {us['b']:.2f}, B/A {us['b'] / us['a']:.3f}", flush=True)
    ratios = sorted(r["b"] / r["a"] for r in rows)
    print(json.dumps({
        "a": args.a, "b": args.b, "pairs": args.pairs, "spansPerRound": args.requests * 512,
        "usPerSpanMedian": {"a": statistics.median(r["a"] for r in rows), "b": statistics.median(r["b"] for r in rows)},
        "ratioBOverAMedian": round(statistics.median(ratios), 3),
        "ratioRange": [round(ratios[0], 3), round(ratios[-1], 3)],
    }))


if __name__ == "__main__":
    main()
