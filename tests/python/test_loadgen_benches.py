"""tracefold-loadgen's in-process benches, which `make bench` and
bench/pipeline_pairs.py read: they run, and report what they measured; and
the load shapes the bench rows ask of it."""
import json
import subprocess

from test_durability import LOADGEN, read_acked


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
    # The load's protobuf is about 610 bytes a span (SPEC 10.1); the store
    # file after its checkpoint holds every span's bytes and record, so
    # more than a tenth of that, and (its 16 KiB pages, row dictionaries
    # and schema on 1,024 spans) less than ten times it.
    assert 550 < out["wireBytesPerSpan"] < 700
    assert out["wireBytesPerSpan"] // 10 < out["storedBytesPerSpanLastRound"] < 10 * out["wireBytesPerSpan"]
    assert "sqliteStatementsLastRound" not in out


def test_pipeline_bench_sql_profile_counts_each_statement_run():
    """`--pipeline-bench --sql-profile` adds the time SQLite spent in each
    statement of the last round, with how many times it ran: on the bench
    load one observation row a span, one trace row a trace of 8 spans, and
    five trace metadata rows a trace (tenant, plan, region, step, cached;
    resourceAttributes and scope are references, `_user` is the userId)."""
    r = subprocess.run([LOADGEN, "--pipeline-bench", "--requests", "2", "--rounds", "1", "--random-ids", "--seed", "7", "--sql-profile"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    statements = out["sqliteStatementsLastRound"]
    runs = {s["statement"].split("(")[0]: s["runs"] for s in statements if s["statement"].startswith("INSERT INTO")}
    assert runs["INSERT INTO observations"] == 1024
    assert runs["INSERT INTO traces"] == 1024 // 8
    assert runs["INSERT INTO trace_metadata"] == 5 * 1024 // 8
    assert all(s["usPerSpan"] >= 0 and len(s["statement"]) <= 64 for s in statements)
    assert [s["usPerSpan"] for s in statements] == sorted((s["usPerSpan"] for s in statements), reverse=True)


def test_rootless_load_leaves_every_trace_without_its_root(tracefold, tmp_path):
    """`--rootless` (the open-trace rows of make bench, which must keep
    every trace open in the fold's cache): each trace's first span has a
    parent that is never sent. Without it, each trace's first span is its
    root and the rest are its children."""
    for rootless in (False, True):
        acked = tmp_path / f"acked-{rootless}"
        r = subprocess.run([LOADGEN, "--url", tracefold.traces_url, "--requests", "1", "--batch", "8", "--spans-per-trace", "2",
                            "--connections", "1", "--random-ids", "--seed", "30" if rootless else "31", "--acked-spans", str(acked)]
                           + (["--rootless"] if rootless else []), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        keys = read_acked(acked)
        assert len(keys) == 8
        lines = [l for l in tracefold.wait_for_span_keys(keys) if (l["traceId"], l["spanId"]) in set(keys)]
        assert len(lines) == 8
        spans = {l["spanId"] for l in lines}
        by_trace = {}
        for l in lines:
            by_trace.setdefault(l["traceId"], []).append(l)
        assert len(by_trace) == 4
        for trace in by_trace.values():
            parents = sorted(l.get("parentSpanId") or "" for l in trace)
            if rootless:
                # Both have a parent: the child's is the first span, the
                # first span's is none of the spans sent.
                assert all(parents), trace
                assert sum(p in spans for p in parents) == 1, trace
            else:
                assert parents[0] == "" and parents[1] in spans, trace
