"""The real OpenTelemetry Python SDK exports a known set of spans to a live
tracefold three ways, and every field is checked in the spans_jsonl output."""
import base64

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JSONSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtoSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


class RecordingExporter:
    """Wraps the real exporter so the test sees what the SDK handed over and
    what the exporter returned."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def produce_spans(exporter):
    """A known set of spans: nesting, every kind, statuses, attributes of every
    type, events and links. Returns the SDK's own view of them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "checkout", "service.version": "1.2.3", "deployment.replicas": 3,
    }))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.tracer", "0.9.1", schema_url="https://opentelemetry.io/schemas/1.21.0",
                                 attributes={"scope.attr": "yes"})
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={
        "str": "héllo", "bool": True, "int": -7, "float": 2.5,
        "strs": ["a", "b"], "bools": [True, False], "ints": [1, 2, 3], "floats": [0.5, 1.5],
        "big": 2**62,
    }) as root:
        root.add_event("started", attributes={"phase": "init", "n": 1}, timestamp=1_700_000_000_123_456_789)
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "upstream failed"))
            child.record_exception(ValueError("bad value"))
        linked = tracer.start_span("linked", kind=SpanKind.PRODUCER,
                                   links=[Link(child.get_span_context(), {"link.kind": "follows"})])
        linked.set_status(Status(StatusCode.OK))
        linked.end()
        for kind in (SpanKind.INTERNAL, SpanKind.CONSUMER):
            with tracer.start_as_current_span(f"kind-{kind.name.lower()}", kind=kind):
                pass
    provider.shutdown()
    return memory.get_finished_spans()


def any_value(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, bytes):
        return {"bytesValue": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    raise TypeError(type(v))


def attrs(mapping):
    return [{"key": k, "value": any_value(v)} for k, v in (mapping or {}).items()]


def expected_line(span):
    ctx = span.get_span_context()
    kind_numbers = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5}
    status_numbers = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}
    # The SDK's encoders set "has is-remote" (0x100) and, for a remote parent,
    # "is remote" (0x200); they leave the W3C trace-flag bits at 0.
    flags = 0x100 | (0x200 if span.parent is not None and span.parent.is_remote else 0)
    return {
        "traceId": format(ctx.trace_id, "032x"),
        "spanId": format(ctx.span_id, "016x"),
        "parentSpanId": format(span.parent.span_id, "016x") if span.parent else "",
        "traceState": "",
        "flags": flags,
        "name": span.name,
        "kind": kind_numbers[span.kind],
        "startTimeUnixNano": str(span.start_time),
        "endTimeUnixNano": str(span.end_time),
        "attributes": attrs(span.attributes),
        "droppedAttributesCount": 0,
        "events": [{
            "timeUnixNano": str(e.timestamp), "name": e.name, "attributes": attrs(e.attributes), "droppedAttributesCount": 0,
        } for e in span.events],
        "droppedEventsCount": 0,
        "links": [{
            "traceId": format(l.context.trace_id, "032x"), "spanId": format(l.context.span_id, "016x"),
            "traceState": "", "attributes": attrs(l.attributes), "droppedAttributesCount": 0,
            "flags": 0x100 | (0x200 if l.context.is_remote else 0),
        } for l in span.links],
        "droppedLinksCount": 0,
        "status": {"code": status_numbers[span.status.status_code], "message": span.status.description or ""},
        "resource": {"attributes": attrs(span.resource.attributes), "droppedAttributesCount": 0},
        "scope": {
            "name": span.instrumentation_scope.name, "version": span.instrumentation_scope.version,
            "attributes": attrs(span.instrumentation_scope.attributes), "droppedAttributesCount": 0,
        },
    }


def normalise(line):
    """Attribute order within a list is not significant; sort by key."""
    line = dict(line)
    for key in ("attributes",):
        line[key] = sorted(line[key], key=lambda a: a["key"])
    line["resource"] = dict(line["resource"], attributes=sorted(line["resource"]["attributes"], key=lambda a: a["key"]))
    line["events"] = [dict(e, attributes=sorted(e["attributes"], key=lambda a: a["key"])) for e in line["events"]]
    return line


EXPORTERS = {
    "proto-http-gzip": lambda url: ProtoSpanExporter(endpoint=url, compression=Compression.Gzip),
    "proto-http-plain": lambda url: ProtoSpanExporter(endpoint=url, compression=Compression.NoCompression),
    "json-http": lambda url: JSONSpanExporter(endpoint=url),
}


@pytest.mark.parametrize("mode", sorted(EXPORTERS))
def test_sdk_export_arrives_field_for_field(tracefold, mode):
    exporter = RecordingExporter(EXPORTERS[mode](tracefold.traces_url))
    spans = produce_spans(exporter)
    assert len(spans) == 5
    assert exporter.results and all(r == SpanExportResult.SUCCESS for r in exporter.results), exporter.results

    lines = tracefold.wait_for_spans(len(spans))
    assert len(lines) == len(spans)
    got = {l["spanId"]: normalise(l) for l in lines}
    for span in spans:
        want = normalise(expected_line(span))
        assert got[want["spanId"]] == want, span.name

    # The exception event recorded by the SDK carries its semantic attributes.
    child = next(l for l in lines if l["name"] == "child")
    exception = next(e for e in child["events"] if e["name"] == "exception")
    keys = {a["key"]: a["value"] for a in exception["attributes"]}
    assert keys["exception.type"] == {"stringValue": "ValueError"}
    assert keys["exception.message"] == {"stringValue": "bad value"}


def test_gzip_and_json_exports_of_the_same_spans_agree(make_tracefold, tmp_path):
    """The same logical spans decoded from protobuf+gzip and from JSON give
    identical lines, apart from the ids the SDK generates."""
    outputs = []
    for mode in ("proto-http-gzip", "json-http"):
        tf = make_tracefold(data_dir=tmp_path / mode).start()
        produce_spans(EXPORTERS[mode](tf.traces_url))
        lines = tf.wait_for_spans(5)
        tf.stop()
        stripped = []
        for l in lines:
            l = normalise(l)
            for k in ("traceId", "spanId", "parentSpanId", "startTimeUnixNano", "endTimeUnixNano", "events", "links"):
                l.pop(k)
            stripped.append(l)
        outputs.append(sorted(stripped, key=lambda l: l["name"]))
    assert outputs[0] == outputs[1]
