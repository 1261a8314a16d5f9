"""The real langfuse 5.0.4 SDK against a live tracefold; the folded records
are read back from the JSONL export (SPEC §2–§4, §6)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_scenario(tf):
    env = {**os.environ, "LANGFUSE_BASE_URL": tf.base_url, "LANGFUSE_PUBLIC_KEY": "pk-lf-test",
           "LANGFUSE_SECRET_KEY": "sk-lf-test", "LANGFUSE_TRACING_ENVIRONMENT": "staging"}
    out = subprocess.run([sys.executable, os.path.join(HERE, "langfuse_scenario.py")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_decorated_app_folds_into_one_trace(tracefold):
    trace_id = run_scenario(tracefold)
    assert tracefold.stop() == 0  # SIGTERM writes everything pending
    records = tracefold.latest_records()
    traces = {k[1]: v for k, v in records.items() if k[0] == "trace"}
    obs = {v["name"]: v for k, v in records.items() if k[0] == "observation"}
    assert list(traces) == [trace_id]
    t = traces[trace_id]

    assert t["name"] == "my-trace"
    assert t["userId"] == "u1"
    assert t["sessionId"] == "s1"
    assert t["tags"] == ["t1", "t2"]
    assert t["version"] == "v9"
    assert t["public"] is True
    assert t["environment"] == "staging"
    # v5 JSON-encodes every metadata value; they are decoded at ingest.
    assert t["metadata"]["tenant"] == "acme"
    assert t["metadata"]["count"] == 5
    assert t["metadata"]["obj"] == {"k": "v"}
    assert t["metadata"]["scope"]["name"] == "langfuse-sdk"
    assert t["metadata"]["scope"]["attributes"]["public_key"] == "pk-lf-test"
    assert "attributes" not in t["metadata"]
    assert t["input"] == {"args": [], "kwargs": {}}
    assert t["output"] == "done"
    assert t["level"] == "ERROR"
    assert abs(t["totalCost"] - 0.003) < 1e-12
    assert sorted(t["observations"]) == sorted(o["id"] for o in obs.values())

    assert set(obs) == {"root-fn", "child", "gen", "evt", "tool-x"}
    root = obs["root-fn"]
    assert root["parentObservationId"] is None
    for name in ("child", "gen", "evt", "tool-x"):
        assert obs[name]["parentObservationId"] == root["id"], name
        assert obs[name]["traceId"] == trace_id
        assert obs[name]["version"] == "v9"

    child = obs["child"]
    assert child["type"] == "SPAN"
    assert child["input"] == {"args": [1], "kwargs": {}}
    assert child["output"] == 3
    # update_current_span twice: top-level keys accumulate, a nested value is replaced.
    assert child["metadata"]["a"] == 1
    assert child["metadata"]["b"] == 2
    assert child["metadata"]["n"] == {"y": 2}
    assert child["metadata"]["step"] == "child"
    entry = next(e for e in child["metadataEntries"] if e["kind"] == "userland.default" and e["scope"] == "observation")
    assert entry["label"] == "User Metadata"
    assert list(entry["values"]) == sorted(entry["values"])

    gen = obs["gen"]
    assert gen["type"] == "GENERATION"
    assert gen["model"] == "gpt-4o"
    assert gen["modelParameters"] == {"temperature": 0.1, "max_tokens": 10}
    assert gen["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert gen["costDetails"] == {"input": 0.001, "output": 0.002, "total": 0.003}
    assert gen["output"] == {"answer": "42"}

    evt = obs["evt"]
    assert evt["type"] == "EVENT"
    assert evt["startTime"] == evt["endTime"]
    assert evt["input"] == {"e": 1}

    tool = obs["tool-x"]
    assert tool["type"] == "TOOL"
    assert tool["level"] == "ERROR"
    assert tool["statusMessage"] == "boom"


def test_export_revisions_equal_the_stored_records(tracefold):
    """After a clean shutdown the highest revision per id in the JSONL files
    equals the record in the store, and every line parses. The store keeps
    records compressed (RowCompression; observations in ObservationRecord's
    binary form), so they are read back through `tracefold export`."""
    import json
    import sqlite3
    import subprocess
    from conftest import BIN
    run_scenario(tracefold)
    run_scenario(tracefold)
    assert tracefold.stop() == 0
    latest = tracefold.latest_records()
    db = sqlite3.connect(os.path.join(tracefold.data_dir, "tracefold.sqlite"))
    stored = {}
    env = {**os.environ, "TRACEFOLD_DATA_DIR": tracefold.data_dir, "TRACEFOLD_ENDPOINT": f"127.0.0.1:{tracefold.port}"}
    r = subprocess.run([BIN, "export", "--config", tracefold.config, "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z"],
                       env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        kind = rec.pop("recordType")
        del rec["revision"]
        stored[(kind, rec["id"])] = rec
    assert db.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 10
    assert db.execute("SELECT COUNT(*) FROM traces").fetchone()[0] == 2
    assert len(stored) == 12
    assert set(latest) == set(stored)
    for key, line in latest.items():
        body = {k: v for k, v in line.items() if k not in ("recordType", "revision")}
        assert body == stored[key], key


def test_langfuse_client_reads_observations_back(tracefold):
    """The v5 client's own read call parses tracefold's v2 answers."""
    from langfuse import Langfuse
    trace_id = run_scenario(tracefold)
    client = Langfuse(public_key="pk-lf-test", secret_key="sk-lf-test", base_url=tracefold.base_url, tracing_enabled=False)
    seen = []
    cursor = None
    while True:
        page = client.api.observations.get_many(trace_id=trace_id, fields="core,basic,io,model,usage,metadata", limit=2, cursor=cursor)
        seen.extend(page.data)
        cursor = page.meta.cursor
        if not cursor:
            break
    by_name = {o.name: o for o in seen}
    assert set(by_name) == {"root-fn", "child", "gen", "evt", "tool-x"}
    starts = [o.start_time for o in seen]
    assert starts == sorted(starts, reverse=True)
    gen = by_name["gen"]
    assert gen.type == "GENERATION"
    assert gen.model == "gpt-4o"
    assert gen.usage_details == {"input": 10, "output": 5, "total": 15}
    assert abs(gen.cost_details["total"] - 0.003) < 1e-12
    assert gen.user_id == "u1" and gen.session_id == "s1"
    assert gen.output == '{"answer":"42"}'  # v2 returns raw strings
    root = by_name["root-fn"]
    assert root.parent_observation_id is None and root.is_root_observation is True
    assert by_name["tool-x"].level == "ERROR"
    assert by_name["child"].metadata["n"] == {"y": 2}
