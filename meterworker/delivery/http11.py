"""A keep-alive HTTP/1.1 transport for httpx over the standard library's http.client: one connection per origin.

httpx's own transport (httpcore and h11) costs several times more CPU per request than http.client;
a send worker makes a request per batch, so that was a large part of what delivery cost (see
docs/benchmarks.md). This transport sends a request and reads the whole answer over a connection
that is kept between requests; httpx's Client still builds the request, applies its timeouts and
decodes the answer, and every failure is one of httpx's own exceptions. Proxies are httpx's job:
the Sender uses this transport only when httpx would connect directly (`direct`).
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
import threading
import urllib.request
from urllib.parse import urlsplit

import httpx

from meterworker import deadline


class _Reader(io.RawIOBase):
    """The socket as http.client reads a response: every read waits at most what is left of the request's
    deadline (a server that trickles bytes would otherwise reset the socket's timeout with each one)."""

    def __init__(self, sock, timeout: float | None, budget: deadline.Budget):
        self.sock, self.timeout, self.budget = sock, timeout, budget

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        def recv(t):
            self.sock.settimeout(t)
            return self.sock.recv_into(b)

        return self.budget.spend(recv, self.timeout, TimeoutError)


def _response_class(timeout: float | None, budget: deadline.Budget):
    def response(sock, *args, **kwargs):
        resp = http.client.HTTPResponse(sock, *args, **kwargs)
        resp.fp = io.BufferedReader(_Reader(sock, timeout, budget))
        return resp

    return response


def direct(url: str) -> bool:
    """Whether httpx would connect to `url` directly: http(s), and no proxy in the environment applies."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass_environment(parts.hostname or "", proxies))


class _Connection:
    """One keep-alive connection to one origin; one request at a time."""

    def __init__(self, https: bool, host: str, port: int, ssl_context: ssl.SSLContext | None):
        self.https, self.host, self.port, self.ssl_context = https, host, port, ssl_context
        self.lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _usable(self, request: httpx.Request, timeout: float | None,
                budget: deadline.Budget | None) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # An idle keep-alive connection that has something to read was closed by the server (or is
            # broken): do not send on it.
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:
                self.drop()
                conn = None
        if conn is None or conn.sock is None:
            if self.https:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            try:
                if budget is None:
                    conn.connect()
                else:
                    budget.spend(lambda t: (setattr(conn, "timeout", t), conn.connect()), timeout, TimeoutError)
            except TimeoutError as e:
                conn.close()
                raise httpx.ConnectTimeout(str(e) or "timed out", request=request) from e
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise httpx.ConnectError(str(e), request=request) from e
            self._conn = conn
        return conn

    def send(self, request: httpx.Request, body: bytes, timeouts: dict) -> httpx.Response:
        # The deadline of `with deadline.deadline(...)`, else httpx's read timeout for the whole request.
        budget = deadline.current() or deadline.Budget(timeouts.get("read") or float("inf"))
        conn = self._usable(request, timeouts.get("connect"), budget)
        try:
            phase = "write"
            conn.putrequest(request.method, request.url.raw_path.decode("ascii"), skip_host=True,
                            skip_accept_encoding=True)
            for name, value in request.headers.raw:
                conn.putheader(name, value)

            def write(t):
                conn.sock.settimeout(t)
                conn.endheaders(body)

            budget.spend(write, timeouts.get("write"), TimeoutError)
            phase = "read"
            conn.response_class = _response_class(timeouts.get("read"), budget)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException as e:
            self.drop()
            if isinstance(e, TimeoutError):
                raise (httpx.WriteTimeout if phase == "write" else httpx.ReadTimeout)(
                    str(e) or "timed out", request=request) from e
            if isinstance(e, http.client.HTTPException):  # RemoteDisconnected and a garbled status line too
                raise httpx.RemoteProtocolError(str(e), request=request) from e
            if isinstance(e, OSError):
                raise (httpx.WriteError if phase == "write" else httpx.ReadError)(str(e), request=request) from e
            raise
        if resp.will_close:
            self.drop()
        return httpx.Response(resp.status, headers=resp.getheaders(), stream=httpx.ByteStream(data),
                              request=request, extensions={"http_version": b"HTTP/1.1"})


class Transport(httpx.BaseTransport):
    """httpx's transport API over keep-alive http.client connections, one per origin; thread-safe
    (requests to one origin take turns on its connection). Timeouts are httpx's, per phase: connect,
    write and read."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self._ssl_context = ssl_context
        self._connections: dict[tuple[bytes, bytes, int], _Connection] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.",
                                            request=request)
        https = url.scheme == "https"
        port = url.port or (443 if https else 80)
        key = (url.raw_scheme, url.raw_host, port)
        with self._lock:
            conn = self._connections.get(key)
            if conn is None:
                context = self._ssl_context if self._ssl_context is not None or not https \
                    else httpx.create_ssl_context()
                conn = self._connections[key] = _Connection(https, url.host, port, context)
        body = request.read()
        with conn.lock:
            return conn.send(request, body, request.extensions.get("timeout", {}))

    def close(self) -> None:
        with self._lock:
            for conn in self._connections.values():
                with conn.lock:
                    conn.drop()
            self._connections.clear()
