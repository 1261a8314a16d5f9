"""TLS on both receivers (issue 20): the Python HTTP and gRPC exporters over
TLS and mTLS with a test CA that openssl makes here; clients without a valid
certificate refused under mTLS; min_version; certificates re-read on SIGHUP
while open connections keep working; and `tracefold validate` (and `serve`)
naming unreadable or mismatched files."""
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_exporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter

from conftest import BIN, TEST_CONFIG, Tracefold
from test_grpc_receiver import EXPORT, comparable, langfuse_trace, request, span


class PKI:
    """A throwaway CA (two, for rotation), server and client certificates,
    made with the openssl command line."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        for ca in ("ca", "ca2", "rogue-ca"):
            self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                          "-keyout", self.path(ca + ".key"), "-out", self.path(ca + ".pem"), "-days", "2",
                          "-subj", f"/CN=tracefold test {ca}",
                          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._leaf("server", "ca", "tracefold-one", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self._leaf("server-two", "ca2", "tracefold-two", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self._leaf("client", "ca", "exporter", "clientAuth")
        self._leaf("rogue-client", "rogue-ca", "intruder", "clientAuth")

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.dir)

    def _leaf(self, name, ca, cn, usage, *extensions):
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("\n".join([f"extendedKeyUsage={usage}", "basicConstraints=CA:FALSE", *extensions]) + "\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", self.path(name + ".key"), "-out", self.path(name + ".csr"), "-subj", f"/CN={cn}")
        self._openssl("x509", "-req", "-in", self.path(name + ".csr"), "-CA", self.path(ca + ".pem"), "-CAkey", self.path(ca + ".key"),
                      "-CAcreateserial", "-out", self.path(name + ".pem"), "-days", "2", "-extfile", ext)

    def context(self, ca="ca", client=None, maximum=None):
        ctx = ssl.create_default_context(cafile=self.path(ca + ".pem"))
        if client:
            ctx.load_cert_chain(self.path(client + ".pem"), self.path(client + ".key"))
        if maximum:
            ctx.maximum_version = maximum
        return ctx

    def grpc_credentials(self, ca="ca", client=None):
        if client:
            return grpc.ssl_channel_credentials(self.read(ca + ".pem"), self.read(client + ".key"), self.read(client + ".pem"))
        return grpc.ssl_channel_credentials(self.read(ca + ".pem"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def exporter_env(monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE (and CURL_CA_BUNDLE), when set,
    replace the session's `verify`, which is how the HTTP exporter passes
    certificate_file: unset them, as a user of certificate_file would."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def tls_block(cert, key, client_ca=None, min_version=None):
    lines = ["        tls:", f"          cert_file: {cert}", f"          key_file: {key}"]
    if client_ca:
        lines.append(f"          client_ca_file: {client_ca}")
    if min_version:
        lines.append(f'          min_version: "{min_version}"')
    return "\n".join(lines)


def tls_config(tmp_path, cert, key, name="tls.yaml", **kwargs):
    """The test config with the same `tls` on both receivers."""
    block = tls_block(cert, key, **kwargs)
    grpc_line = "        endpoint: ${env:TRACEFOLD_GRPC_ENDPOINT:-127.0.0.1:4317}"
    http_line = "        endpoint: ${env:TRACEFOLD_ENDPOINT}"
    assert grpc_line in TEST_CONFIG and http_line in TEST_CONFIG
    path = tmp_path / name
    path.write_text(TEST_CONFIG.replace(grpc_line, grpc_line + "\n" + block).replace(http_line, http_line + "\n" + block))
    return str(path)


def grpc_call(tf, credentials, body):
    with grpc.secure_channel(f"127.0.0.1:{tf.grpc_port}", credentials) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        try:
            export(body, timeout=10)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()


def https_refused(tf, ctx):
    """True when an HTTPS request with ctx gets no HTTP answer: the
    handshake fails, or (TLS 1.3 client certificates are checked after the
    client's Finished) the connection is closed before any response."""
    try:
        with urllib.request.urlopen(tf.base_url + "/health/live", timeout=5, context=ctx) as r:
            r.read()
        return False
    except (ssl.SSLError, ConnectionError, urllib.error.URLError, http.client.HTTPException):
        return True


def handshake(port, ctx, alpn=None):
    """A bare TLS handshake; returns (certificate subject CN, ALPN)."""
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            subject = dict(pair[0] for pair in s.getpeercert()["subject"])
            return subject["commonName"], s.selected_alpn_protocol()


def test_http_and_grpc_exporters_over_tls_give_the_same_records(make_tracefold, pki, tmp_path, exporter_env):
    config = tls_config(tmp_path, pki.path("server.pem"), pki.path("server.key"))
    tf = make_tracefold(config=config, tls=pki.context()).start()
    via_grpc = langfuse_trace(
        grpc_exporter.OTLPSpanExporter(endpoint=f"127.0.0.1:{tf.grpc_port}", credentials=pki.grpc_credentials(), compression=grpc.Compression.Gzip),
        user="u-tls",
    )
    via_http = langfuse_trace(HTTPSpanExporter(endpoint=tf.traces_url, certificate_file=pki.path("ca.pem")), user="u-tls")
    a, b = tf.wait_for_trace(via_grpc, 2), tf.wait_for_trace(via_http, 2)
    assert a["name"] == "grpc-trace" and a["userId"] == "u-tls"
    assert comparable(a) == comparable(b)
    # Both listeners present the configured certificate and negotiate ALPN.
    assert handshake(tf.port, pki.context(), alpn=["http/1.1"]) == ("tracefold-one", "http/1.1")
    assert handshake(tf.grpc_port, pki.context(), alpn=["h2"]) == ("tracefold-one", "h2")
    # Nothing is served in clear text on a TLS port.
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        conn = http.client.HTTPConnection("127.0.0.1", tf.port, timeout=5)
        conn.request("GET", "/health/live")
        conn.getresponse()
    with grpc.insecure_channel(f"127.0.0.1:{tf.grpc_port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as refused:
            export(request(span()), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # A client that does not trust the server's CA is refused by its own check.
    assert https_refused(tf, pki.context(ca="rogue-ca"))
    assert tf.stop() == 0


def test_mtls_accepts_certified_exporters_and_refuses_the_rest(make_tracefold, pki, tmp_path, exporter_env):
    config = tls_config(tmp_path, pki.path("server.pem"), pki.path("server.key"), client_ca=pki.path("ca.pem"))
    tf = make_tracefold(config=config, tls=pki.context(client="client")).start()
    via_grpc = langfuse_trace(
        grpc_exporter.OTLPSpanExporter(endpoint=f"127.0.0.1:{tf.grpc_port}", credentials=pki.grpc_credentials(client="client")),
        user="u-mtls",
    )
    via_http = langfuse_trace(
        HTTPSpanExporter(
            endpoint=tf.traces_url, certificate_file=pki.path("ca.pem"),
            client_certificate_file=pki.path("client.pem"), client_key_file=pki.path("client.key"),
        ),
        user="u-mtls",
    )
    a, b = tf.wait_for_trace(via_grpc, 2), tf.wait_for_trace(via_http, 2)
    assert a["userId"] == "u-mtls" and comparable(a) == comparable(b)

    # No client certificate, or one from another CA: no answer on either port.
    assert https_refused(tf, pki.context())
    assert https_refused(tf, pki.context(client="rogue-client"))
    assert grpc_call(tf, pki.grpc_credentials(), request(span(span_id=b"\x03" * 8))) == grpc.StatusCode.UNAVAILABLE
    assert grpc_call(tf, pki.grpc_credentials(client="rogue-client"), request(span(span_id=b"\x04" * 8))) == grpc.StatusCode.UNAVAILABLE
    assert grpc_call(tf, pki.grpc_credentials(client="client"), request(span(span_id=b"\x05" * 8))) == grpc.StatusCode.OK
    # The refused calls' spans never arrived; the accepted one did.
    lines = tf.wait_for_span_keys({("01" * 16, "05" * 8)})
    assert {l["spanId"] for l in lines if l["traceId"] == "01" * 16} == {"05" * 8}
    assert not https_refused(tf, tf.tls)
    assert tf.stop() == 0


def test_min_version_1_3_refuses_tls_1_2_on_both_ports(make_tracefold, pki, tmp_path):
    config = tls_config(tmp_path, pki.path("server.pem"), pki.path("server.key"), min_version="1.3")
    tf = make_tracefold(config=config, tls=pki.context()).start()
    for port in (tf.port, tf.grpc_port):
        with pytest.raises(ssl.SSLError):
            handshake(port, pki.context(maximum=ssl.TLSVersion.TLSv1_2))
        assert handshake(port, pki.context(maximum=ssl.TLSVersion.TLSv1_3))[0] == "tracefold-one"
    assert tf.stop() == 0


def wait_for_log(tf, text, timeout=10):
    deadline = time.time() + timeout
    while text not in tf.log():
        assert time.time() < deadline, f"no {text!r} in the log:\n{tf.log()}"
        time.sleep(0.05)


def test_sighup_rereads_the_certificates_and_keeps_open_connections(make_tracefold, pki, tmp_path):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    cert.write_bytes(pki.read("server.pem"))
    key.write_bytes(pki.read("server.key"))
    tf = make_tracefold(config=tls_config(tmp_path, cert, key), tls=pki.context()).start()

    # Connections opened before the rotation, trusting only the first CA: if
    # the reload dropped them, reconnecting would meet the new certificate
    # (another CA) and fail.
    https = http.client.HTTPSConnection("127.0.0.1", tf.port, timeout=5, context=pki.context())
    https.request("GET", "/health/live")
    assert https.getresponse().read() == b"ok"
    open_socket = https.sock
    channel = grpc.secure_channel(f"127.0.0.1:{tf.grpc_port}", pki.grpc_credentials())
    export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    export(request(span(span_id=b"\x06" * 8)), timeout=10)

    cert.write_bytes(pki.read("server-two.pem"))
    key.write_bytes(pki.read("server-two.key"))
    tf.proc.send_signal(signal.SIGHUP)
    wait_for_log(tf, "TLS certificates reloaded")
    for port in (tf.port, tf.grpc_port):
        assert handshake(port, pki.context(ca="ca2"))[0] == "tracefold-two"

    https.request("GET", "/health/live")
    assert https.getresponse().read() == b"ok"
    assert https.sock is open_socket
    assert handshake(tf.port, pki.context(ca="ca2"))[0] == "tracefold-two"
    export(request(span(span_id=b"\x07" * 8)), timeout=10)
    channel.close()
    https.close()

    # A broken file at the next SIGHUP: logged, and the last good
    # certificate stays in use.
    cert.write_bytes(b"not a certificate")
    tf.proc.send_signal(signal.SIGHUP)
    wait_for_log(tf, "TLS reload failed")
    assert "live.pem holds no PEM certificate" in tf.log()
    assert handshake(tf.grpc_port, pki.context(ca="ca2"))[0] == "tracefold-two"
    tf.tls = pki.context(ca="ca2")
    assert not https_refused(tf, tf.tls)
    assert tf.stop() == 0


def run_tracefold(tmp_path, *args):
    env = dict(os.environ, TRACEFOLD_ENDPOINT="127.0.0.1:0", TRACEFOLD_GRPC_ENDPOINT="127.0.0.1:0", TRACEFOLD_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, env=env)


def test_validate_and_serve_report_unreadable_and_mismatched_files(pki, tmp_path):
    def config_with(cert, key):
        path = tls_config(tmp_path, cert, key, name=f"{os.path.basename(cert)}-{os.path.basename(key)}.yaml")
        with open(path) as f:
            # The http block's key_file: it comes after the grpc block's.
            line = [i for i, l in enumerate(f.read().splitlines(), 1) if "key_file:" in l][-1]
        return path, line

    good, _ = config_with(pki.path("server.pem"), pki.path("server.key"))
    ok = run_tracefold(tmp_path, "validate", "--config", good)
    assert ok.returncode == 0, ok.stderr
    assert f"http TLS: {pki.path('server.pem')}, TLS 1.2+" in ok.stdout and "grpc TLS:" in ok.stdout

    missing, _ = config_with(pki.path("nope.pem"), pki.path("server.key"))
    out = run_tracefold(tmp_path, "validate", "--config", missing)
    assert out.returncode == 1
    assert "receivers.otlp.protocols.http.tls.cert_file:" in out.stderr and "nope.pem does not exist" in out.stderr

    # The client's key beside the server's certificate.
    mismatched, key_line = config_with(pki.path("server.pem"), pki.path("client.key"))
    out = run_tracefold(tmp_path, "validate", "--config", mismatched)
    assert out.returncode == 1
    assert f"{mismatched}:{key_line}: receivers.otlp.protocols.http.tls.key_file: {pki.path('client.key')} does not match the certificate" in out.stderr

    not_a_key, _ = config_with(pki.path("server.pem"), pki.path("server.pem"))
    out = run_tracefold(tmp_path, "validate", "--config", not_a_key)
    assert out.returncode == 1 and "is not an unencrypted PEM private key" in out.stderr

    # serve refuses to start on the same files, with the same message.
    out = run_tracefold(tmp_path, "serve", "--config", mismatched)
    assert out.returncode == 2
    assert "does not match the certificate" in out.stderr
