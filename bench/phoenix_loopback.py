"""Starts `phoenix serve` with its OTLP gRPC receiver on 127.0.0.1 only.

Phoenix 20.26.1 binds gRPC to "[::]:PORT" with no setting to change it
(phoenix/server/grpc_server.py); the bench must not open a port on every
interface, so this wraps grpc.aio.server and rewrites that address before
Phoenix sees the server. HTTP binds where PHOENIX_HOST says.
"""
import sys

import grpc.aio

_make_server = grpc.aio.server


def _loopback_server(*args, **kwargs):
    server = _make_server(*args, **kwargs)
    add = server.add_insecure_port
    server.add_insecure_port = lambda address: add(address.replace("[::]", "127.0.0.1"))
    return server


grpc.aio.server = _loopback_server

from phoenix.server.main import main  # noqa: E402  (after the patch)

sys.argv = ["phoenix", "serve"]
main()
