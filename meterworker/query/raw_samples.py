"""Counter mode's HTTP side: an instant query's vector as (labels, value), a range selector's raw samples as
(labels, [(t, value), ...]), through the configured Prometheus client (its auth, TLS and deadline)."""

import re
from datetime import datetime
from typing import Iterator

import httpx
import orjson

from meterworker.deadline import deadline
from meterworker.query.prometheus import (
    _RESULT_START, _SEP, MalformedResult, PrometheusClient, PrometheusError, _last_series, api_url,
)


def instant(client: PrometheusClient, promql: str, at: datetime) -> Iterator[tuple[dict[str, str], str]]:
    with client.stream(promql, at) as result:
        if result.result_type != "vector":
            raise PrometheusError(f"counter mode expected a vector from {promql[:80]!r}, got a {result.result_type}")
        yield from result.series


def matrix(client: PrometheusClient, promql: str, at: datetime) -> list[tuple[dict[str, str], list]]:
    try:
        with deadline(client._timeout):
            resp = client._client.post(client._query_url, data=client._form(promql, at))
    except httpx.HTTPError as e:
        raise client._transport_error(e) from None
    if resp.status_code != 200:
        raise client._api_error(resp.status_code, resp.text)
    try:
        body = orjson.loads(resp.content)
        if body.get("status") != "success":
            raise PrometheusError(f"Prometheus {body.get('errorType') or 'error'}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] != "matrix":
            raise PrometheusError(f"counter mode expected raw samples (a matrix), got a {data['resultType']}")
        return [(s.get("metric") or {}, s["values"]) for s in data["result"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise PrometheusError(f"malformed response to a raw-sample query: {e}") from None


_RESULT_TYPE = re.compile(rb'"resultType"\s*:\s*"(\w+)"')


def range_series(client: PrometheusClient, promql: str, start: datetime, end: datetime,
                 step: float) -> Iterator[tuple[dict[str, str], list]]:
    """POST /api/v1/query_range, series by series as (labels, [[t, "v"], ...]), without holding the whole
    response (Prometheus' compact layout is cut between series, as prometheus.py does for vectors)."""
    url = api_url(client._url, "/api/v1/query_range")
    form = {"query": promql, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}",
            "step": f"{step:.3f}", "timeout": f"{client._timeout:g}s", "nocache": "1"}
    try:
        with deadline(client._timeout), client._client.stream("POST", url, data=form) as resp:
            if resp.status_code != 200:
                resp.read()
                raise client._api_error(resp.status_code, resp.text)
            yield from _matrix(resp.iter_bytes())
    except httpx.HTTPError as e:
        raise client._transport_error(e) from None
    except (orjson.JSONDecodeError, MalformedResult, KeyError, TypeError) as e:
        raise PrometheusError(f"malformed response to a range query: {e}") from None


def _matrix(chunks: Iterator[bytes]) -> Iterator[tuple[dict[str, str], list]]:
    it = iter(chunks)
    head = b""
    while (m := _RESULT_START.search(head)) is None or len(head) < m.end() + len(_SEP) + 1:
        chunk = next(it, None)
        if chunk is None:
            break
        head += chunk
    if m is None:
        body = orjson.loads(head)  # an error document, or an odd layout: small or not, read whole
        yield from _whole(body)
        return
    kind = _RESULT_TYPE.search(head, 0, m.start())
    if kind is None or kind.group(1) != b"matrix":
        raise PrometheusError(f"counter mode expected a matrix from a range query, got {head[:200]!r}")
    buf = head[m.end():]
    if not (buf.startswith(_SEP[1:]) or buf.lstrip().startswith(b"]")):
        body = orjson.loads(head + b"".join(it))
        yield from _whole(body)
        return

    def series(part: bytes):
        for s in orjson.loads(b"[" + part + b"]"):
            yield s.get("metric") or {}, s["values"]

    for chunk in it:
        buf += chunk
        cut = buf.rfind(_SEP)
        if cut > 0:
            yield from series(buf[:cut])
            buf = buf[cut + 1:]
    last = _last_series(buf)
    if last:
        yield from series(last)


def _whole(body: dict) -> Iterator[tuple[dict[str, str], list]]:
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus {body.get('errorType') or 'error'}: {body.get('error')}")
    if body["data"]["resultType"] != "matrix":
        raise PrometheusError(f"counter mode expected a matrix, got a {body['data']['resultType']}")
    for s in body["data"]["result"]:
        yield s.get("metric") or {}, s["values"]
