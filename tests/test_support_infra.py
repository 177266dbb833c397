"""The infrastructure parts start and answer: VictoriaMetrics scraping the exporter, a
Sentinel fail-over, a TLS Redis with an ACL user, the local RabbitMQ through kombu."""

from __future__ import annotations

import socket
import time

import kombu
import pytest
import redis
from redis.sentinel import Sentinel

from tests.support.rabbitmq import AMQP_URL

# -- VictoriaMetrics --------------------------------------------------------------


def test_victoria_metrics_returns_the_exporters_series(victoria_metrics, exporter):
    assert victoria_metrics.values("mw_active_sessions") == exporter.sessions
    series = victoria_metrics.query("mw_requests_total")["result"]
    assert {s["metric"]["customer"] for s in series} == set(exporter.customers)
    assert {s["metric"]["job"] for s in series} == {"mw"}
    # -search.latencyOffset=0s: "now" sees the newest samples, not those of 30s ago.
    newest = float(victoria_metrics.query("max(timestamp(mw_requests_total))")["result"][0]["value"][1])
    assert time.time() - newest < 5


def test_victoria_metrics_query_range_keeps_the_asked_timestamps(victoria_metrics):
    # 60 points would be aligned to multiples of the step for the cache; -search.disableCache
    # turns that off, so every point sits at start + k * step.
    # A range result needs two samples of a series (one is no rate, no interval to detect).
    victoria_metrics.wait_for("count_over_time(mw_active_sessions[1m]) >= 2", timeout=10)
    end = time.time()
    start = end - 59 - 0.3
    result = victoria_metrics.query_range("mw_active_sessions", start, end, 1)["result"]
    assert result
    for s in result:
        for ts, _ in s["values"]:
            offset = (ts - start) % 1.0
            assert min(offset, 1.0 - offset) < 0.002, (ts, start)


# -- Redis Sentinel ---------------------------------------------------------------


def test_sentinel_failover_promotes_the_replica(sentinel_cluster):
    c = sentinel_cluster
    assert c.primary_address() == c.initial_primary
    (replica,) = c.replica_addresses()
    sentinel = Sentinel(c.sentinels, socket_timeout=2)
    sentinel.master_for("mymaster", socket_timeout=2).set("k", "before")
    redis.Redis(*c.initial_primary).wait(1, 2000)  # on the replica before the switch

    assert c.failover() == c.initial_primary
    assert c.wait_for_new_primary(timeout=15) == replica
    assert sentinel.discover_master("mymaster") == replica
    assert sentinel.master_for("mymaster", socket_timeout=2).get("k") == b"before"
    assert all(u.startswith("sentinel://127.0.0.1:") for u in c.sentinel_urls())


def test_sentinel_replaces_a_killed_primary(sentinel_cluster):
    c = sentinel_cluster
    (replica,) = c.replica_addresses()
    assert c.kill_primary() == c.initial_primary
    assert c.wait_for_new_primary(timeout=15) == replica
    assert redis.Redis(*replica).info("replication")["role"] == "master"


# -- TLS Redis -------------------------------------------------------------------


def test_tls_redis_answers_with_the_ca_and_the_acl_user(tls_redis):
    assert tls_redis.url.startswith(f"rediss://meterworker:{tls_redis.password}@127.0.0.1:")
    client = redis.Redis.from_url(tls_redis.url, ssl_ca_certs=tls_redis.ca_file, socket_timeout=5)
    assert client.set("k", "v") and client.get("k") == b"v"
    assert client.acl_whoami() == "meterworker"
    client.close()
    # The CA is needed, the password is needed, there is no plain-text port.
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        redis.Redis.from_url(tls_redis.url, socket_connect_timeout=2).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(tls_redis.url.replace(tls_redis.password, "wrong"), **tls_redis.redis_kwargs()).ping()
    with socket.create_connection(("127.0.0.1", tls_redis.port), timeout=2) as s:
        s.sendall(b"PING\r\n")
        s.settimeout(2)
        try:
            reply = s.recv(16)
        except (TimeoutError, ConnectionResetError):
            reply = b""
        assert not reply.startswith(b"+PONG")


# -- RabbitMQ ---------------------------------------------------------------------


def test_rabbitmq_round_trip_through_kombu_in_a_vhost_of_its_own(rabbitmq_url, rabbitmq_vhost):
    assert rabbitmq_url == AMQP_URL == "amqp://guest:guest@127.0.0.1:5672//"
    name = rabbitmq_vhost.queue("smoke")
    with kombu.Connection(rabbitmq_vhost.url, connect_timeout=5) as conn:
        queue = kombu.Queue(name, routing_key=name)
        with conn.Producer() as producer:
            producer.publish({"n": 1}, routing_key=name, declare=[queue], retry=False)
        message = queue(conn.default_channel).get(no_ack=True)
        assert message is not None and message.payload == {"n": 1}
    if rabbitmq_vhost.isolated:
        assert rabbitmq_vhost.url.endswith("/" + rabbitmq_vhost.name)
        # The queue lives in the test's vhost, not in the default one.
        with kombu.Connection(rabbitmq_url, connect_timeout=5) as conn:
            with pytest.raises(conn.channel_errors):
                kombu.Queue(name)(conn.channel()).queue_declare(passive=True)
