"""Shared fixtures: real Redis, a real Prometheus scraping a known exporter, an
OpenMeter-compatible sink. See tests/support/ for the parts."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `from tests.support import ...` also under plain `pytest`
    sys.path.insert(0, str(ROOT))

from tests.support import CounterExporter, OpenMeterSink, PrometheusServer  # noqa: E402

REDIS_BASE = os.environ.get("METERWORKER_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("METERWORKER_TEST_REDIS_DB", "13"))
# Under pytest-xdist each worker process (gw0, gw1, ...) gets a DB of its own: 13, 12, 11, ...
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
TEST_DB = REDIS_DB - int(_WORKER[2:] or 0)


def _redis_db_url(base: str, db: int) -> str:
    # Any DB number in the base URL is replaced: the tests own a DB of their own.
    return urlunsplit(urlsplit(base)._replace(path=f"/{db}"))


@pytest.fixture
def redis_url() -> str:
    """URL of a dedicated DB (13, or one per xdist worker) on the real Redis, flushed before and after the test."""
    url = _redis_db_url(REDIS_BASE, TEST_DB)
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.ping()
        problem = None
    except redis.RedisError as e:
        problem = str(e)
    if problem:
        pytest.fail(
            f"Redis at {url} does not answer ({problem}). The tests need a real Redis: run them with "
            "bin/test (it starts one on 127.0.0.1:6379) or point METERWORKER_TEST_REDIS at one.",
            pytrace=False,
        )
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def exporter() -> CounterExporter:
    """The known-values exporter (rates/sessions: see tests/support/exporter.py)."""
    with CounterExporter() as exp:
        yield exp


@pytest.fixture(scope="session")
def prometheus(exporter: CounterExporter) -> PrometheusServer:
    """A real Prometheus scraping `exporter` every 1s, with its first scrape in."""
    with PrometheusServer([exporter.host_port], scrape_interval="1s") as prom:
        prom.wait_for("mw_active_sessions", timeout=30)
        yield prom


@pytest.fixture
def sink() -> OpenMeterSink:
    """A fresh OpenMeter-compatible ingest endpoint; `sink.url` is its base URL."""
    with OpenMeterSink() as s:
        yield s
