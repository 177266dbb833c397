"""A worker survives a Redis restart while it holds unacknowledged messages (a query retry waiting for its
countdown), and the message runs afterwards. Without meterworker/broker_fix.py the worker exits with
"Unrecoverable error: AttributeError('NoneType' object has no attribute 'hostname')"."""

import time
from pathlib import Path

import redis
from celery import Celery

from tests.support.mwproc import Proc, celery, wait_until, write_config
from tests.support.redis_server import RedisServer

CELERYCONFIG = """
import importlib.util as _u, pathlib as _p
_s = _u.spec_from_file_location("_cc", str(_p.Path({root!r}) / "celeryconfig.py"))
_m = _u.module_from_spec(_s); _s.loader.exec_module(_m)
globals().update({{k: v for k, v in vars(_m).items() if not k.startswith("_")}})
broker_transport_options = {{"visibility_timeout": 3, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}}
"""


def test_a_query_worker_survives_a_redis_restart_and_its_waiting_retry_runs(tmp_path, prometheus, exporter):
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "celeryconfig.py").write_text(CELERYCONFIG.format(root=str(root)))
    with RedisServer(tmp_path / "redis") as server:
        cfg = write_config(tmp_path / "c.yaml", prometheus.url, "http://127.0.0.1:9", [
            {"name": "sessions", "promql": "mw_active_sessions"}], redis_url=server.url, name="restart")
        env = {"METERWORKER_CONFIG": str(cfg), "METERWORKER_REDIS_URL": server.url}
        worker = Proc(celery("worker", "-Q", "query", "-n", "q@%h", "-c", "1", "--without-mingle",
                             "--without-gossip", "--loglevel", "INFO"), tmp_path / "worker.log", env, cwd=tmp_path)
        try:
            wait_until(lambda: "ready." in worker.output(), 60, "the worker to start", worker)
            client = Celery(broker=server.url)
            tick = (int(time.time()) // 2) * 2 - 4
            client.send_task("meterworker.query", args=("sessions", tick, "restart-report"), queue="query",
                             countdown=3)  # held by the worker, unacknowledged, until its countdown
            wait_until(lambda: "received" in worker.output(), 20, "the worker to hold the task", worker)
            server.stop()
            time.sleep(1)
            server.start()
            wait_until(lambda: worker.output().count("Connected to") >= 2 or not worker.alive(), 30,
                       "the worker to reconnect", worker)
            assert worker.alive(), worker.output()[-3000:]
            r = redis.Redis.from_url(server.url)
            wait_until(lambda: r.sismember("restart-report", f"sessions:{tick}"), 30,
                       "the held task to be delivered again and run", worker)
        finally:
            worker.stop()
