"""Counter mode's HTTP side: an instant query's vector as (labels, value), a range selector's raw samples as
(labels, [(t, value), ...]), through the configured Prometheus client (its auth, TLS and deadline)."""

from datetime import datetime
from typing import Iterator

import httpx
import orjson

from meterworker.deadline import deadline
from meterworker.query.prometheus import PrometheusClient, PrometheusError


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
