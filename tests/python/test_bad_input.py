"""Bad input (issue: reliability §5), first part: attribute values nested
10,000 deep, at the depth limit and one over, in protobuf and in JSON. Each
gets its status, the process stays up, and spans accepted before are kept."""
import json
import urllib.error
import urllib.request

from protobuf_bytes import attribute, ld, request, varint  # noqa: F401 (other tests import them from here)


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


# Bounds on heavy work are far above what it takes (a 10^6-attribute span
# takes seconds to decode and map in the debug build), so only a hang fails
# them, never a slow machine.
HEAVY_WORK_TIMEOUT = 600


def post(tf, body, content_type):
    req = urllib.request.Request(tf.traces_url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=HEAVY_WORK_TIMEOUT) as r:
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


# --- The rest of the suite: each body gets its status, nothing crashes or
# hangs, and spans accepted from other requests are kept. -------------------

TRACE = bytes(16 * [1])


def span(span_id, name=b"s", extra=b"", trace_id=TRACE):
    sid = span_id if isinstance(span_id, bytes) else span_id.to_bytes(8, "big")
    return ld(1, trace_id) + ld(2, sid) + ld(5, name) + extra


def span_json(span_id, name):
    return (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"' + b"01" * 16 + b'","spanId":"'
            + span_id.encode() + b'","name":"' + name + b'"}]}]}]}')


PB, JS = "application/x-protobuf", "application/json"

# (name, body, content type, expected status, what the 200 body must say)
MALFORMED = [
    ("truncated protobuf", request(span(1))[:-5], PB, 400, None),
    ("field 1 sent as a varint", b"\x08\x01", PB, 400, None),
    # Field 7 (start_time_unix_nano) is fixed64; here it comes as a varint.
    ("a span's start time with the wrong wire type", request(span(1, extra=b"\x38\x01")), PB, 400, None),
    ("a length varint that overflows 64 bits", b"\x0a" + b"\xff" * 10 + b"\x01", PB, 400, None),
    ("a length past the end of the body", b"\x0a" + varint(1 << 40) + b"\x00", PB, 400, None),
    ("valid JSON array", b"[1,2,3]", JS, 400, None),
    ("valid JSON string", b'"spans"', JS, 400, None),
    ("JSON null", b"null", JS, 400, None),
    ("resourceSpans of the wrong type", b'{"resourceSpans":5}', JS, 400, None),
    ("a trace id that is a number", b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5}]}]}]}', JS, 400, None),
    ("a null resourceSpans entry", b'{"resourceSpans":[null]}', JS, 400, None),
    ("not JSON at all", b"{\"resourceSpans\":[", JS, 400, None),
]


def test_malformed_bodies_get_400_and_the_process_stays_up(tracefold):
    assert post(tracefold, request(span(0x100)), PB)[0] == 200
    for name, body, content_type, expected, _ in MALFORMED:
        status, answer = post(tracefold, body, content_type)
        assert status == expected, f"{name}: {status} {answer!r}"
    assert tracefold.proc.poll() is None
    assert [l["spanId"] for l in tracefold.wait_for_spans(1)] == ["0000000000000100"]


def test_ids_of_the_wrong_length_are_rejected_one_by_one(tracefold):
    body = request(span(1, trace_id=bytes(15 * [1])), span(2, trace_id=bytes(17 * [1])), span(bytes(7 * [3])), span(bytes(9 * [3])),
                   span(4, extra=ld(4, bytes(7 * [5]))), span(0x200))
    status, answer = post(tracefold, body, PB)
    assert status == 200
    assert b"5 spans rejected" in answer, answer
    assert [l["spanId"] for l in tracefold.wait_for_spans(1)] == ["0000000000000200"]


def test_invalid_utf8_is_repaired_with_the_replacement_character(tracefold):
    """protobuf-c does not check UTF-8; tracefold keeps the span and replaces
    each invalid sequence with U+FFFD, in protobuf and in JSON bodies."""
    assert post(tracefold, request(span(1, name=b"bad\xff\xfename", extra=attribute(b"k\xc3", b"v\x80"))), PB)[0] == 200
    assert post(tracefold, span_json("0000000000000002", b"json\xffname"), JS)[0] == 200
    lines = {l["spanId"]: l for l in tracefold.wait_for_spans(2)}
    assert lines["0000000000000001"]["name"] == "bad\ufffd\ufffdname"
    assert lines["0000000000000001"]["attributes"] == [{"key": "k\ufffd", "value": {"stringValue": "v\ufffd"}}]
    assert lines["0000000000000002"]["name"] == "json\ufffdname"
    records = tracefold.wait_for_records(lambda r: ("observation", "0000000000000001") in r)
    assert records[("observation", "0000000000000001")]["name"] == "bad\ufffd\ufffdname"


def test_huge_repeated_fields_and_values_are_taken_whole(tracefold):
    """10^6-element repeated fields, 10,000 attributes and 10 MB values fit
    in the 64 MiB limit, so they are accepted as they are; a 10 MB metadata
    value is over the 64 KiB update limit and is dropped with a warning.
    Each span has its own trace, so one huge span does not weigh on the
    records of another."""
    status, answer = post(tracefold, b"\x0a\x00" * 1_000_000, PB)
    assert (status, answer) == (200, b""), "10^6 empty resourceSpans"
    many_attributes = b"".join(attribute(b"k%d" % i, b"") for i in range(1_000_000))
    assert post(tracefold, request(span(1, extra=many_attributes, trace_id=bytes(16 * [0x11]))), PB)[0] == 200
    many_events = b"".join(ld(11, ld(2, b"e")) for _ in range(1_000_000))
    assert post(tracefold, request(span(2, extra=many_events, trace_id=bytes(16 * [0x12]))), PB)[0] == 200
    ten_thousand = b"".join(attribute(b"k%d" % i, b"v%d" % i) for i in range(10_000))
    assert post(tracefold, request(span(3, extra=ten_thousand, trace_id=bytes(16 * [0x13]))), PB)[0] == 200
    assert post(tracefold, request(span(4, extra=attribute(b"big", b"x" * 10_000_000), trace_id=bytes(16 * [0x14]))), PB)[0] == 200
    big_metadata = attribute(b"langfuse.trace.metadata.big", b"x" * 10_000_000)
    status, answer = post(tracefold, request(span(5, extra=big_metadata, trace_id=bytes(16 * [0x15]))), PB)
    assert status == 200 and b"1 metadata update dropped" in answer, answer
    lines = {l["spanId"]: l for l in tracefold.wait_for_spans(5, timeout=HEAVY_WORK_TIMEOUT)}
    assert len(lines["0000000000000001"]["attributes"]) == 1_000_000
    assert len(lines["0000000000000002"]["events"]) == 1_000_000
    assert {a["key"]: a["value"]["stringValue"] for a in lines["0000000000000003"]["attributes"]} == {f"k{i}": f"v{i}" for i in range(10_000)}
    assert lines["0000000000000004"]["attributes"][0]["value"]["stringValue"] == "x" * 10_000_000
    big_trace = ("trace", "15" * 16)
    records = tracefold.wait_for_records(lambda r: ("observation", "0000000000000004") in r and big_trace in r, timeout=HEAVY_WORK_TIMEOUT)
    assert records[("observation", "0000000000000004")]["metadata"]["attributes"]["big"] == "x" * 10_000_000
    assert "big" not in records[big_trace]["metadata"]
    assert any(e["kind"] == "tracefold.warnings" for e in records[big_trace]["metadataEntries"]), records[big_trace]["metadataEntries"]


def slow_request(port, content_length, delay, stop_after=None):
    """Sends headers, then the body one byte every `delay` seconds; returns
    what the server answered and whether it then closed the connection."""
    import socket
    import time
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                 b"Content-Length: %d\r\n\r\n" % content_length)
    sock.settimeout(delay)
    answer = b""
    sent = 0
    started = time.time()
    while time.time() - started < 60:
        try:
            chunk = sock.recv(65536)
            if not chunk:
                sock.close()
                return answer, True
            answer += chunk
        except socket.timeout:
            if sent < content_length:
                try:
                    sock.sendall(b"\x0a")
                    sent += 1
                except OSError:
                    pass
        except ConnectionResetError:
            return answer, True
    sock.close()
    return answer, False


def test_a_slow_body_is_cut_off_at_read_timeout_while_others_are_served(make_tracefold):
    import threading
    tf = make_tracefold(env={"TRACEFOLD_READ_TIMEOUT": "2s"}).start()
    results = []
    slow = [threading.Thread(target=lambda: results.append(slow_request(tf.port, 1000, 0.3))) for _ in range(8)]
    for t in slow:
        t.start()
    # Eight slowloris connections do not keep a normal request waiting.
    assert post(tf, request(span(0x300)), PB)[0] == 200
    for t in slow:
        t.join(timeout=HEAVY_WORK_TIMEOUT)
    assert len(results) == 8
    for answer, closed in results:
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"did not arrive within" in answer, answer
        assert closed, "the connection is closed after the 408"
    assert tf.proc.poll() is None
    assert [l["spanId"] for l in tf.wait_for_spans(1)] == ["0000000000000300"]
    assert tf.stop() == 0


def test_concurrent_mix_of_bad_and_good_requests(make_tracefold):
    """Every kind of bad body at once, from many threads, interleaved with
    good requests: each gets its own status and every good span is kept."""
    import threading
    tf = make_tracefold(env={"TRACEFOLD_READ_TIMEOUT": "2s"}).start()
    bad = [(b, ct, code) for _, b, ct, code, _ in MALFORMED]
    bad += [(nested_protobuf(10_000, span_id=9), PB, 400), (nested_json(10_000), JS, 400),
            (request(span(bytes(7 * [3]))), PB, 200), (request(span(0x7000, extra=attribute(b"big", b"y" * 1_000_000))), PB, 200),
            (request(span(0x7001, name=b"\xff")), PB, 200)]
    failures, good = [], []
    lock = threading.Lock()

    def worker(w):
        for i in range(12):
            body, content_type, expected = bad[(w + i) % len(bad)]
            status, answer = post(tf, body, content_type)
            sid = 0x10000 + w * 100 + i
            good_status, _ = post(tf, request(span(sid)), PB)
            with lock:
                if status != expected:
                    failures.append((status, expected, answer[:200]))
                if good_status == 200:
                    good.append(f"{sid:016x}")
                else:
                    failures.append((good_status, 200, b"good request"))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    slow = [threading.Thread(target=slow_request, args=(tf.port, 500, 0.3)) for _ in range(4)]
    for t in threads + slow:
        t.start()
    for t in threads + slow:
        t.join(timeout=HEAVY_WORK_TIMEOUT)
    assert not failures, failures[:5]
    assert tf.proc.poll() is None
    stored = {l["spanId"] for l in tf.wait_for_span_keys({(TRACE.hex(), sid) for sid in good}, timeout=HEAVY_WORK_TIMEOUT)}
    assert set(good) <= stored
    assert tf.stop() == 0
