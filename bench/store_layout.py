#!/usr/bin/env python3
"""Observation-table layout experiment, for the store's next step (issue 18).

Times SQLite alone (Python's sqlite3, 16 KiB pages, WAL, synchronous
NORMAL, commits of 2,048 rows) inserting ROWS observation rows of the bench
load's shape (8 spans a trace, the stored columns, 67-byte record and
75-byte body as compressed on the bench load) into:

  rowid+3      today's schema: a rowid table and the indexes by (trace_id,
               span_id), (span_id, trace_id) and start_time
  clustered+2  a WITHOUT ROWID table keyed (trace_id, span_id), which drops
               one index, and the other two

each with sequential trace ids (as tracefold-loadgen sends them) and random
ones (as real tracers do). Prints CPU per row (Python's binding included,
the same for both) and file bytes per row after a checkpoint, and writes
them to bench/results/. Usage: python3 bench/store_layout.py [ROWS]
"""
import json
import sqlite3, os, sys, time, random, tempfile, shutil
N = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
COMMIT = 2048
COLS = "trace_id BLOB NOT NULL, span_id BLOB NOT NULL, revision INTEGER NOT NULL, trace_revision INTEGER NOT NULL, start_time INTEGER NOT NULL, type TEXT, name TEXT, level TEXT, version TEXT, parent_id TEXT, environment TEXT, model TEXT, latency REAL, input_tokens REAL, output_tokens REAL, total_tokens REAL, cost REAL, record BLOB NOT NULL, seq INTEGER, received_at INTEGER, body BLOB"
SCHEMAS = {
    "rowid+3": [f"CREATE TABLE observations ({COLS})",
                "CREATE UNIQUE INDEX observations_by_trace ON observations(trace_id, span_id)",
                "CREATE UNIQUE INDEX observations_by_span ON observations(span_id, trace_id)",
                "CREATE INDEX observations_by_start ON observations(start_time)"],
    "clustered+2": [f"CREATE TABLE observations ({COLS}, PRIMARY KEY (trace_id, span_id)) WITHOUT ROWID",
                    "CREATE UNIQUE INDEX observations_by_span ON observations(span_id, trace_id)",
                    "CREATE INDEX observations_by_start ON observations(start_time)"],
}

def rows(random_ids, rng):
    t0 = 1_700_000_000_000_000_000
    for i in range(N):
        if i % 8 == 0:
            trace = rng.randbytes(16) if random_ids else (7).to_bytes(8, "big") + (i // 8).to_bytes(8, "big")
        span = rng.randbytes(8)
        start = t0 + i * 1000
        yield (trace, span, 1, 1, start, "SPAN", f"step-{i % 8}", "DEFAULT", None, None, "default", "gpt-4o-mini" if i % 8 == 3 else None,
               0.005, 100.0, None, 100.0, None, rng.randbytes(67), i, start, rng.randbytes(75))

results = []
for random_ids in (False, True):
    for name, ddl in SCHEMAS.items():
        d = tempfile.mkdtemp(prefix="tf-cluster-")
        db = sqlite3.connect(os.path.join(d, "x.sqlite"), isolation_level=None)
        db.execute("PRAGMA page_size = 16384")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        for s in ddl: db.execute(s)
        rng = random.Random(5)
        it = rows(random_ids, rng)
        batch = []
        cpu = 0.0
        sql = "INSERT INTO observations VALUES (" + ",".join("?" * 21) + ")"
        done = 0
        while done < N:
            batch = [next(it) for _ in range(min(COMMIT, N - done))]
            c0 = time.process_time()
            db.execute("BEGIN")
            db.executemany(sql, batch)
            db.execute("COMMIT")
            cpu += time.process_time() - c0
            done += len(batch)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(os.path.join(d, "x.sqlite"))
        ids = "random" if random_ids else "sequential"
        print(f"{ids:10s} {name:12s} {1e6 * cpu / N:6.2f} us/row  {size / N:6.1f} B/row", flush=True)
        results.append({"traceIds": ids, "layout": name, "rows": N, "cpuMicrosecondsPerRow": round(1e6 * cpu / N, 2), "bytesPerRow": round(size / N, 1)})
        db.close()
        shutil.rmtree(d)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "store-layout-" + time.strftime("%Y%m%dT%H%M%S") + ".json")
with open(out, "w") as f:
    json.dump({"rows": results}, f, indent=1)
print("wrote", out)
