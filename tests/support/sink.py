"""An OpenMeter-compatible ingest endpoint that records what it accepts.

``POST /api/v1/events`` (OpenMeter) and ``POST /v3/openmeter/events`` (Kong
Konnect) take CloudEvents in structured mode:

* ``Content-Type: application/cloudevents+json`` — one event object;
* ``Content-Type: application/cloudevents-batch+json`` — a JSON array of events;
* ``Content-Type: application/json`` — either shape (as Konnect accepts).

Every event must have non-empty string ``id``, ``source``, ``type``,
``subject`` and ``specversion == "1.0"``; ``time``, when present, must be an
RFC 3339 string; ``data``, when present, a JSON object (null is refused).

A valid request gets 204 and its events are recorded in order. An invalid one
gets 400 ``application/problem+json`` (``{"type": "about:blank", "title":
"Bad Request", "status": 400, "detail": ...}``, the detail naming the event id)
and nothing from it is recorded: a batch is all or nothing.

Every request (valid or not) is kept in ``requests`` as a ``SinkRequest``.

Faults, checked in this order before anything else:
``hang_for`` (hold requests), ``fail_next`` / ``fail_for`` (error status, nothing
recorded), then the token check (401), validation (400), ``reject_ids`` (400).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from .ports import HOST

INGEST_PATHS = ("/api/v1/events", "/v3/openmeter/events")
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
PLAIN_JSON = "application/json"
REQUIRED = ("id", "source", "type", "subject")

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    m = _RFC3339.match(value)
    if not m:
        return False
    # Validate the calendar/clock values; fractions are cut to microseconds.
    base = value[: m.start(7)] if m.group(7) else value[: m.start(8)]
    offset = m.group(8).upper().replace("Z", "+00:00")
    try:
        datetime.fromisoformat(base.replace("t", "T") + offset)
    except ValueError:
        return False
    return True


class Headers(dict):
    """A dict of request headers, looked up case-insensitively (keys stored lower-case)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for k, v in items:
            self[k] = v

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class SinkRequest:
    """One request the sink received. Also readable as a mapping (``r["status"]``)."""

    method: str
    path: str
    headers: Headers
    body: bytes
    events: list[dict] | None  # parsed events (None when the body was not an event/array)
    status: int = 0
    detail: str | None = None  # the problem detail of a refused request
    time: float = field(default_factory=time.time)  # wall clock when it arrived
    accepted: bool = False

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def json(self) -> Any:
        return json.loads(self.body)


class _Refuse(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def _event_name(ev: Any, index: int) -> str:
    if isinstance(ev, dict) and isinstance(ev.get("id"), str) and ev["id"]:
        return f"event {ev['id']!r} (index {index})"
    return f"event at index {index} (no id)"


def validate_event(ev: Any, index: int = 0) -> str | None:
    """What is wrong with one event, or None."""
    name = _event_name(ev, index)
    if not isinstance(ev, dict):
        return f"{name}: an event must be a JSON object, got {type(ev).__name__}"
    for attr in REQUIRED:
        value = ev.get(attr)
        if not isinstance(value, str) or not value:
            what = "missing" if attr not in ev else f"invalid ({value!r})"
            return f"{name}: {attr!r} is {what}; it must be a non-empty string"
    if ev.get("specversion") != "1.0":
        return f"{name}: 'specversion' must be \"1.0\", got {ev.get('specversion')!r}"
    if "time" in ev and not is_rfc3339(ev["time"]):
        return f"{name}: 'time' must be an RFC 3339 timestamp, got {ev['time']!r}"
    if "data" in ev and not isinstance(ev["data"], dict):
        return f"{name}: 'data' must be a JSON object, got {json.dumps(ev['data'])}"
    return None


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout during hang_for) is not an error of the sink.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class OpenMeterSink:
    """Threaded OpenMeter ingest endpoint on 127.0.0.1 (a free port).

    ``token``: when set, requests without ``Authorization: Bearer <token>`` get 401.
    """

    def __init__(self, token: str | None = None, *, port: int = 0) -> None:
        self.token = token
        self._port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._events: list[dict] = []
        self._requests: list[SinkRequest] = []
        # faults
        self._fail_next: list[tuple[int, str | None]] = []
        self._fail_until = 0.0
        self._fail_for_status = 503
        self._fail_for_retry_after: str | None = None
        self._hang_until = 0.0
        self._release = threading.Event()
        self._rejected_ids: set[str] = set()
        self._reject_detail = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- addresses ------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("sink not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the base URL; events go to ``url + "/api/v1/events"``)."""
        return f"http://{HOST}:{self.port}"

    @property
    def events_url(self) -> str:
        return self.url + INGEST_PATHS[0]

    # -- fault controls --------------------------------------------------------

    def fail_next(self, n: int, status: int = 503, retry_after: float | int | str | None = None) -> None:
        """The next `n` ingest requests get `status` (with Retry-After when given); nothing recorded."""
        ra = None if retry_after is None else str(retry_after)
        with self._lock:
            self._fail_next.extend([(status, ra)] * n)

    def fail_for(self, seconds: float, status: int = 503, retry_after: float | int | str | None = None) -> None:
        """Every ingest request in the next `seconds` gets `status`; nothing recorded."""
        with self._lock:
            self._fail_until = time.monotonic() + seconds
            self._fail_for_status = status
            self._fail_for_retry_after = None if retry_after is None else str(retry_after)

    def hang_for(self, seconds: float) -> None:
        """Requests arriving in the next `seconds` are held until that period ends
        (or clear_faults()), then handled normally — so a client that timed out
        meanwhile may still have its events recorded, as with a slow real server."""
        with self._lock:
            self._hang_until = time.monotonic() + seconds
            self._release.clear()

    def reject_ids(self, ids: Iterable[str], detail: str | None = None) -> None:
        """A request containing any of `ids` gets 400 (nothing from it recorded)."""
        with self._lock:
            self._rejected_ids.update(ids)
            self._reject_detail = detail or "event rejected by the sink"

    def clear_faults(self) -> None:
        """Remove every fault and release held requests."""
        with self._lock:
            self._fail_next.clear()
            self._fail_until = 0.0
            self._hang_until = 0.0
            self._rejected_ids.clear()
            self._release.set()

    # -- what was received -----------------------------------------------------

    @property
    def events(self) -> list[dict]:
        """Accepted events, in the order they were accepted."""
        with self._lock:
            return list(self._events)

    @property
    def requests(self) -> list[SinkRequest]:
        """Every request received (ingest or not, valid or not), in order."""
        with self._lock:
            return list(self._requests)

    def ids(self) -> list[str]:
        """Ids of accepted events, repeats included."""
        with self._lock:
            return [e["id"] for e in self._events]

    def duplicates(self) -> list[str]:
        """Ids accepted more than once (each listed once, in first-seen order)."""
        counts = Counter(self.ids())
        return [i for i, n in counts.items() if n > 1]

    def wait_for_events(self, n: int, timeout: float = 10.0) -> list[dict]:
        """Block until at least `n` events are accepted; return them all.
        Raises TimeoutError saying how many arrived and the last statuses."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._events) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    statuses = [r.status for r in self._requests[-10:]]
                    raise TimeoutError(
                        f"sink got {len(self._events)} of {n} events in {timeout}s "
                        f"({len(self._requests)} requests, last statuses {statuses})"
                    )
                self._changed.wait(left)
            return list(self._events)

    def reset(self) -> None:
        """Forget recorded events and requests (faults stay; see clear_faults)."""
        with self._lock:
            self._events.clear()
            self._requests.clear()

    # -- request handling ------------------------------------------------------

    def _hold_if_hanging(self) -> None:
        with self._lock:
            left = self._hang_until - time.monotonic()
            release = self._release
        if left > 0:
            release.wait(left)

    def _injected_failure(self) -> _Refuse | None:
        with self._lock:
            if self._fail_next:
                status, ra = self._fail_next.pop(0)
            elif time.monotonic() < self._fail_until:
                status, ra = self._fail_for_status, self._fail_for_retry_after
            else:
                return None
        return _Refuse(status, "injected failure", {"Retry-After": ra} if ra is not None else {})

    def _check(self, req: SinkRequest) -> None:
        """Raise _Refuse for anything OpenMeter would refuse; else return."""
        if req.path not in INGEST_PATHS:
            raise _Refuse(404, f"no route for {req.path}")
        if req.method != "POST":
            raise _Refuse(405, f"{req.method} not allowed on {req.path}", {"Allow": "POST"})
        failure = self._injected_failure()
        if failure is not None:
            raise failure
        if self.token is not None:
            auth = req.headers.get("Authorization", "")
            if auth != f"Bearer {self.token}":
                raise _Refuse(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
        ctype = req.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype not in (SINGLE, BATCH, PLAIN_JSON):
            raise _Refuse(
                400,
                f"unsupported Content-Type {ctype!r}: expected {SINGLE!r} or {BATCH!r}",
            )
        try:
            payload = json.loads(req.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise _Refuse(400, f"request body is not valid JSON: {e}") from None
        if ctype == SINGLE and not isinstance(payload, dict):
            raise _Refuse(400, f"{SINGLE} body must be one event object, got {type(payload).__name__}")
        if ctype == BATCH and not isinstance(payload, list):
            raise _Refuse(400, f"{BATCH} body must be a JSON array of events, got {type(payload).__name__}")
        if not isinstance(payload, (dict, list)):
            raise _Refuse(400, f"body must be an event object or an array of events, got {type(payload).__name__}")
        events = [payload] if isinstance(payload, dict) else payload
        req.events = events
        for i, ev in enumerate(events):
            problem = validate_event(ev, i)
            if problem:
                raise _Refuse(400, problem)
        with self._lock:
            rejected = [e["id"] for e in events if e["id"] in self._rejected_ids]
            detail = self._reject_detail
        if rejected:
            raise _Refuse(400, f"event {rejected[0]!r}: {detail}")

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        path = handler.path.split("?", 1)[0]
        req = SinkRequest(
            method=handler.command, path=path, headers=Headers(handler.headers.items()),
            body=body, events=None,
        )
        if path in INGEST_PATHS:
            self._hold_if_hanging()
        extra: dict[str, str] = {}
        try:
            self._check(req)
        except _Refuse as refusal:
            req.status, req.detail, extra = refusal.status, refusal.detail, refusal.headers
        else:
            req.status, req.accepted = 204, True
        with self._changed:
            self._requests.append(req)
            if req.accepted:
                self._events.extend(req.events or [])
            self._changed.notify_all()

        handler.send_response(req.status)
        for k, v in extra.items():
            handler.send_header(k, v)
        if req.accepted:
            handler.end_headers()
            return
        try:
            phrase = HTTPStatus(req.status).phrase
        except ValueError:
            phrase = "Error"
        problem = json.dumps(
            {"type": "about:blank", "title": phrase, "status": req.status, "detail": req.detail}
        ).encode()
        handler.send_header("Content-Type", "application/problem+json")
        handler.send_header("Content-Length", str(len(problem)))
        handler.end_headers()
        handler.wfile.write(problem)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> "OpenMeterSink":
        """Start serving (after stop(), on the same port again)."""
        if self._server is not None:
            return self
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                sink._handle(self)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = _Server((HOST, self._port), Handler)
        self._port = server.server_address[1]
        self._release = threading.Event()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="openmeter-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._release.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "OpenMeterSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
