"""Fold behaviour over real OTLP/HTTP: v3-style update_trace traffic from the
plain OpenTelemetry SDK, metadata limits with partial_success, idempotence."""
import json
import urllib.error
import urllib.request

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

T0 = 1_700_000_000_000_000_000


def test_v3_style_update_trace_merge(tracefold):
    """Raw string and int metadata values, and langfuse.trace.* on different
    spans with different start times: later span start wins per key."""
    provider = TracerProvider(resource=Resource.create({"service.name": "v3app", "service.version": "2.0"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=tracefold.traces_url)))
    tracer = provider.get_tracer("langfuse-sdk", "3.15.0")
    with tracer.start_as_current_span("root", start_time=T0, attributes={
        "langfuse.trace.name": "first-name", "user.id": "u-early",
        "langfuse.trace.metadata.region": "eu", "langfuse.trace.metadata.tier": 1,
        "langfuse.trace.tags": ["a"],
    }) as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        with tracer.start_as_current_span("later", start_time=T0 + 5_000_000, attributes={
            "langfuse.trace.name": "final-name", "user.id": "u-late",
            "langfuse.trace.metadata.tier": 2, "langfuse.trace.metadata.raw": "123",
            "langfuse.trace.tags": ["b"],
        }):
            pass
        with tracer.start_as_current_span("earlier-child", start_time=T0 + 1_000_000, attributes={
            "langfuse.trace.metadata.region": "us", "session.id": "sess-1",
        }):
            pass
    provider.shutdown()
    assert tracefold.stop() == 0
    t = tracefold.latest_records()[("trace", trace_id)]
    assert t["name"] == "final-name"
    assert t["userId"] == "u-late"
    assert t["sessionId"] == "sess-1"
    assert t["tags"] == ["a", "b"]
    assert t["version"] == "2.0"
    # region: root (start T0) says eu, earlier-child (T0+1ms) says us → us.
    assert t["metadata"]["region"] == "us"
    assert t["metadata"]["tier"] == 2
    assert t["metadata"]["raw"] == 123  # a v3 raw "123" reads as a number (Langfuse behaviour)
    assert len(t["observations"]) == 3


def post(url, request):
    req = urllib.request.Request(url, data=request.SerializeToString(), method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, ExportTraceServiceResponse.FromString(r.read())


def span_request(trace_id, span_id, attrs, start=T0):
    span = Span(trace_id=trace_id, span_id=span_id, name="s", start_time_unix_nano=start, end_time_unix_nano=start + 1,
                attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[
        ScopeSpans(scope=InstrumentationScope(name="langfuse-sdk"), spans=[span])])])


def test_metadata_limit_over_http(tracefold):
    trace = bytes.fromhex("11111111111111111111111111111111")
    # key "k" (1 byte) + a JSON string value: 65 535 bytes → size 65 536, at the limit.
    at = span_request(trace, bytes.fromhex("0000000000000001"), {"langfuse.trace.metadata.k": '"' + "x" * 65533 + '"'})
    status, resp = post(tracefold.traces_url, at)
    assert status == 200
    assert not resp.HasField("partial_success")

    other = bytes.fromhex("22222222222222222222222222222222")
    over = span_request(other, bytes.fromhex("0000000000000002"), {"langfuse.trace.metadata.k": '"' + "x" * 65534 + '"'})
    status, resp = post(tracefold.traces_url, over)
    assert status == 200
    assert resp.partial_success.rejected_spans == 0
    assert resp.partial_success.error_message == (
        "1 metadata update dropped: metadata update of 65537 bytes exceeds the 65536-byte limit; dropped")
    assert tracefold.stop() == 0
    records = tracefold.latest_records()
    kept = records[("trace", trace.hex())]
    assert len(kept["metadata"]["k"]) == 65533
    dropped = records[("trace", other.hex())]
    assert "k" not in dropped["metadata"]
    assert dropped["observations"] == ["0000000000000002"], "the span is kept"
    warnings = [e for e in dropped["metadataEntries"] if e["kind"] == "tracefold.warnings"]
    assert warnings and warnings[0]["label"] == "Warnings"


def test_redelivery_changes_no_record(tracefold):
    trace = bytes.fromhex("33333333333333333333333333333333")
    req = span_request(trace, bytes.fromhex("0000000000000003"), {"langfuse.trace.name": "once"})
    for _ in range(3):
        assert post(tracefold.traces_url, req)[0] == 200
    assert tracefold.stop() == 0
    lines = [l for l in tracefold.export_lines() if l["id"] in (trace.hex(), "0000000000000003")]
    assert [(l["recordType"], l["revision"]) for l in lines] == [("trace", 1), ("observation", 1)]
