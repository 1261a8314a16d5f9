"""`tracefold export` (SPEC §6.4): the JSONL exporter's lines, from the store."""
import gzip
import json
import os
import subprocess

from conftest import BIN
from test_langfuse_sdk import run_scenario


def export(tf, *args):
    env = {**os.environ, "TRACEFOLD_DATA_DIR": tf.data_dir, "TRACEFOLD_ENDPOINT": f"127.0.0.1:{tf.port}"}
    return subprocess.run([BIN, "export", "--config", tf.config, *args], env=env, capture_output=True, timeout=60)


def parse(data):
    return [json.loads(l) for l in data.split(b"\n") if l]


def test_export_writes_the_exporters_lines(tracefold, tmp_path):
    trace_id = run_scenario(tracefold)
    assert tracefold.stop() == 0
    latest = tracefold.latest_records()

    out = tmp_path / "out.jsonl"
    r = export(tracefold, "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert b"1 traces" in r.stderr
    lines = parse(out.read_bytes())
    assert [l["recordType"] for l in lines] == ["trace"] + ["observation"] * 5
    assert lines[0]["id"] == trace_id
    assert {(l["recordType"], l["id"]): l for l in lines} == latest

    r = export(tracefold, "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z", "--gzip")
    assert r.returncode == 0, r.stderr
    assert parse(gzip.decompress(r.stdout)) == lines

    # The range is [from, to): a trace that starts at or after `to` is left out.
    start = lines[0]["timestamp"]
    r = export(tracefold, "--from", "2000-01-01T00:00:00Z", "--to", start)
    assert r.returncode == 0
    assert r.stdout == b""

    r = export(tracefold, "--from", "last tuesday", "--to", start)
    assert r.returncode == 1
    assert b"--from must be an ISO-8601 time" in r.stderr
