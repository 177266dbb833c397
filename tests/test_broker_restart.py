"""Workers survive a Redis restart (meterworker/broker_fix.py works around a bug of Celery's Redis transport:
without it the worker exits with "Unrecoverable error: AttributeError('NoneType' object has no attribute
'hostname')" or '... 'client'')."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kombu
import redis
from celery import Celery

from meterworker import broker_fix
from tests.support.mwproc import Proc, celery, wait_until, write_config
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
CELERYCONFIG = f"""
import importlib.util as _u
_s = _u.spec_from_file_location("_cc", {str(ROOT / "celeryconfig.py")!r})
_m = _u.module_from_spec(_s); _s.loader.exec_module(_m)
globals().update({{k: v for k, v in vars(_m).items() if not k.startswith("_")}})
broker_transport_options = {{"visibility_timeout": 4, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}}
"""
REPORT = "restart-report"


def fake_prometheus() -> ThreadingHTTPServer:
    """Answers every query with an empty vector."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_query_worker_survives_a_redis_restart_and_runs_the_retry_it_held(tmp_path):
    (tmp_path / "celeryconfig.py").write_text(CELERYCONFIG)
    prometheus = fake_prometheus()
    with RedisServer(tmp_path / "redis") as server:
        cfg = write_config(tmp_path / "c.yaml", f"http://127.0.0.1:{prometheus.server_address[1]}",
                           "http://127.0.0.1:9", [{"name": "q", "promql": "up"}], redis_url=server.url, name="restart")
        env = {"METERWORKER_CONFIG": str(cfg), "METERWORKER_REDIS_URL": server.url}
        worker = Proc(celery("worker", "-Q", "query", "-n", "q@%h", "-c", "1", "--without-mingle",
                             "--without-gossip", "--loglevel", "INFO"), tmp_path / "worker.log", env, cwd=tmp_path)
        tick = (int(time.time()) // 2) * 2 - 10
        try:
            wait_until(lambda: "ready." in worker.output(), 60, "the worker to start", worker)
            # A task waiting for its countdown, as a query retry does, while Redis restarts.
            Celery(broker=server.url).send_task("meterworker.query", args=("q", tick, REPORT), queue="query",
                                                countdown=3)
            wait_until(lambda: "received" in worker.output(), 20, "the worker to hold the task", worker)
            server.stop()
            time.sleep(1)
            server.start()
            wait_until(lambda: worker.output().count("Connected to") >= 2 or not worker.alive(), 30,
                       "the worker to reconnect", worker)
            assert worker.alive(), worker.output()[-3000:]
            r = redis.Redis.from_url(server.url)
            wait_until(lambda: r.hexists(REPORT, f"q:{tick}"), 30, "the held task to run", worker)
        finally:
            worker.stop()
            prometheus.shutdown()


def test_acknowledging_on_a_channel_closed_by_a_lost_connection_is_a_connection_error(tmp_path):
    """What a task that finishes after its connection was lost does; Celery logs a connection error and goes
    on (the message comes back after the visibility timeout), but any other error stops the worker."""
    broker_fix.install()
    with RedisServer(tmp_path / "redis") as server:
        conn = kombu.Connection(server.url)
        queue = kombu.Queue("q", routing_key="q")
        with conn.Producer() as producer:
            producer.publish({"x": 1}, routing_key="q", declare=[queue])
        channel = conn.channel()
        message = queue(channel).get(no_ack=False)
        channel.qos._delivered.clear()  # its restore at close could not reach Redis: Redis was down then
        channel.close()
        try:
            message.ack()
        except conn.connection_errors as e:
            assert "lost" in str(e)
        else:
            raise AssertionError("acknowledged through a closed channel")
        conn.release()
