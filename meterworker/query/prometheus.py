"""A small client for Prometheus' query API: instant queries, range queries and raw samples."""

from __future__ import annotations

import json
import re
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Iterator

import httpx
import ijson
import orjson

from meterworker.deadline import deadline, transport as deadline_transport
from meterworker.delivery.http11 import direct
from meterworker.query.mapping import check_result_type

from meterworker.redact import redact_url


class PrometheusError(Exception):
    """A query that did not give a result; the message is Prometheus' own where it gave one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _auth(cfg) -> httpx.Auth | None:
    if cfg.basic_auth is not None:
        return httpx.BasicAuth(cfg.basic_auth.username, cfg.basic_auth.password)
    return None


def _headers(cfg) -> dict[str, str]:
    headers = dict(cfg.headers)
    if cfg.bearer_token:
        headers["Authorization"] = f"Bearer {cfg.bearer_token}"
    return headers


def _verify(cfg) -> bool | ssl.SSLContext:
    if cfg.tls.skip_cert_verify:
        return False
    if cfg.tls.root_cas_file:
        return ssl.create_default_context(cafile=cfg.tls.root_cas_file)
    return True


def api_url(base: str, path: str) -> httpx.URL:
    """`path` (``/api/v1/query``) under the base URL's own path (``/prometheus``), its query string kept."""
    url = httpx.URL(base)
    return url.copy_with(path=url.path.rstrip("/") + path)


def _transport(cfg) -> httpx.BaseTransport | None:
    """httpx's transport, keeping to the request's deadline; None (httpx's choice) where a proxy of the
    environment applies, since httpx reads those only for a transport of its own (per-phase timeouts then)."""
    return deadline_transport(verify=_verify(cfg)) if direct(cfg.url) else None


class PrometheusClient:
    def __init__(self, cfg, transport: httpx.BaseTransport | None = None):
        self._url = cfg.url.rstrip("/")
        self._query_url = api_url(cfg.url, "/api/v1/query")
        self._range_url = api_url(cfg.url, "/api/v1/query_range")
        self._timeout = cfg.timeout
        self._client = httpx.Client(
            headers=_headers(cfg),
            auth=_auth(cfg),
            verify=_verify(cfg),
            timeout=cfg.timeout,
            transport=transport or _transport(cfg),
        )

    def close(self) -> None:
        self._client.close()

    def _form(self, promql: str, at: datetime) -> dict[str, str]:
        # nocache=1: VictoriaMetrics otherwise evaluates a `time` less than -search.latencyOffset (30s) ago
        # at now - 30s instead, which moves the window. Prometheus ignores parameters it does not know.
        return {"query": promql, "time": f"{at.timestamp():.3f}", "timeout": f"{self._timeout:g}s", "nocache": "1"}

    def _transport_error(self, e: httpx.HTTPError) -> PrometheusError:
        if isinstance(e, httpx.TimeoutException):
            return PrometheusError(f"timed out after {self._timeout:g}s querying {redact_url(self._url)}")
        return PrometheusError(f"cannot reach {redact_url(self._url)}: {e}")

    def _api_error(self, status: int, text: str) -> PrometheusError:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return PrometheusError(
                f"HTTP {status} from {redact_url(str(self._query_url))}, not a Prometheus API response: "
                f"{text[:200]!r}",
                status,
            )
        return PrometheusError(f"Prometheus {body.get('errorType', 'error')} (HTTP {status}): {body.get('error')}",
                               status)

    def _range_form(self, promql: str, start: datetime, end: datetime, step: float) -> dict[str, str]:
        return {"query": promql, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}",
                "step": f"{step:.3f}", "timeout": f"{self._timeout:g}s", "nocache": "1"}

    @contextmanager
    def _post(self, url: httpx.URL, form: dict[str, str]) -> Iterator[Iterator[bytes]]:
        """The chunks of the answer to POST `form`, read within the request's deadline: the time spent waiting
        on Prometheus adds up to at most `timeout`, however it trickles its answer (deadline.py). Anything but
        HTTP 200, a transport error and a malformed answer end in PrometheusError."""
        try:
            with deadline(self._timeout), self._client.stream("POST", url, data=form) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise self._api_error(resp.status_code, resp.text)
                yield resp.iter_bytes()
        except httpx.HTTPError as e:
            raise self._transport_error(e) from None
        except (ijson.JSONError, orjson.JSONDecodeError, MalformedResult) as e:
            raise PrometheusError(f"malformed response from {redact_url(self._url)}: {e}") from None

    @contextmanager
    def stream(self, promql: str, at: datetime, expect: str | None = None) -> Iterator[StreamedResult]:
        """The result of POST /api/v1/query at `at`, series by series, without holding the whole response;
        `expect="matrix"` for a range selector's raw samples (see parse_stream)."""
        with self._post(self._query_url, self._form(promql, at)) as chunks:
            yield parse_stream(chunks, expect)

    def query_range(self, promql: str, start: datetime, step: int, count: int) -> list[list[tuple[dict, str]]]:
        """POST /api/v1/query_range at `count` instants `step` seconds apart from `start`: for each instant, the
        (labels, value) of every series with a value there. Raises RangeMismatch when the answer holds a point
        at no asked instant (a server aligning the range) or a series without labels (a scalar's answer looks
        the same), for the caller to ask instant queries instead."""
        end = start + timedelta(seconds=step * (count - 1))
        with self._post(self._range_url, self._range_form(promql, start, end, step)) as chunks:
            body = orjson.loads(b"".join(chunks))
        return steps_of(body, start.timestamp(), step, count)


class RangeMismatch(PrometheusError):
    """A range answer that does not map point for point onto the instants asked for."""


def steps_of(body, start: float, step: int, count: int) -> list[list[tuple[dict, str]]]:
    """The series of a query_range answer, instant by instant (see PrometheusClient.query_range)."""
    if not isinstance(body, dict) or body.get("status") != "success":
        if isinstance(body, dict) and body.get("status") == "error":
            raise PrometheusError(f"Prometheus {body.get('errorType', 'error')}: {body.get('error')}")
        raise PrometheusError(f"not a Prometheus API response: {str(body)[:200]!r}")
    if body.get("isPartial"):
        raise PrometheusError(PARTIAL)
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise RangeMismatch(f"a range query answered {data.get('resultType')!r}, not a matrix")
    out: list[list[tuple[dict, str]]] = [[] for _ in range(count)]
    for series in data.get("result") or []:
        labels = series.get("metric") or {}
        if not labels:
            raise RangeMismatch("a series without labels (a scalar's answer looks the same)")
        for t, value in series.get("values") or []:
            k = round((float(t) - start) / step)
            if not 0 <= k < count or abs(start + k * step - float(t)) > 0.0005:
                raise RangeMismatch(f"a point at {t}, which is not one of the instants asked for")
            out[k].append((labels, value))
    return out


@dataclass
class StreamedResult:
    result_type: str
    series: Iterator[tuple[dict[str, str], str]]


_RESULT_TYPE = re.compile(rb'"resultType"\s*:\s*"(\w+)"')
# VictoriaMetrics cluster (vmselect) answers with what the reachable storage nodes hold when some are
# down, and says so before the data: `{"status":"success","isPartial":true,"data":...}`.
_PARTIAL = re.compile(rb'"isPartial"\s*:\s*true')
PARTIAL = ("partial response (isPartial: true): some storage nodes did not answer, so the result may miss "
           "series; not billed, retried")
_HEAD_LIMIT = 1 << 16


class _Chunks:
    """A file-like view of an iterator of byte chunks, starting with what was already read."""

    def __init__(self, head: bytes, rest: Iterator[bytes]):
        self._buf = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._rest, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            n = len(self._buf)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _error_document(head: bytes, rest: Iterator[bytes]) -> PrometheusError | None:
    """Prometheus' own error (`{"status":"error","errorType":…,"error":…}`), which it may send with HTTP 200
    too; None when the response is not one."""
    if b'"status"' not in head:
        return None
    for chunk in rest:
        head += chunk
        if len(head) > _HEAD_LIMIT:
            return None
    try:
        body = json.loads(head)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("status") != "error":
        return None
    return PrometheusError(f"Prometheus {body.get('errorType') or 'error'}: {body.get('error')}")


def parse_stream(chunks: Iterable[bytes], expect: str | None = None) -> StreamedResult:
    """Prometheus writes resultType before the result; read up to it, then parse the result lazily.

    By default the result must be one that can be billed (a vector or a scalar); with `expect="matrix"`, a
    matrix, each series as (labels, [[t, "v"], ...])."""
    it = iter(chunks)
    head = b""
    match = None
    while match is None and len(head) < _HEAD_LIMIT:
        chunk = next(it, None)
        if chunk is None:
            break
        head += chunk
        match = _RESULT_TYPE.search(head)
    if match is None:
        raise _error_document(head, it) or PrometheusError(
            f"no resultType at the start of the response: {head[:200]!r}")
    if _PARTIAL.search(head, 0, match.start()):
        raise PrometheusError(PARTIAL)
    result_type = match.group(1).decode()
    if expect is None:
        check_result_type(result_type)
    elif result_type != expect:
        raise PrometheusError(f"the query answered a {result_type} where a {expect} was asked for")
    pick = _values if result_type == "matrix" else _value
    if result_type in ("vector", "matrix"):
        head, start = _fast_start(head, it)
        if start is not None:
            return StreamedResult(result_type, _fast_series(head[:start], head[start:], it, pick))
    items = ijson.items(_Chunks(head, it), "data.result.item", use_float=True)
    if result_type == "scalar":
        _, value = list(items)
        return StreamedResult(result_type, iter([({}, value)]))
    return StreamedResult(result_type, map(pick, items))


def _value(series: dict) -> tuple[dict[str, str], str]:
    try:
        return series.get("metric") or {}, series["value"][1]
    except (AttributeError, KeyError, IndexError, TypeError) as e:
        raise MalformedResult(f"a series without a value: {e!r}") from None


def _values(series: dict) -> tuple[dict[str, str], list]:
    try:
        return series.get("metric") or {}, series["values"]
    except (AttributeError, KeyError, TypeError) as e:
        raise MalformedResult(f"a series without values: {e!r}") from None


# --- the fast path for Prometheus' own compact vectors and matrices ----------------------------------
#
# Prometheus writes `..."result":[{"metric":{...},"value":[t,"v"]},{"metric":...}]}}` with no spaces
# (`"values":[[t,"v"],...]` in a matrix).
# In JSON, `{"metric":` can only be structure (a quote inside a string is escaped, so a string cannot
# hold `{"` unescaped), so `,{"metric":` only ever separates two series: the bytes before the last one
# hold whole series, and orjson parses them at once, several times faster than ijson's events. A
# response in any other layout (spaces, other key order, a proxy's re-encoding) goes to ijson.

_RESULT_START = re.compile(rb'"result"\s*:\s*\[')
_SEP = b',{"metric":'


class MalformedResult(ValueError):
    """The vector result is not complete, well-formed JSON."""


_FIRST_PIECE_LIMIT = 1 << 20


def _fast_start(head: bytes, it: Iterator[bytes]) -> tuple[bytes, int | None]:
    """(everything read so far, where the result array's contents start) when the result begins in
    Prometheus' compact layout, else (everything read so far, None) for ijson."""
    while True:
        m = _RESULT_START.search(head)
        if m is not None and len(head) >= m.end() + len(_SEP) + 1:
            break
        chunk = next(it, None)
        if chunk is None:
            break
        head += chunk
    if m is None:
        return head, None
    rest = head[m.end():]
    if not (rest.startswith(_SEP[1:] + b"{") or rest.lstrip().startswith(b"]")):
        return head, None
    try:  # what comes before the array is the start of a well-formed document
        orjson.loads(head[:m.end()] + b"]}}")
    except orjson.JSONDecodeError:
        return head, None
    return head, m.end()


def _fast_series(prefix: bytes, buf: bytes, it: Iterator[bytes], pick) -> Iterator[tuple[dict[str, str], object]]:
    def series(part: bytes):
        try:
            items = orjson.loads(b"[" + part + b"]")
        except orjson.JSONDecodeError as e:
            raise MalformedResult(str(e)) from None
        return map(pick, items)

    cut_once = False
    for chunk in it:
        buf += chunk
        cut = buf.rfind(_SEP)
        if cut > 0:
            yield from series(buf[:cut])
            buf = buf[cut + 1:]
            cut_once = True
        elif not cut_once and len(buf) > _FIRST_PIECE_LIMIT:
            # No separator where Prometheus puts one: another layout. Nothing was yielded yet: ijson
            # reads the whole response instead.
            yield from map(pick, ijson.items(_Chunks(prefix + buf, it), "data.result.item", use_float=True))
            return
    yield from series(_last_series(buf))


def _last_series(tail: bytes) -> bytes:
    """The series left at the end: up to the `]` that closes the result, with the rest of the document
    checked to be its well-formed end."""
    if tail.lstrip().startswith(b"]"):
        close, body = tail.index(b"]"), b""
    else:
        close = -1
        while True:
            close = tail.find(b"}]", close + 1)
            if close < 0:
                raise MalformedResult("the result array does not end")
            try:
                orjson.loads(b"[" + tail[:close + 1] + b"]")
            except orjson.JSONDecodeError:
                continue  # a `}]` inside a label value
            close, body = close + 1, tail[:close + 1]
            break
    try:
        orjson.loads(b'{"data":{"result":[]' + tail[close + 1:])
    except orjson.JSONDecodeError as e:
        raise MalformedResult(f"after the result: {e}") from None
    return body
