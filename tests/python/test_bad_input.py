"""Bad input (issue: reliability §5), first part: attribute values nested
10,000 deep, at the depth limit and one over, in protobuf and in JSON. Each
gets its status, the process stays up, and spans accepted before are kept."""
import json
import urllib.error
import urllib.request


def ld(field, payload):
    """One length-delimited protobuf field."""
    n, v = len(payload), bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        v.append(b | 0x80 if n else b)
        if not n:
            break
    return bytes([(field << 3) | 2]) + bytes(v) + payload


def nested_protobuf(any_values, span_id=2):
    """A request whose one attribute holds `any_values` AnyValues nested in
    kvlists, built by hand: the Python protobuf library recurses too."""
    av = ld(1, b"leaf")
    for _ in range(any_values - 1):
        av = ld(6, ld(1, ld(1, b"k") + ld(2, av)))
    span = ld(1, bytes(16 * [1])) + ld(2, span_id.to_bytes(8, "big")) + ld(5, b"s") + ld(9, ld(1, b"a") + ld(2, av))
    return ld(1, ld(2, ld(2, span)))


def nested_json(any_values):
    """The same in OTLP/JSON, written as text (json.dumps recurses)."""
    n = any_values - 1
    av = '{"kvlistValue":{"values":[{"key":"k","value":' * n + '{"stringValue":"leaf"}' + "}]}}" * n
    span = '{"traceId":"' + "01" * 16 + '","spanId":"00000000000000ff","name":"s","attributes":[{"key":"a","value":' + av + "}]}"
    body = '{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}"
    return body.encode()


def post(tf, body, content_type):
    req = urllib.request.Request(tf.traces_url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_nesting_depth_limit(tracefold):
    status, _ = post(tracefold, nested_protobuf(64, span_id=2), "application/x-protobuf")
    assert status == 200, "64 nested values are within the limit"
    status, body = post(tracefold, nested_protobuf(65, span_id=3), "application/x-protobuf")
    assert status == 400 and b"nest deeper than 64 levels" in body, body
    status, body = post(tracefold, nested_protobuf(10_000, span_id=4), "application/x-protobuf")
    assert status == 400, body
    for depth in (10_000, 100_000):
        status, body = post(tracefold, nested_json(depth), "application/json")
        assert status == 400, body
    assert tracefold.proc.poll() is None, "the collector is still running"
    lines = tracefold.wait_for_spans(1)
    assert [l["spanId"] for l in lines] == ["0000000000000002"], "the accepted span is kept"
