"""The Sender's keep-alive transport (meterworker.delivery.http11.Transport): the outcomes httpx gives, on a real socket."""

import gzip
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import httpx
import pytest

from meterworker.delivery import http11
from meterworker.delivery.sender import Sender


class Server:
    """Answers POSTs with `status`; `close_after` makes it close each connection after answering."""

    def __init__(self, status=204, body=b"", headers=None, delay=0.0, close_after=False):
        self.requests = []
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                outer.connections += 1

            def do_POST(self):  # noqa: N802
                data = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, dict(self.headers), data))
                time.sleep(delay)
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                if close_after:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that timed out and left
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v1/events?x=1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def cfg(url, timeout=5.0, headers=None):
    return SimpleNamespace(url=url, verb="POST", headers=headers or {"Authorization": "Bearer t"}, timeout=timeout,
                           dump_request_log_level=None)


@pytest.fixture
def server(request):
    servers = []

    def make(**kw):
        s = Server(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_direct_path_posts_the_batch_and_reuses_the_connection(server):
    s = server(status=204)
    sender = Sender(cfg(s.url))
    assert isinstance(sender._transport, http11.Transport)
    for n in range(3):
        r = sender.post([{"id": str(n), "data": {"value": 1.5}}])
        assert (r.status, r.body, r.error) == (204, "", None)
    assert s.connections == 1
    path, headers, body = s.requests[0]
    assert path == "/api/v1/events?x=1"
    assert headers["Content-Type"] == "application/cloudevents-batch+json"
    assert headers["Authorization"] == "Bearer t"
    assert body == b'[{"id":"0","data":{"value":1.5}}]'


def test_direct_path_gives_status_body_and_retry_after(server):
    s = server(status=503, body=b'{"detail":"busy"}', headers={"Retry-After": "7", "Content-Type": "application/json"})
    r = Sender(cfg(s.url)).post([{"id": "1"}])
    assert (r.status, r.body, r.retry_after) == (503, '{"detail":"busy"}', 7.0)


def test_a_connection_the_server_closed_is_replaced(server):
    s = server(status=204, close_after=True)
    sender = Sender(cfg(s.url))
    assert [sender.post([{"id": str(n)}]).status for n in range(3)] == [204, 204, 204]
    assert s.connections == 3


def test_refused_and_timed_out_are_errors_not_exceptions(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = Sender(cfg(f"http://127.0.0.1:{port}/api/v1/events")).post([{"id": "1"}])
    assert r.status is None and r.error.startswith("ConnectError:")
    slow = server(status=204, delay=1.0)
    r = Sender(cfg(slow.url, timeout=0.2)).post([{"id": "1"}])
    assert (r.status, r.error) == (None, "timed out after 0.2s")


def test_proxies_from_the_environment_go_through_httpx(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert not http11.direct("https://openmeter.example.com/api/v1/events")
    assert http11.direct("https://localhost/api/v1/events")
    assert http11.direct("http://openmeter.example.com/api/v1/events")
    assert Sender(cfg("https://openmeter.example.com/api/v1/events"))._transport is None


def _listener():
    """A socket that accepts connections (kept in a list) and never reads from them or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return sock, accepted


def test_the_transport_raises_httpx_own_exceptions(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with httpx.Client(transport=http11.Transport(), timeout=0.3) as client:
        with pytest.raises(httpx.ConnectError):
            client.post(f"http://127.0.0.1:{port}/", content=b"[]")
        slow = server(status=204, delay=1.0)
        with pytest.raises(httpx.ReadTimeout):
            client.post(slow.url, content=b"[]")
        deaf, accepted = _listener()
        try:
            with pytest.raises(httpx.WriteTimeout):
                client.post(f"http://127.0.0.1:{deaf.getsockname()[1]}/", content=b"x" * 64_000_000)
        finally:
            deaf.close()
            for c in accepted:
                c.close()


def test_a_server_that_hangs_up_without_answering_is_a_protocol_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def hang_up():
        conn, _ = sock.accept()
        data = b""
        while not data.endswith(b"\r\n\r\n[]"):  # the whole request: closing with bytes unread would be a reset
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with httpx.Client(transport=http11.Transport(), timeout=5) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                client.post(f"http://127.0.0.1:{sock.getsockname()[1]}/", content=b"[]")
    finally:
        sock.close()


def test_httpx_decodes_the_answer_the_transport_read(server):
    s = server(status=400, body=gzip.compress("zu groß".encode("latin-1")),
               headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=latin-1"})
    r = Sender(cfg(s.url)).post([{"id": "1"}])
    assert (r.status, r.body) == (400, "zu groß")
    _, headers, _ = s.requests[0]
    assert headers["User-Agent"].startswith("meterworker/")
    assert headers["Host"] == s.url.split("/")[2]
