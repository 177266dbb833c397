"""Counter mode's HTTP side: an instant query's vector as (labels, value), a range selector's raw samples as
(labels, [(t, value), ...]), through the configured Prometheus client (its auth, TLS and deadline)."""

from datetime import datetime
from typing import Iterator

from meterworker.query.prometheus import PrometheusClient, PrometheusError


def instant(client: PrometheusClient, promql: str, at: datetime) -> Iterator[tuple[dict[str, str], str]]:
    with client.stream(promql, at) as result:
        if result.result_type != "vector":
            raise PrometheusError(f"counter mode expected a vector from {promql[:80]!r}, got a {result.result_type}")
        yield from result.series


def matrix(client: PrometheusClient, promql: str, at: datetime) -> list[tuple[dict[str, str], list]]:
    """The raw samples of a range selector (`selector[5m]`) at `at`, series by series."""
    with client.stream(promql, at, expect="matrix") as result:
        return list(result.series)
