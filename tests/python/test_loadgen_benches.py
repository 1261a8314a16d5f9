"""tracefold-loadgen's in-process benches, which `make bench` and
bench/pipeline_pairs.py read: they run, and report what they measured."""
import json
import subprocess

from test_durability import LOADGEN


def test_pipeline_bench_folds_stores_and_exports_in_process():
    """`--pipeline-bench` (the in-process row of make bench) runs the fold
    into a real SQLite store and the JSONL export on the bench load, and
    reports each round and the least of them."""
    r = subprocess.run([LOADGEN, "--pipeline-bench", "--requests", "2", "--rounds", "2", "--random-ids", "--seed", "7"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["requests"] == 2 and out["spansPerRequest"] == 512 and out["rounds"] == 2
    assert len(out["usPerSpanEachRound"]) == 2
    assert out["usPerSpanBest"] == min(out["usPerSpanEachRound"]) and out["usPerSpanBest"] > 0
    # 1,024 spans of JSON lines, each observation line well over 500 bytes.
    assert out["exportBytesLastRound"] > 1024 * 500
