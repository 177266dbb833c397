"""The HTTP side of the tests' exporters: a server that answers each GET with what the exporter renders."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from .ports import HOST

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def serve(port: int, answer: Callable[[str], tuple[int, bytes]]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve on HOST:`port` (0: a free one, read it from the server) from a daemon thread: each GET gets
    `answer(path)` as (status, body) in Prometheus' text exposition format."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            status, body = answer(self.path.split("?", 1)[0])
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="metrics-http", daemon=True)
    thread.start()
    return server, thread
