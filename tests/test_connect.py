"""meterworker/connect on real parts: a Sentinel deployment (fail-over and SIGKILL of the primary),
a TLS-only Redis with an ACL user, RabbitMQ with quorum queues, Redis WAIT. Celery round trips go
through a real worker process running a tiny app built with celery_settings()."""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kombu
import pytest
import redis
from celery import Celery

from meterworker.config import Settings
from meterworker.connect import (
    ReplicationError, celery_settings, confirm_replicated, connection_options, pinned, redis_client,
)
from tests.support.mwproc import Proc
from tests.support.rabbitmq import rabbitmqctl_binary
from tests.support.tls_redis import TlsRedis

ROOT = Path(__file__).resolve().parent.parent
APP = '''
import json, os
from celery import Celery
from meterworker import broker_fix
from meterworker.config import Settings
from meterworker.connect import celery_settings, connection_options

broker_fix.install()
app = Celery("mwconn")
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True,
                task_default_queue="query", task_routes={"mwconn.*": {"queue": "query"}},
                broker_transport_options={"visibility_timeout": 3600})
app.conf.update(celery_settings(connection_options(Settings(**json.loads(os.environ["MWCONN_SETTINGS"])), {}),
                                app.conf.broker_transport_options))

@app.task(name="mwconn.add", bind=True, max_retries=3)
def add(self, x, retry_once=False):
    if retry_once and self.request.retries == 0:
        raise self.retry(countdown=1)
    return x + 1
'''


def make_app(settings: dict) -> Celery:
    app = Celery("mwconn-client")
    app.conf.update(task_default_queue="query", task_routes={"mwconn.*": {"queue": "query"}},
                    broker_transport_options={"visibility_timeout": 3600})
    app.conf.update(celery_settings(connection_options(Settings(**settings), {}), app.conf.broker_transport_options))
    return app


def start_worker(tmp_path: Path, settings: dict) -> Proc:
    (tmp_path / "mwconn_app.py").write_text(APP)
    cmd = [sys.executable, "-m", "celery", "-A", "mwconn_app", "worker", "-Q", "query", "-P", "solo",
           "--without-gossip", "--without-mingle", "-l", "info"]
    env = {"MWCONN_SETTINGS": json.dumps(settings), "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    return Proc(cmd, tmp_path / "worker.log", env=env, cwd=tmp_path)


def round_trip(app: Celery, worker: Proc, x: int, timeout: float = 20, **kw) -> int:
    try:
        return app.send_task("mwconn.add", (x,), kw).get(timeout=timeout)
    except Exception as e:
        raise AssertionError(f"round trip failed: {e!r}\n{worker.output()[-4000:]}") from e


def writes_resume(client: redis.Redis, cluster, old, timeout: float, replicas: int = 0) -> float:
    """Seconds until a SET through `client` (retried every 50 ms, as a caller would) lands on a new
    primary: one the Sentinels name, other than `old`, that has the value written."""
    start = time.monotonic()
    i = 0
    while True:
        i += 1
        try:
            if replicas:
                with pinned(client) as one:
                    one.set("mw:resume-confirmed", i)
                    confirm_replicated(one, replicas, 200)
                key = "mw:resume-confirmed"
            else:
                client.set("mw:resume", i)
                key = "mw:resume"
            primary = cluster.primary_address()
            if primary != old and redis.Redis(*primary, socket_timeout=1).get(key) == str(i).encode():
                return time.monotonic() - start
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, ReplicationError, RuntimeError):
            pass
        if time.monotonic() - start > timeout:
            raise AssertionError(f"writes did not resume on a new primary within {timeout}s\n{cluster.log_tail()}")
        time.sleep(0.05)


def sentinel_settings(cluster) -> dict:
    return {"redis_url": ";".join(f"{u}/0" for u in cluster.sentinel_urls()),
            "redis_sentinel": {"master_name": cluster.master_name}}


def test_sentinel_celery_round_trip_follows_failover_and_wait_confirms(sentinel_cluster, tmp_path):
    settings = sentinel_settings(sentinel_cluster)
    opts = connection_options(Settings(**settings), {})
    client = redis_client(opts, socket_timeout=2)
    worker = start_worker(tmp_path, settings)
    try:
        app = make_app(settings)
        assert round_trip(app, worker, 1) == 2

        with pinned(client) as one:
            one.set("mw:replicated", "1")
            assert confirm_replicated(one, 1, 2000) == 1
        with pytest.raises(TypeError, match="one connection"):
            confirm_replicated(client, 1, 100)

        confirming = redis_client(opts, socket_timeout=2)
        old = sentinel_cluster.failover()
        with ThreadPoolExecutor(1) as pool:
            confirmed = pool.submit(writes_resume, confirming, sentinel_cluster, old, 25, replicas=1)
            resumed = writes_resume(client, sentinel_cluster, old, timeout=25)
            confirmed = confirmed.result()
        sentinel_cluster.wait_for_new_primary()
        print(f"SENTINEL FAILOVER: writes resumed after {resumed:.2f}s, writes confirmed by a replica after "
              f"{confirmed:.2f}s")
        # The old primary takes writes until the Sentinels demote it (their INFO period is 10 s), and the
        # new one has no replica to confirm writes until then (this deployment has one replica).
        assert resumed < 15 and confirmed < 15
        confirming.close()

        assert round_trip(make_app(settings), worker, 41, timeout=30) == 42
    finally:
        worker.stop()
        client.close()


def test_sigkill_of_the_primary(sentinel_cluster):
    client = redis_client(connection_options(Settings(**sentinel_settings(sentinel_cluster)), {}),
                          socket_timeout=1, socket_connect_timeout=1)
    client.set("mw:before", "1")
    old = sentinel_cluster.kill_primary()
    resumed = writes_resume(client, sentinel_cluster, old, timeout=20)
    print(f"SIGKILL of the primary: writes resumed after {resumed:.2f}s "
          f"(sentinels: down-after {sentinel_cluster.down_after_ms} ms)")
    assert resumed < 10
    client.close()


def test_wait_without_replicas_is_an_error(redis_url):
    client = redis.Redis.from_url(redis_url)
    with pinned(client) as one:
        one.set("mw:k", "1")
        assert confirm_replicated(one, 0, 100) == 0  # off: no WAIT
        start = time.monotonic()
        with pytest.raises(ReplicationError, match="confirmed by 0 of the 1 Redis replica"):
            confirm_replicated(one, 1, 100)
        assert 0.09 < time.monotonic() - start < 2


def _tls_checks(server: TlsRedis, settings: dict):
    opts = connection_options(Settings(**settings), {})
    with redis_client(opts, socket_timeout=5) as c:
        c.set("mw:tls", "1")
        assert c.acl_whoami() == server.username
    app = make_app(settings)
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        with conn.Producer() as producer:
            producer.publish({"x": 1}, routing_key="mw-tls-probe", declare=[kombu.Queue("mw-tls-probe")])
        assert conn.SimpleQueue("mw-tls-probe").get(timeout=5).payload == {"x": 1}
    app.backend.set("mw:tls-backend", b"ok")
    assert app.backend.get("mw:tls-backend") == b"ok"


def test_tls_with_ca_file_and_acl_user(tls_redis):
    url = f"{tls_redis.url}?ssl_cert_reqs=required&ssl_ca_certs={tls_redis.ca_file}"
    _tls_checks(tls_redis, {"redis_url": url})
    # the same through meterworker.redis_tls instead of URL parameters
    _tls_checks(tls_redis, {"redis_url": tls_redis.url, "redis_tls": {"ca_file": tls_redis.ca_file}})
    # rediss:// without a CA verifies against the system's CAs, which do not know this one
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        redis_client(connection_options(Settings(redis_url=tls_redis.url), {})).ping()


def test_tls_with_a_client_certificate():
    with TlsRedis(require_client_cert=True) as server:
        url = (f"{server.url}?ssl_cert_reqs=required&ssl_ca_certs={server.ca_file}"
               f"&ssl_certfile={server.client_cert}&ssl_keyfile={server.client_key}")
        _tls_checks(server, {"redis_url": url})
        without = f"{server.url}?ssl_cert_reqs=required&ssl_ca_certs={server.ca_file}"
        with pytest.raises(redis.ConnectionError):
            redis_client(connection_options(Settings(redis_url=without), {}), socket_timeout=3).ping()


def test_rabbitmq_broker_quorum_queues_round_trip(rabbitmq_vhost, redis_url, tmp_path):
    if not rabbitmq_vhost.isolated:
        pytest.skip(f"needs a vhost of its own for the queues 'query'/'send' ({rabbitmq_vhost.problem})")
    settings = {"redis_url": redis_url, "broker_url": rabbitmq_vhost.url}
    worker = start_worker(tmp_path, settings)
    try:
        app = make_app(settings)
        assert round_trip(app, worker, 1) == 2
        # a retry with a countdown goes through RabbitMQ's native delayed delivery
        assert round_trip(app, worker, 10, retry_once=True) == 11
        listed = subprocess.run([rabbitmqctl_binary(), "-q", "list_queues", "-p", rabbitmq_vhost.name,
                                 "name", "type", "durable"], capture_output=True, text=True, timeout=30).stdout
        types = dict(line.split("\t", 1) for line in listed.splitlines()[1:])
        assert types["query"] == "quorum\ttrue", listed
    finally:
        worker.stop()
