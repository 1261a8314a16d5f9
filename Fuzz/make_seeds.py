"""Writes the committed seed corpora under Fuzz/corpus/. Run with the test
venv (it has opentelemetry-proto): .venv/bin/python Fuzz/make_seeds.py"""
import gzip
import json
import os
import zlib

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

HERE = os.path.dirname(os.path.abspath(__file__))


def kv(key, **value):
    return KeyValue(key=key, value=AnyValue(**value))


def requests():
    tid, sid, pid = bytes(range(1, 17)), bytes(range(1, 9)), bytes(range(9, 17))
    rich = Span(
        trace_id=tid, span_id=sid, parent_span_id=pid, name="llm-call", kind=Span.SPAN_KIND_CLIENT, trace_state="k=v", flags=0x101,
        start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_500_000_000,
        attributes=[
            kv("langfuse.observation.type", string_value="generation"),
            kv("langfuse.trace.metadata.tenant", string_value='"acme"'),
            kv("langfuse.trace.tags", array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(string_value="b")])),
            kv("gen_ai.usage.input_tokens", int_value=12),
            kv("gen_ai.request.temperature", double_value=0.7),
            kv("flag", bool_value=True),
            kv("blob", bytes_value=b"\x00\xff"),
            kv("nested", kvlist_value=KeyValueList(values=[kv("inner", int_value=-1)])),
            kv("user.id", string_value="u-1"),
        ],
        events=[Span.Event(time_unix_nano=1_700_000_000_100_000_000, name="tracefold.metadata", attributes=[
            kv("tracefold.metadata.kind", string_value="billing"), kv("tracefold.metadata.values", string_value='{"plan":"pro"}')])],
        links=[Span.Link(trace_id=tid, span_id=pid, attributes=[kv("l", string_value="x")])],
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )
    plain = Span(trace_id=tid, span_id=pid, name="root", start_time_unix_nano=1, end_time_unix_nano=2)
    invalid = Span(trace_id=bytes(16), span_id=bytes(7), name="bad")
    def req(*spans):
        return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=Resource(attributes=[kv("service.name", string_value="svc")]),
            scope_spans=[ScopeSpans(scope=InstrumentationScope(name="langfuse-sdk", version="5.0.4"), spans=list(spans))])]).SerializeToString()
    return {"empty": b"", "plain": req(plain), "rich": req(rich, plain), "invalid": req(invalid, plain)}


JSON_SEEDS = {
    "empty": "{}",
    "plain": '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"s"}]}]}]}',
    "rich": json.dumps({"resource_spans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "langfuse-sdk"}, "spans": [{
            "traceId": "0102030405060708090A0B0C0D0E0F10", "spanId": "0102030405060708", "parentSpanId": "090a0b0c0d0e0f10",
            "name": "gen", "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000500000000,
            "attributes": [{"key": "d", "value": {"doubleValue": "NaN"}}, {"key": "i", "value": {"intValue": "-5"}},
                           {"key": "b", "value": {"bytesValue": "AP8="}}, {"key": "a", "value": {"arrayValue": {"values": [{"boolValue": True}]}}},
                           {"key": "langfuse.trace.metadata", "value": {"stringValue": "{\"k\":1}"}}],
            "events": [{"timeUnixNano": "1", "name": "e"}], "links": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708"}],
            "status": {"code": 2, "message": "m"}}]}]}]}),
}

METADATA_SEEDS = {
    "object": '{"tenant":"acme","n":5,"f":1.5e-7,"t":true,"z":null,"a":[1,"x",{"y":[]}]}',
    "unicode": '{"k\\u00e9":"\\ud83d\\ude00 caf\u00e9","esc":"\\"\\\\\\/\\b\\f\\n\\r\\t"}',
    "numbers": '{"big":12345678901234567890,"neg":-0,"exp":1E+300,"small":-9223372036854775808}',
    "string": '"\\"acme\\""',
    "nested": '{"a":{"b":{"c":{"d":{"e":[[[[1]]]]}}}}}',
}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


for name, body in requests().items():
    write("protobuf", name, body)
    write("gzip", name + ".gz", b"\x10" + gzip.compress(body, mtime=0))
    write("gzip", name + ".deflate", b"\x03" + zlib.compress(body))
for name, body in JSON_SEEDS.items():
    write("json", name, body)
for name, body in METADATA_SEEDS.items():
    write("metadata", name, body)
