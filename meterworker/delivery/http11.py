"""A minimal keep-alive HTTP/1.1 client for posting batches: one connection, the standard library's http.client.

httpx costs about 0.5 ms of CPU per request in its client, pool and protocol layers; a send worker
makes a request per batch, so that was a large part of what delivery cost (see docs/benchmarks.md).
This does one thing: send a body to one URL and read the whole answer, over a connection that is
kept between requests. The Sender uses it when httpx would connect directly (no proxy from the
environment, no custom transport), with httpx's own TLS context, so certificates are checked the
same way. Timeouts are per phase, as httpx's are: connecting, and each send or receive.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit


class ConnectFailed(OSError):
    """The connection could not be made (refused, unreachable, name not resolved, TLS handshake)."""


@dataclass
class Answer:
    status: int
    body: bytes
    headers: http.client.HTTPMessage


def direct(url: str) -> bool:
    """Whether httpx would connect to `url` directly: http(s), and no proxy in the environment applies."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass_environment(parts.hostname or "", proxies))


class Connection:
    """One keep-alive connection to the host of `url`; request() is safe to call from several threads."""

    def __init__(self, url: str, timeout: float, ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _usable(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # An idle keep-alive connection that has something to read was closed by the server (or is
            # broken): do not send on it.
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:
                self._drop()
                conn = None
        if conn is None or conn.sock is None:
            if self.https:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                   context=self.ssl_context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.connect()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise ConnectFailed(str(e)) from e
            self._conn = conn
        return conn

    def request(self, method: str, body: bytes, headers: dict[str, str]) -> Answer:
        """Send `body`, return the whole answer; raises OSError or http.client.HTTPException (the
        connection is then dropped, and the next request makes a new one)."""
        with self._lock:
            conn = self._usable()
            try:
                conn.request(method, self.target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except BaseException:
                self._drop()
                raise
            if resp.will_close:
                self._drop()
            return Answer(resp.status, data, resp.headers)
