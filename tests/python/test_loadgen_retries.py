"""tracefold-loadgen retries 429/503 after Retry-After like an OTLP
exporter, and gives a request up once --max-retry-seconds have passed since
its first try (the Collector's retry_on_failure.max_elapsed_time), so a
server that keeps refusing cannot hold a run, or a bench waiting on it, for
ever. Against a stand-in server whose answers the test scripts. The
server's Retry-After, not the time the requests take, decides each case:
a retry is given up when the delay it asks for alone ends past the bound,
so how fast the machine is cannot change the outcome."""
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from test_durability import LOADGEN


class Refusing:
    """An OTLP/HTTP endpoint that answers the first `refusals` requests
    with 503 and Retry-After: `retry_after` seconds, then 200."""

    def __init__(self, refusals, retry_after):
        self.refusals = refusals
        self.retry_after = retry_after
        self.seen = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.seen += 1
                if outer.seen <= outer.refusals:
                    self.send_response(503)
                    self.send_header("Retry-After", str(outer.retry_after))
                    body = b""
                else:
                    self.send_response(200)
                    body = b"{}"
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


BOUND = 10


def send_one(refusals, retry_after):
    """One request of 8 spans, with a retry bound of BOUND seconds, to a
    server that refuses it `refusals` times; the number of tries the
    server saw, and the load generator's summary."""
    server = Refusing(refusals, retry_after)
    try:
        out = subprocess.run([LOADGEN, "--url", server.url, "--requests", "1", "--batch", "8", "--connections", "1", "--seed", "5",
                              "--max-retry-seconds", str(BOUND)],
                             check=True, capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    return server.seen, json.loads(out.stdout.strip().splitlines()[-1])


def test_a_retry_within_the_bound_is_sent_and_acknowledged():
    # Refused once, asked to come back in 1 s: well inside 10 s.
    seen, result = send_one(refusals=1, retry_after=1)
    assert seen == 2
    assert result["ackedSpans"] == 8
    assert (result["retries"], result["gaveUp"], result["errors"]) == (1, 0, 0)
    assert result["statuses"] == {"503": 1, "200": 1}


def test_a_retry_that_would_end_past_the_bound_is_given_up():
    # Asked to come back in 11 s, past the 10 s bound: given up at once as
    # an error, not waited for (and not retried for ever).
    seen, result = send_one(refusals=1_000_000, retry_after=BOUND + 1)
    assert seen == 1
    assert result["ackedSpans"] == 0
    assert (result["retries"], result["gaveUp"], result["errors"]) == (0, 1, 1)
    assert result["statuses"] == {"503": 1}

