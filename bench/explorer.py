#!/usr/bin/env python3
"""Explorer benchmark (issue 21), run by `make bench-explorer` and at the end
of `make bench`: the time to first render of a trace's page in headless
Chromium, for a trace of 2,000 observations (target ≤ 1 s) and, as the
baseline of the same run, one of 10.

A release tracefold gets each trace as one OTLP/protobuf request: a root,
20 agents under it, and generations and spans under those, each with an
input and an output of a few hundred characters. The page is then loaded
--runs times; "first render" is the page's own performance mark, set when
the waterfall's rows are in the DOM, counted from navigation start (so it
includes fetching the trace and its metadata). Also printed: the part spent
in the API request for the trace, and how many tree rows the DOM holds (the
tree is virtualised: a few dozen whatever the size). Writes JSON to
bench/results/.
"""
import argparse
import os
import random
import shutil
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "python"))
from run import ROOT, start_tracefold, write_results  # noqa: E402
from explorer_browser import chromium, console_errors  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def config_yaml(port, data):
    return (
        f"receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{port}\n"
        f"processors:\n  fold: {{}}\n"
        f"exporters:\n  jsonl:\n    directory: {data}/export\n"
        f"store:\n  directory: {data}\n  durability: none\n"
        f"service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [fold]\n      exporters: [jsonl]\n"
        f"  telemetry:\n    logs:\n      level: warning\n"
    )


def kv(key, value):
    return KeyValue(key=key, value=AnyValue(string_value=value))


def trace_request(observations, seed):
    """One trace of `observations` spans: root → agents → leaves."""
    rnd = random.Random(seed)
    trace_id = rnd.randbytes(16)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "explorer-bench"))
    spans = rs.scope_spans.add().spans
    t0 = time.time_ns() - 60_000_000_000
    ids = iter(range(1, 10**9))

    def span(name, parent, start_ms, end_ms, attrs):
        s = spans.add()
        s.trace_id = trace_id
        s.span_id = next(ids).to_bytes(8, "big")
        if parent:
            s.parent_span_id = parent
        s.name = name
        s.start_time_unix_nano = t0 + start_ms * 1_000_000
        s.end_time_unix_nano = t0 + end_ms * 1_000_000
        s.attributes.extend(kv(k, v) for k, v in attrs.items())
        return s.span_id

    text = lambda n: " ".join(rnd.choice(["tokens", "trace", "fold", "span", "answer", "query", "model"]) for _ in range(n))
    root = span("bench-root", None, 0, 60_000, {"langfuse.trace.name": "explorer-bench", "langfuse.trace.metadata.tenant": '"bench"'})
    agents = max(1, min(20, observations // 50))
    per_agent = (observations - 1 - agents) // agents
    extra = (observations - 1 - agents) % agents
    for a in range(agents):
        start = a * (60_000 // agents)
        agent = span(f"agent-{a}", root, start, start + 60_000 // agents, {"langfuse.observation.type": "agent"})
        for i in range(per_agent + (1 if a < extra else 0)):
            s = start + i * 2
            attrs = {"langfuse.observation.input": f'"{text(40)}"', "langfuse.observation.output": f'"{text(40)}"'}
            if i % 3 == 0:
                attrs.update({"langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o-mini",
                              "langfuse.observation.usage_details": '{"input": 120, "output": 30}'})
            span(f"step-{a}-{i}", agent, s, s + 2, attrs)
    assert len(spans) == observations, len(spans)
    return trace_id.hex(), req.SerializeToString()


def post(url, body):
    req = urllib.request.Request(url + "/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200


def first_render(driver, url):
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.rendered === 'trace'"))
    return driver.execute_script("""
        const mark = performance.getEntriesByName('tracefold:waterfall')[0];
        const api = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/public/traces/'));
        return {render: mark.startTime, api: api ? api.responseEnd - api.startTime : null,
                rows: document.querySelectorAll('[role=treeitem]').length, elements: document.getElementsByTagName('*').length};
    """)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    ap.add_argument("--observations", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()

    proc, url, data, work = start_tracefold(args.bin, config_yaml, "tracefold-explorer-bench-")
    driver = None
    try:
        traces = {}
        for n in (10, args.observations):
            trace_id, body = trace_request(n, seed=n)
            post(url, body)
            traces[n] = trace_id
        driver = chromium()
        results = {n: [] for n in traces}
        for run in range(args.runs + 1):  # the first, warming the browser, is not counted
            for n, trace_id in traces.items():
                r = first_render(driver, f"{url}/ui/traces/{trace_id}")
                assert r["rows"] > 0
                if run:
                    results[n].append(r)
        errors = console_errors(driver)
        rows = []
        base = statistics.median(r["render"] for r in results[10])
        print(f"{'observations':>12} {'first render p50':>17} {'p90':>9} {'API part p50':>13} {'rows in DOM':>12} {'elements':>9} {'vs 10':>7}")
        for n, rs in results.items():
            render = sorted(r["render"] for r in rs)
            p50, p90 = statistics.median(render), render[min(len(render) - 1, int(len(render) * 0.9))]
            api = statistics.median(r["api"] for r in rs if r["api"] is not None)
            print(f"{n:>12} {p50:>14.0f} ms {p90:>6.0f} ms {api:>10.0f} ms {rs[-1]['rows']:>12} {rs[-1]['elements']:>9} {p50 / base:>6.2f}×")
            rows.append({"observations": n, "first_render_ms_p50": p50, "first_render_ms_p90": p90, "api_ms_p50": api,
                         "tree_rows_in_dom": rs[-1]["rows"], "elements": rs[-1]["elements"], "ratio_to_10": p50 / base})
        big = next(r for r in rows if r["observations"] == args.observations)
        verdict = "meets" if big["first_render_ms_p50"] <= 1000 else "misses"
        print(f"{args.observations} observations: first render {big['first_render_ms_p50']:.0f} ms, {verdict} the 1 s target; console errors: {len(errors)}")
        write_results("bench-explorer", rows)
    finally:
        if driver:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
