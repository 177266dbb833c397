"""Shared fixtures: real Redis, a real Prometheus (and VictoriaMetrics) scraping a known
exporter, an OpenMeter-compatible sink, a Redis Sentinel cluster, a TLS Redis and the local
RabbitMQ. See tests/support/ for the parts."""

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
from tests.support.rabbitmq import AMQP_URL, RabbitVhost, amqp_answers  # noqa: E402
from tests.support.redis_server import system_redis_binary  # noqa: E402
from tests.support.sentinel import SentinelCluster  # noqa: E402
from tests.support.tls_redis import TlsRedis  # noqa: E402
from tests.support.victoria_metrics import VictoriaMetricsServer, find_victoria_metrics  # noqa: E402

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


def _binary_or_skip(find, *args) -> str:
    """The binary `find(*args)` names; the test skips (with bin/test's hint) when it is missing."""
    try:
        return find(*args)
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def victoria_metrics(exporter: CounterExporter) -> VictoriaMetricsServer:
    """A real single-node VictoriaMetrics scraping `exporter` every 1s, with its first scrape in
    (query API at ``victoria_metrics.url``; see tests/support/victoria_metrics.py for its flags)."""
    binary = _binary_or_skip(find_victoria_metrics)
    with VictoriaMetricsServer([exporter.host_port], scrape_interval="1s", binary=binary) as vm:
        vm.wait_for_scrape(timeout=30)
        vm.wait_for("mw_active_sessions", timeout=30)
        yield vm


@pytest.fixture(params=["prometheus", "victoria_metrics"])
def promql_backend(request) -> PrometheusServer | VictoriaMetricsServer:
    """The test once against Prometheus and once against VictoriaMetrics (the session servers above)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def sentinel_cluster() -> SentinelCluster:
    """A fresh primary + replica + 3 sentinels (master name "mymaster", down after 1s)."""
    _binary_or_skip(system_redis_binary, "redis-server")
    _binary_or_skip(system_redis_binary, "redis-sentinel")
    with SentinelCluster("mymaster") as cluster:
        yield cluster


@pytest.fixture
def tls_redis() -> TlsRedis:
    """A fresh TLS-only redis-server with an ACL user: ``tls_redis.url`` (rediss://user:pass@...),
    ``tls_redis.ca_file``, ``tls_redis.redis_kwargs()``."""
    _binary_or_skip(system_redis_binary, "redis-server")
    with TlsRedis() as server:
        yield server


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """``amqp://guest:guest@127.0.0.1:5672//``, the machine's RabbitMQ (bin/test starts one)."""
    if not amqp_answers():
        pytest.skip("no AMQP broker answers on 127.0.0.1:5672 (bin/test starts the local rabbitmq-server)")
    return AMQP_URL


@pytest.fixture
def rabbitmq_vhost(rabbitmq_url: str) -> RabbitVhost:
    """A vhost of this test's own on the local RabbitMQ (``.url``, ``.name``), deleted after it;
    without rabbitmqctl it is the default vhost (``.isolated`` False): name queues with ``.queue(name)``."""
    with RabbitVhost() as vhost:
        yield vhost
