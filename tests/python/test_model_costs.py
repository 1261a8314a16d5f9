"""Issue 22: generations that report tokens but no cost are priced from
model definitions (built in, in collector.yaml, or made through the
langfuse 5.0.4 SDK's api.models), and the query API shows the result."""
import json
import urllib.error
import urllib.request
import uuid

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from conftest import TEST_CONFIG

PRICED = TEST_CONFIG.replace("processors:\n  fold: {}\n", """processors:
  fold:
    models:
      - model_name: acme-llm
        match_pattern: "(?i)^acme-llm$"
        prices: {input: 0.001, output: 0.002}
""")
assert PRICED != TEST_CONFIG


@pytest.fixture
def priced(make_tracefold, tmp_path):
    config = tmp_path / "priced.yaml"
    config.write_text(PRICED)
    return make_tracefold(config=str(config)).start()


def get(tf, path):
    try:
        with urllib.request.urlopen(tf.base_url + path, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def send(tf, spans):
    """Each (name, attributes, start_ns) as one span of one trace, over
    OTLP/HTTP protobuf from the OpenTelemetry Python SDK."""
    provider = TracerProvider(resource=Resource.create({"service.name": "costs"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=tf.traces_url)))
    tracer = provider.get_tracer("costs-test")
    with tracer.start_as_current_span("root") as root:
        for name, attributes, start in spans:
            span = tracer.start_span(name, attributes=attributes, start_time=start)
            span.end(end_time=(start or root.start_time) + 1_000_000)
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def observations(tf, trace_id):
    status, body = get(tf, f"/api/public/observations?traceId={trace_id}&limit=100")
    assert status == 200, body
    return {o["name"]: o for o in body["data"]}


def approx(d):
    return {k: pytest.approx(v, rel=1e-9) for k, v in d.items()}


def test_openinference_genai_and_sdk_generations_are_priced(priced):
    trace_id = send(priced, [
        # OpenInference, a built-in model.
        ("oi", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.token_count.prompt": 1000,
                "llm.token_count.completion": 200}, None),
        # OpenTelemetry GenAI semantic conventions, a model priced in collector.yaml.
        ("genai", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-llm", "gen_ai.usage.input_tokens": 10,
                   "gen_ai.usage.output_tokens": 20}, None),
        # A model nobody prices.
        ("unknown", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "mystery-1", "gen_ai.usage.input_tokens": 10}, None),
    ])
    obs = observations(priced, trace_id)
    assert obs["oi"]["type"] == "GENERATION"
    assert obs["oi"]["costDetails"] == approx({"input": 1000 * 2.5e-6, "output": 200 * 1e-5, "total": 0.0045})
    assert obs["oi"]["modelId"] == "tf-gpt-4o"
    assert obs["genai"]["costDetails"] == approx({"input": 0.01, "output": 0.04, "total": 0.05})
    assert obs["genai"]["modelId"] == "config/acme-llm"
    assert obs["unknown"]["costDetails"] == {} and obs["unknown"]["modelId"] is None
    assert obs["root"]["modelId"] is None
    status, trace = get(priced, f"/api/public/traces/{trace_id}")
    assert trace["totalCost"] == pytest.approx(0.0545)
    status, summary = get(priced, "/api/metrics/summary?groupBy=model")
    by_model = {g["group"]: g for g in summary["data"]}
    assert by_model["gpt-4o"]["totalCost"] == pytest.approx(0.0045)
    assert by_model["mystery-1"]["totalCost"] == 0

    # The langfuse SDK: usage with a partial cost keeps the cost sent and
    # prices the rest.
    from langfuse import Langfuse
    lf = Langfuse(public_key=f"pk-lf-{uuid.uuid4().hex}", secret_key="sk", base_url=priced.base_url)
    with lf.start_as_current_observation(name="sdk", as_type="generation", model="claude-3-5-haiku") as gen:
        gen.update(usage_details={"input": 100, "output": 50}, cost_details={"input": 0.5})
        sdk_trace = lf.get_current_trace_id()
    lf.flush()
    sdk = observations(priced, sdk_trace)["sdk"]
    assert sdk["costDetails"] == approx({"input": 0.5, "output": 50 * 4e-6, "total": 0.5 + 50 * 4e-6})
    assert sdk["modelId"] == "tf-claude-3-5-haiku"

    assert priced.stop() == 0
    lines = [l for l in priced.export_lines() if l["recordType"] == "observation" and l["id"] == obs["genai"]["id"]]
    assert lines[-1]["costDetails"] == approx({"input": 0.01, "output": 0.04, "total": 0.05}), "the JSONL records carry it"


def test_models_through_the_sdk_price_the_next_generation(priced):
    from langfuse import Langfuse
    from langfuse.api.core.api_error import ApiError
    lf = Langfuse(public_key=f"pk-lf-{uuid.uuid4().hex}", secret_key="sk", base_url=priced.base_url)
    page = lf.api.models.list(limit=100)
    by_name = {m.model_name: m for m in page.data}
    assert by_name["gpt-4o"].is_langfuse_managed is True
    assert by_name["gpt-4o"].prices["input"].price == 2.5e-6
    assert by_name["acme-llm"].is_langfuse_managed is False and by_name["acme-llm"].id == "config/acme-llm"
    assert page.meta.total_items >= 20

    created = lf.api.models.create(model_name="new-llm", match_pattern="(?i)^new-llm$", unit="TOKENS", input_price=0.01, output_price=0.02)
    assert created.model_name == "new-llm" and created.input_price == 0.01 and not created.is_langfuse_managed
    assert lf.api.models.get(created.id).match_pattern == "(?i)^new-llm$"
    trace_id = send(priced, [("new", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "New-LLM",
                                      "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 1}, None)])
    new = observations(priced, trace_id)["new"]
    assert new["modelId"] == created.id
    assert new["costDetails"] == approx({"input": 0.03, "output": 0.02, "total": 0.05})

    with pytest.raises(ApiError) as e:
        lf.api.models.delete(by_name["gpt-4o"].id)
    assert e.value.status_code == 400 and "read-only" in json.dumps(e.value.body)
    with pytest.raises(ApiError) as e:
        lf.api.models.create(model_name="bad", match_pattern="(", unit="TOKENS", input_price=1)
    assert e.value.status_code == 400
    lf.api.models.delete(created.id)
    assert get(priced, f"/api/public/models/{created.id}")[0] == 404

    # Survives a restart: definitions made through the API are stored.
    again = lf.api.models.create(model_name="kept-llm", match_pattern="^kept-llm$", unit="TOKENS", input_price=1)
    assert priced.stop() == 0
    priced.start()
    assert get(priced, f"/api/public/models/{again.id}")[1]["modelName"] == "kept-llm"


def test_two_start_dates_price_before_and_after_the_change(priced):
    from langfuse import Langfuse
    lf = Langfuse(public_key=f"pk-lf-{uuid.uuid4().hex}", secret_key="sk", base_url=priced.base_url)
    lf.api.models.create(model_name="dated-llm", match_pattern="^dated-llm$", unit="TOKENS", input_price=1)
    lf.api.models.create(model_name="dated-llm", match_pattern="^dated-llm$", unit="TOKENS", input_price=2,
                         start_date="2026-06-01T00:00:00Z")
    may, june = 1_779_000_000 * 10**9, 1_781_000_000 * 10**9  # 2026-05-17 and 2026-06-09
    usage = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "dated-llm", "gen_ai.usage.input_tokens": 5}
    trace_id = send(priced, [("before", usage, may), ("after", usage, june)])
    obs = observations(priced, trace_id)
    assert obs["before"]["costDetails"]["input"] == 5
    assert obs["after"]["costDetails"]["input"] == 10
    assert obs["before"]["modelId"] != obs["after"]["modelId"]
