"""A Prometheus query API under a path prefix, as Mimir (``/prometheus``) or Cortex (``/api/prom``)
serve it, that records every request.

``PrefixedApi(prefix="/prometheus")`` answers ``POST|GET {prefix}/api/v1/query`` and nothing else
(404 otherwise). With ``upstream`` (a base URL such as a PrometheusServer's ``url``) it forwards the
request there without the prefix and returns the upstream's answer unchanged; without one it
answers ``result`` (an empty vector by default). Each request is kept in ``requests`` as an
``ApiRequest`` (method, path, query string, headers, form), also the refused ones.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .ports import HOST
from .sink import Headers


@dataclass
class ApiRequest:
    method: str
    path: str
    query: str
    headers: Headers
    form: dict[str, list[str]]


class PrefixedApi:
    def __init__(self, prefix: str = "/prometheus", upstream: str | None = None, result: list | None = None):
        self.prefix = "/" + prefix.strip("/")
        self.upstream = upstream.rstrip("/") if upstream else None
        self.result = result or []
        self.requests: list[ApiRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT{prefix}``: what goes into ``input.prometheus.url``."""
        return f"http://{HOST}:{self._server.server_address[1]}{self.prefix}"

    def start(self) -> "PrefixedApi":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = parse_qs(body.decode()) if body else parse_qs(parts.query)
                with api._lock:
                    api.requests.append(ApiRequest(self.command, parts.path, parts.query,
                                                   Headers(self.headers.items()), form))
                if parts.path != f"{api.prefix}/api/v1/query":
                    return self._reply(404, {"status": "error", "errorType": "not_found",
                                             "error": f"no such path {parts.path}"})
                if api.upstream is None:
                    return self._reply(200, {"status": "success",
                                             "data": {"resultType": "vector", "result": api.result}})
                req = urllib.request.Request(f"{api.upstream}/api/v1/query", data=body or None,
                                             method=self.command,
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, raw = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, raw = e.code, e.read()
                self._send(status, raw)

            def _reply(self, status, doc):
                self._send(status, json.dumps(doc).encode())

            def _send(self, status, raw):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _handle

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "PrefixedApi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
