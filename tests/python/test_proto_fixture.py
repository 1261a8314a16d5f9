"""Messages serialised by the Python opentelemetry-proto package go through
tracefold's protobuf-c decoder; every field must come out in spans_jsonl."""
import base64
import gzip
import urllib.error
import urllib.request

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
PARENT = bytes.fromhex("0102030405060708")


def kv(key, value):
    return KeyValue(key=key, value=value)


def every_value_kind():
    nested = AnyValue(kvlist_value=KeyValueList(values=[
        kv("arr", AnyValue(array_value=ArrayValue(values=[
            AnyValue(int_value=1),
            AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="deep"), AnyValue(bool_value=False)])),
            AnyValue(kvlist_value=KeyValueList(values=[kv("k", AnyValue(double_value=2.5))])),
        ]))),
        kv("empty", AnyValue()),
    ]))
    return [
        kv("s", AnyValue(string_value="héllo \"q\"\n")),
        kv("b", AnyValue(bool_value=True)),
        kv("i", AnyValue(int_value=-42)),
        kv("max", AnyValue(int_value=2**63 - 1)),
        kv("d", AnyValue(double_value=3.25)),
        kv("y", AnyValue(bytes_value=b"\x00\x01\xfe\xff")),
        kv("a", AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="x"), AnyValue(int_value=2)]))),
        kv("kv", nested),
        kv("unset", AnyValue()),
    ]


def expected_values():
    nested = {"kvlistValue": {"values": [
        {"key": "arr", "value": {"arrayValue": {"values": [
            {"intValue": "1"},
            {"arrayValue": {"values": [{"stringValue": "deep"}, {"boolValue": False}]}},
            {"kvlistValue": {"values": [{"key": "k", "value": {"doubleValue": 2.5}}]}},
        ]}}},
        {"key": "empty", "value": {}},
    ]}}
    return [
        {"key": "s", "value": {"stringValue": "héllo \"q\"\n"}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "i", "value": {"intValue": "-42"}},
        {"key": "max", "value": {"intValue": str(2**63 - 1)}},
        {"key": "d", "value": {"doubleValue": 3.25}},
        {"key": "y", "value": {"bytesValue": base64.b64encode(b"\x00\x01\xfe\xff").decode()}},
        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "2"}]}}},
        {"key": "kv", "value": nested},
        {"key": "unset", "value": {}},
    ]


def request():
    span = Span(
        trace_id=TRACE, span_id=SPAN, parent_span_id=PARENT, trace_state="vendor=a,other=b",
        flags=0x301, name="every-field", kind=Span.SPAN_KIND_CONSUMER,
        start_time_unix_nano=1_544_712_660_000_000_001, end_time_unix_nano=1_544_712_661_999_999_999,
        attributes=every_value_kind(), dropped_attributes_count=3,
        events=[Span.Event(time_unix_nano=1_544_712_660_500_000_000, name="ev",
                           attributes=[kv("e", AnyValue(string_value="v"))], dropped_attributes_count=1)],
        dropped_events_count=4,
        links=[Span.Link(trace_id=TRACE, span_id=PARENT, trace_state="l=1",
                         attributes=[kv("la", AnyValue(int_value=7))], dropped_attributes_count=2, flags=0x101)],
        dropped_links_count=5,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[kv("service.name", AnyValue(string_value="fixture"))], dropped_attributes_count=6),
        schema_url="https://opentelemetry.io/schemas/1.21.0",
        scope_spans=[ScopeSpans(
            scope=InstrumentationScope(name="fixture.scope", version="2.0",
                                       attributes=[kv("sa", AnyValue(bool_value=True))], dropped_attributes_count=2),
            schema_url="https://scope",
            spans=[span],
        )],
    )])


EXPECTED = {
    "traceId": TRACE.hex(), "spanId": SPAN.hex(), "parentSpanId": PARENT.hex(),
    "traceState": "vendor=a,other=b", "flags": 0x301, "name": "every-field", "kind": 5,
    "startTimeUnixNano": "1544712660000000001", "endTimeUnixNano": "1544712661999999999",
    "attributes": expected_values(), "droppedAttributesCount": 3,
    "events": [{"timeUnixNano": "1544712660500000000", "name": "ev",
                "attributes": [{"key": "e", "value": {"stringValue": "v"}}], "droppedAttributesCount": 1}],
    "droppedEventsCount": 4,
    "links": [{"traceId": TRACE.hex(), "spanId": PARENT.hex(), "traceState": "l=1",
               "attributes": [{"key": "la", "value": {"intValue": "7"}}], "droppedAttributesCount": 2, "flags": 0x101}],
    "droppedLinksCount": 5,
    "status": {"code": 2, "message": "boom"},
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "fixture"}}], "droppedAttributesCount": 6},
    "scope": {"name": "fixture.scope", "version": "2.0",
              "attributes": [{"key": "sa", "value": {"boolValue": True}}], "droppedAttributesCount": 2},
}


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_every_field_of_a_python_serialised_message(tracefold):
    body = request().SerializeToString()
    status, headers, payload = post(tracefold.traces_url, body, {"Content-Type": "application/x-protobuf"})
    assert status == 200
    assert headers["Content-Type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(payload)
    assert not response.HasField("partial_success")
    [line] = tracefold.wait_for_spans(1)
    assert line == EXPECTED


def test_same_message_gzipped_on_the_other_path(tracefold):
    body = gzip.compress(request().SerializeToString())
    status, _, _ = post(tracefold.base_url + "/api/public/otel/v1/traces", body,
                        {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert status == 200
    [line] = tracefold.wait_for_spans(1)
    assert line == EXPECTED


def test_partial_success_parses_with_the_python_message_types(tracefold):
    req = request()
    bad = req.resource_spans[0].scope_spans[0].spans.add()
    bad.CopyFrom(req.resource_spans[0].scope_spans[0].spans[0])
    bad.trace_id = b"\x00" * 16
    short = req.resource_spans[0].scope_spans[0].spans.add()
    short.CopyFrom(req.resource_spans[0].scope_spans[0].spans[0])
    short.span_id = b"\x01\x02"
    status, _, payload = post(tracefold.traces_url, req.SerializeToString(), {"Content-Type": "application/x-protobuf"})
    assert status == 200
    response = ExportTraceServiceResponse.FromString(payload)
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "2 spans rejected: trace_id is all zero"
    assert tracefold.wait_for_spans(1) == [EXPECTED]


def test_error_bodies_are_google_rpc_status(tracefold):
    from google.rpc import status_pb2  # shipped with googleapis-common-protos, a dependency of the exporters

    status, headers, payload = post(tracefold.traces_url, b"\x0a\xff\x01", {"Content-Type": "application/x-protobuf"})
    assert status == 400
    decoded = status_pb2.Status.FromString(payload)
    assert decoded.code == 3
    assert decoded.message.startswith("cannot decode the protobuf body")
