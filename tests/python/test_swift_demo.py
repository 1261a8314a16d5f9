"""The Swift bindings end to end: tracefold-demo (TracefoldTracing's observe,
@Observed, propagateAttributes, generations, events, Inngest-style metadata)
exports to a live tracefold, and the trace read back through the query API
has what the demo wrote."""
import json
import os
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.environ.get("TRACEFOLD_DEMO", os.path.join(ROOT, ".build", "debug", "tracefold-demo"))


def run_demo(base_url, **env):
    full = dict(os.environ)
    full.update({"TRACEFOLD_BASE_URL": base_url, "TRACEFOLD_FLUSH_INTERVAL": "0.2"})
    full.update(env)
    started = time.time()
    proc = subprocess.run([DEMO], env=full, capture_output=True, text=True, timeout=120)
    return proc, time.time() - started


def test_demo_trace_reads_back_through_the_query_api(tracefold):
    proc, _ = run_demo(tracefold.base_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    trace_id = out["trace_id"]
    assert len(trace_id) == 32
    assert out["exported_spans"] == "7 dropped_spans: 0"

    trace = tracefold.wait_for_trace(trace_id, 7)
    # propagateAttributes, on every span; v3 updateCurrentTrace; public.
    assert trace["name"] == "rag-answer"
    assert trace["userId"] == "user-42"
    assert trace["sessionId"] == "session-7"
    assert sorted(trace["tags"]) == ["demo", "rag"]
    assert trace["version"] == "1.4.0"
    assert trace["public"] is True
    # Decoded metadata: JSON-encoded attribute values come back typed.
    assert trace["metadata"]["tenant"] == "acme"
    assert trace["metadata"]["answered"] is True
    assert trace["input"] == "How fast do orders ship?"
    assert trace["output"] == {"text": "Orders ship within 2 days.", "sources": ["doc-1", "doc-2"]}

    entries = {(e["scope"], e["kind"]): e["values"] for e in trace["metadataEntries"]}
    assert entries[("trace", "userland.default")]["region"] == "eu-west-1"

    by_name = {o["name"]: o for o in trace["observations"]}
    assert sorted(by_name) == sorted(["answer-question", "retrieve", "vector-store.search", "rerank", "llm-call", "cache-miss", "lookUpOrder"])
    root = by_name["answer-question"]
    assert root["type"] == "AGENT" and root["parentObservationId"] is None

    # @Observed: arguments as input, the Encodable result as output.
    retrieve = by_name["retrieve"]
    assert retrieve["type"] == "RETRIEVER"
    assert retrieve["parentObservationId"] == root["id"]
    assert retrieve["input"] == {"args": [], "kwargs": {"query": "How fast do orders ship?", "topK": 2}}
    assert [d["id"] for d in retrieve["output"]["documents"]] == ["doc-2", "doc-1"]
    assert retrieve["output"]["spanID"] == retrieve["id"]
    # A plain swift-distributed-tracing span nests under the observation.
    assert by_name["vector-store.search"]["parentObservationId"] == retrieve["id"]
    assert by_name["rerank"]["output"][0]["id"] == "doc-1"

    # A generation with usage and cost.
    gen = by_name["llm-call"]
    assert gen["type"] == "GENERATION"
    assert gen["model"] == "gpt-4o-mini"
    assert gen["usageDetails"] == {"input": 412, "output": 57, "total": 469}
    assert gen["costDetails"]["total"] == pytest.approx(0.000096)
    assert gen["modelParameters"] == {"temperature": 0.2, "max_tokens": 256}
    assert gen["completionStartTime"] is not None
    gen_entries = {(e["scope"], e["kind"]): e["values"] for e in gen["metadataEntries"]}
    assert gen_entries[("observation", "userland.billing")] == {"credits": 3, "customer": "acme"}

    # An event and an ERROR observation.
    evt = by_name["cache-miss"]
    assert evt["type"] == "EVENT" and evt["startTime"] == evt["endTime"]
    assert evt["metadata"]["store"] == "redis"
    tool = by_name["lookUpOrder"]
    assert tool["type"] == "TOOL"
    assert tool["level"] == "ERROR"
    assert tool["statusMessage"] == "order A-17 not found"

    # Metadata entries by kind and scope: observation (default, billing and
    # usage from one .do batch) on the root, and the extended_trace entry
    # addressed to the retriever's span id.
    root_entries = {(e["scope"], e["kind"]): e for e in root["metadataEntries"]}
    assert root_entries[("observation", "userland.default")]["values"] == {"documents": 2, "fallback": "static-answer"}
    assert root_entries[("observation", "userland.billing")]["values"] == {"usd": 0.000096}
    assert root_entries[("observation", "userland.billing")]["label"] == "User Metadata (billing)"
    assert root_entries[("observation", "userland.usage")]["values"] == {"tokens": 469}
    extended = [e for e in retrieve["metadataEntries"] if e["scope"] == "extended_trace"]
    assert len(extended) == 1
    assert extended[0]["kind"] == "userland.quality"
    assert extended[0]["spanId"] == retrieve["id"]
    assert extended[0]["values"] == {"judge": "heuristic", "relevance": 0.87}


def test_demo_with_the_collector_down_gives_up_after_bounded_retries_with_one_warning(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    proc, elapsed = run_demo(f"http://127.0.0.1:{port}", OTEL_EXPORTER_OTLP_TIMEOUT="300")
    # The app's own work finished; only the export failed.
    assert "answer: Orders ship within 2 days." in proc.stdout
    assert "exported_spans: 0 dropped_spans: 7" in proc.stdout
    assert proc.returncode == 1
    warnings = [l for l in proc.stderr.splitlines() if "warning" in l and "could not export" in l]
    assert len(warnings) == 1, proc.stderr
    # 4 attempts of 0.3 s plus 0.25 + 0.5 + 1 s of backoff, ± 20 %.
    assert elapsed < 20, elapsed
