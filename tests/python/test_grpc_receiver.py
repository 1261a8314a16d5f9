"""OTLP/gRPC intake (issue 20): the real Python gRPC exporter, with and
without gzip, gives the same records as the HTTP exporter; raw grpcio calls
check the status codes, partial_success and max_recv_msg_size at and past
the limit, and the collector stays ready throughout."""
import base64
import json
import os
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_exporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from conftest import TEST_CONFIG, Tracefold

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class Recording:
    def __init__(self, inner):
        self.inner, self.results = inner, []

    def export(self, spans):
        self.results.append(self.inner.export(spans))
        return self.results[-1]

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def langfuse_trace(exporter, user):
    """A Langfuse-attributed trace (what the langfuse SDK's attributes look
    like on the wire): a root span with trace attributes and a generation."""
    recording = Recording(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-test"}))
    provider.add_span_processor(SimpleSpanProcessor(recording))
    tracer = provider.get_tracer("langfuse-sdk", "5.0.4")
    with tracer.start_as_current_span("answer", attributes={
        "langfuse.trace.name": "grpc-trace", "user.id": user, "session.id": "s-1",
        "langfuse.trace.tags": ["grpc", "otlp"], "langfuse.trace.metadata.tenant": "acme",
        "langfuse.observation.input": json.dumps({"q": "hi"}), "langfuse.observation.output": json.dumps("hello"),
    }) as root:
        with tracer.start_as_current_span("llm", attributes={
            "langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o-mini",
            "langfuse.observation.usage_details": json.dumps({"input": 10, "output": 5}),
            "langfuse.observation.cost_details": json.dumps({"total": 0.001}),
        }):
            pass
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    assert recording.results and all(r == SpanExportResult.SUCCESS for r in recording.results), recording.results
    return trace_id


def comparable(trace):
    """The trace record without what differs between two sends (ids, times)."""
    observations = []
    for o in trace["observations"]:
        o = {k: v for k, v in o.items() if k not in ("id", "traceId", "parentObservationId", "createdAt", "updatedAt", "latency", "metadataEntries")
             and "Time" not in k}
        # The SDK gives each TracerProvider its own instance id.
        o["metadata"]["resourceAttributes"].pop("service.instance.id", None)
        observations.append(o)
    observations.sort(key=lambda o: o["name"])
    keep = ("name", "userId", "sessionId", "tags", "metadata", "input", "output", "totalCost")
    return {k: trace.get(k) for k in keep}, observations


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_grpc_exporter_gives_the_same_records_as_http(tracefold, compression):
    kwargs = {"endpoint": f"127.0.0.1:{tracefold.grpc_port}", "insecure": True}
    if compression:
        kwargs["compression"] = grpc.Compression.Gzip
    via_grpc = langfuse_trace(grpc_exporter.OTLPSpanExporter(**kwargs), user="u-grpc")
    via_http = langfuse_trace(HTTPSpanExporter(endpoint=tracefold.traces_url), user="u-grpc")
    a, b = tracefold.wait_for_trace(via_grpc, 2), tracefold.wait_for_trace(via_http, 2)
    assert a["name"] == "grpc-trace" and a["userId"] == "u-grpc" and sorted(a["tags"]) == ["grpc", "otlp"]
    assert a["metadata"]["tenant"] == "acme"
    generation = next(o for o in a["observations"] if o["name"] == "llm")
    assert generation["type"] == "GENERATION" and generation["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert comparable(a) == comparable(b)


def span(name="s", trace_id=b"\x01" * 16, span_id=b"\x02" * 8, attributes=()):
    return trace_pb2.Span(
        trace_id=trace_id, span_id=span_id, name=name, start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_100_000_000,
        attributes=[common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v)) for k, v in attributes],
    )


def request(*spans):
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=list(spans))])]
    ).SerializeToString()


def call(tf, body, metadata=None):
    with grpc.insecure_channel(f"127.0.0.1:{tf.grpc_port}", options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        try:
            reply = export(body, metadata=metadata, timeout=10)
            return grpc.StatusCode.OK, trace_service_pb2.ExportTraceServiceResponse.FromString(reply), None
        except grpc.RpcError as e:
            return e.code(), None, e


def assert_ready(tf):
    with urllib.request.urlopen(tf.base_url + "/health/ready", timeout=5) as r:
        assert r.status == 200


def sized_request(size, span_id):
    """A valid one-span request of exactly `size` bytes."""
    pad = 0
    while True:
        body = request(span(name="sized", span_id=span_id, attributes=[("pad", "x" * pad)]))
        if len(body) >= size:
            break
        pad += max(1, size - len(body))
    while len(body) > size:
        pad -= 1
        body = request(span(name="sized", span_id=span_id, attributes=[("pad", "x" * pad)]))
    assert len(body) == size
    return body


def test_raw_grpc_status_codes_partial_success_and_message_size(make_tracefold, tmp_path):
    config = tmp_path / "grpc.yaml"
    config.write_text(TEST_CONFIG.replace(
        "      grpc:\n        endpoint: ${env:TRACEFOLD_GRPC_ENDPOINT:-127.0.0.1:4317}\n",
        "      grpc:\n        endpoint: ${env:TRACEFOLD_GRPC_ENDPOINT:-127.0.0.1:4317}\n        max_recv_msg_size: 64KiB\n",
    ).replace(
        "        read_timeout: ${env:TRACEFOLD_READ_TIMEOUT:-30s}\n",
        "        read_timeout: 30s\n        auth:\n          api_keys:\n            - {public_key: pk-grpc, secret_key: sk-grpc}\n",
    ))
    tf = make_tracefold(data_dir=tmp_path / "data", config=str(config)).start()
    auth = [("authorization", "Basic " + base64.b64encode(b"pk-grpc:sk-grpc").decode())]

    # Credentials: missing, wrong, right (Basic, as the Langfuse keys are sent).
    assert call(tf, request(span()))[0] == grpc.StatusCode.UNAUTHENTICATED
    wrong = [("authorization", "Basic " + base64.b64encode(b"pk-grpc:nope").decode())]
    assert call(tf, request(span()), wrong)[0] == grpc.StatusCode.UNAUTHENTICATED
    code, reply, _ = call(tf, request(span(name="ok")), auth)
    assert code == grpc.StatusCode.OK and not reply.HasField("partial_success")
    assert_ready(tf)

    # A garbage body: INVALID_ARGUMENT, with the decoder's reason.
    code, _, error = call(tf, b"\xff\xff\xff\xff garbage", auth)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cannot decode" in error.details()
    assert_ready(tf)

    # One bad span (a 3-byte trace id) among good ones: OK, partial_success.
    code, reply, _ = call(tf, request(span(name="good", span_id=b"\x03" * 8), span(name="bad", trace_id=b"abc")), auth)
    assert code == grpc.StatusCode.OK
    assert reply.partial_success.rejected_spans == 1 and "trace" in reply.partial_success.error_message.lower()

    # max_recv_msg_size (64 KiB): a message at the limit is accepted, one
    # byte over is RESOURCE_EXHAUSTED.
    limit = 64 << 10
    assert call(tf, sized_request(limit, b"\x05" * 8), auth)[0] == grpc.StatusCode.OK
    code, _, error = call(tf, sized_request(limit + 1, b"\x06" * 8), auth)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_recv_msg_size" in error.details()
    assert_ready(tf)

    # What was accepted over gRPC reads back.
    # ok, good and the span at the limit; not the bad one, not the one over.
    # The rejected ones were never accepted, so nothing else can arrive later.
    names = [l["name"] for l in tf.wait_for_spans(3)]
    assert sorted(names) == ["good", "ok", "sized"], names
    assert_ready(tf)

    # /metrics counts each answer and the spans under transport="grpc".
    metrics = urllib.request.Request(tf.base_url + "/metrics", headers={"Authorization": auth[0][1]})
    with urllib.request.urlopen(metrics, timeout=5) as r:
        text = r.read().decode()
    def sample(name, **labels):
        want = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} "
        return sum(float(line[len(want):]) for line in text.splitlines() if line.startswith(want))
    assert sample("tracefold_receiver_requests_total", transport="grpc", code="OK") == 3
    assert sample("tracefold_receiver_requests_total", transport="grpc", code="UNAUTHENTICATED") == 2
    assert sample("tracefold_receiver_requests_total", transport="grpc", code="INVALID_ARGUMENT") == 1
    assert sample("tracefold_receiver_requests_total", transport="grpc", code="RESOURCE_EXHAUSTED") == 1
    assert sample("tracefold_receiver_accepted_spans_total", transport="grpc") == 3
    assert sample("tracefold_receiver_rejected_spans_total", transport="grpc") == 1
    assert sample("tracefold_receiver_accepted_spans_total", transport="http") == 0


def test_rate_limit_is_one_bucket_per_key_across_grpc_and_http(make_tracefold, tmp_path):
    """A key's rate limit holds across both protocols: spans sent over gRPC
    use up the bucket an HTTP request then finds empty, and the other way
    round. Over the limit, gRPC answers RESOURCE_EXHAUSTED with a RetryInfo
    detail (as 429 carries Retry-After)."""
    from google.rpc import error_details_pb2, status_pb2
    config = tmp_path / "limited.yaml"
    # 1 span/s with a burst of 10: nothing refills within the test.
    config.write_text(TEST_CONFIG.replace(
        "        read_timeout: ${env:TRACEFOLD_READ_TIMEOUT:-30s}\n",
        "        read_timeout: 30s\n        rate_limit: {spans_per_second: 1, burst: 10}\n"
        "        auth:\n          api_keys:\n            - {public_key: pk-a, secret_key: sk-a}\n            - {public_key: pk-b, secret_key: sk-b}\n",
    ))
    tf = make_tracefold(data_dir=tmp_path / "data", config=str(config)).start()
    key = {name: "Basic " + base64.b64encode(f"pk-{name}:sk-{name}".encode()).decode() for name in ("a", "b")}

    def spans(first, count):
        return request(*(span(name=f"s{i}", span_id=i.to_bytes(8, "big")) for i in range(first, first + count)))

    def http(body, authorization):
        req = urllib.request.Request(tf.traces_url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf", "Authorization": authorization})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, None
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Retry-After")

    # Key a: 8 spans over gRPC, then 8 over HTTP find 2 left: 429.
    assert call(tf, spans(1, 8), [("authorization", key["a"])])[0] == grpc.StatusCode.OK
    status, retry_after = http(spans(11, 8), key["a"])
    assert status == 429 and int(retry_after) >= 1
    # Key b: 8 spans over HTTP, then 8 over gRPC: RESOURCE_EXHAUSTED + RetryInfo.
    assert http(spans(21, 8), key["b"])[0] == 200
    code, _, error = call(tf, spans(31, 8), [("authorization", key["b"])])
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "rate limit" in error.details()
    details = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
    assert details.details[0].type_url == "type.googleapis.com/google.rpc.RetryInfo"
    retry = error_details_pb2.RetryInfo.FromString(details.details[0].value)
    assert retry.retry_delay.seconds >= 1
    # Only what was accepted arrived: 8 spans of each key.
    lines = tf.wait_for_spans(16)
    assert sorted(l["name"] for l in lines) == sorted([f"s{i}" for i in range(1, 9)] + [f"s{i}" for i in range(21, 29)])
    assert_ready(tf)
