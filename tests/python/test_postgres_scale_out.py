"""SPEC §8.2: two tracefold processes on different ports share one PostgreSQL
database. Each receives a random half of the same traces' spans, in random
order and concurrently; their records must equal those of one process that
received everything, and their two JSONL exports together hold each record
revision once."""
import json
import os
import random
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest

from conftest import TEST_CONFIG, Tracefold

PG_URL = os.environ.get("TRACEFOLD_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not PG_URL and os.environ.get("TRACEFOLD_REQUIRE_POSTGRES") != "1",
    reason="needs TRACEFOLD_TEST_POSTGRES_URL (scripts/test.sh starts a cluster)",
)

T0 = 1_700_000_000_000_000_000
PG_CONFIG = TEST_CONFIG.replace(
    "  durability: ${env:TRACEFOLD_DURABILITY:-fsync}\n",
    "  durability: ${env:TRACEFOLD_DURABILITY:-fsync}\n  postgres:\n    url: ${env:TRACEFOLD_POSTGRES_URL}\n",
)


def fresh_database():
    assert PG_URL, "TRACEFOLD_TEST_POSTGRES_URL is not set"
    name = "scale_" + uuid.uuid4().hex
    subprocess.run(["psql", PG_URL, "-qc", f"CREATE DATABASE {name}"], check=True)
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def attr(key, value):
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, list):
        v = {"arrayValue": {"values": [{"stringValue": x} for x in value]}}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def make_traces(rng, traces=30, spans_per_trace=8):
    """Spans whose trace-level values conflict across spans, so that the
    merge order matters: names, users, tags and metadata keys set by several
    spans at different times, observation metadata, levels and usage."""
    out = []
    for t in range(traces):
        trace_id = f"{0xABC0000 + t:032x}"
        for s in range(spans_per_trace):
            span_id = f"{(t << 8) + s + 1:016x}"
            start = T0 + t * 1_000_000_000 + rng.randrange(0, 50) * 1_000_000
            attrs = [
                attr("langfuse.trace.metadata.tenant", json.dumps(f"tenant-{rng.randrange(3)}")),
                attr("langfuse.trace.metadata.step", str(s)),
                attr("langfuse.trace.metadata.k%d" % (s % 3), json.dumps({"from": s})),
                attr("langfuse.observation.metadata.attempt", str(rng.randrange(5))),
                attr("langfuse.trace.tags", [f"tag-{s % 4}"]),
                attr("langfuse.observation.input", json.dumps({"question": "x" * rng.randrange(10, 200)})),
            ]
            if s % 2 == 0:
                attrs.append(attr("user.id", f"user-{s}"))
                attrs.append(attr("langfuse.trace.name", f"name-{s}"))
            if s == 3:
                attrs += [attr("langfuse.observation.type", "generation"), attr("gen_ai.request.model", "gpt-x"),
                          attr("gen_ai.usage.input_tokens", 10 + t), attr("gen_ai.usage.output_tokens", 5)]
            if s == 5:
                attrs.append(attr("langfuse.observation.level", "ERROR"))
            span = {
                "traceId": trace_id, "spanId": span_id, "name": f"span-{s}", "kind": 1,
                "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + rng.randrange(1, 900) * 1_000_000),
                "attributes": attrs,
            }
            if s > 0:
                span["parentSpanId"] = f"{(t << 8) + 1:016x}"
            out.append(span)
    return out


def body(spans):
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", "scale-out")]},
        "scopeSpans": [{"scope": {"name": "langfuse-sdk", "version": "5.0.4"}, "spans": spans}],
    }]}).encode()


def send(url, spans, rng):
    while spans:
        n = rng.randrange(1, 12)
        batch, spans = spans[:n], spans[n:]
        req = urllib.request.Request(url, data=body(batch), method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200


def get(tf, path):
    with urllib.request.urlopen(tf.base_url + path, timeout=30) as r:
        return json.loads(r.read())


def records(tf, trace_ids):
    return {t: get(tf, f"/api/public/traces/{t}") for t in trace_ids}


def wait_equal(expected, tf, trace_ids, timeout=20):
    deadline = time.time() + timeout
    while True:
        try:
            got = records(tf, trace_ids)
        except urllib.error.HTTPError:
            got = None
        if got == expected or time.time() > deadline:
            return got
        time.sleep(0.1)


def test_two_processes_sharing_postgres_equal_one_process(tmp_path):
    rng = random.Random(20261121)
    spans = make_traces(rng)
    trace_ids = sorted({s["traceId"] for s in spans})

    # One process (SQLite) receives everything, in order.
    single = Tracefold(tmp_path / "single").start()
    try:
        send(single.traces_url, list(spans), rng)
        # A clean stop folds and writes everything; the restart serves it.
        assert single.stop() == 0
        single.start()
        expected = records(single, trace_ids)
    finally:
        single.stop()
    assert all(len(r["observations"]) == 8 for r in expected.values())

    # Two processes share one database; each gets a random half, shuffled,
    # and both send at once.
    url = fresh_database()
    pair = []
    for name in ("a", "b"):
        d = tmp_path / name
        os.makedirs(d)
        config = d / "pg.yaml"
        config.write_text(PG_CONFIG)
        pair.append(Tracefold(d, config=str(config), env={"TRACEFOLD_POSTGRES_URL": url}).start())
    try:
        halves = ([], [])
        for s in spans:
            halves[rng.randrange(2)].append(s)
        for h in halves:
            rng.shuffle(h)
        assert halves[0] and halves[1]
        senders = [threading.Thread(target=send, args=(tf.traces_url, h, random.Random(i)))
                   for i, (tf, h) in enumerate(zip(pair, halves))]
        for t in senders:
            t.start()
        for t in senders:
            t.join()

        for tf in pair:
            got = wait_equal(expected, tf, trace_ids)
            assert got == expected
        for tf in pair:
            assert tf.stop() == 0
    finally:
        for tf in pair:
            tf.stop()

    # The two exports together: each (recordType, id, revision) once, and
    # the highest revisions are the query API's records.
    lines = pair[0].export_lines() + pair[1].export_lines()
    keys = [(l["recordType"], l["id"], l["revision"]) for l in lines]
    assert len(keys) == len(set(keys)), "a revision was exported by both processes"
    latest = {}
    for l in lines:
        k = (l["recordType"], l["id"])
        if k not in latest or l["revision"] > latest[k]["revision"]:
            latest[k] = l
    for t in trace_ids:
        trace = dict(latest[("trace", t)])
        trace.pop("recordType")
        trace.pop("revision")
        assert trace["metadata"] == expected[t]["metadata"]
        assert sorted(trace["observations"]) == sorted(o["id"] for o in expected[t]["observations"])
    assert sum(1 for k in latest if k[0] == "observation") == len(spans)
