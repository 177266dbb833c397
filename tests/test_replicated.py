"""meterworker on a replicated Redis (a primary, a replica and three Sentinels, real processes) with
meterworker.redis_min_replicas: 1: the writes that matter are confirmed on the replica, and a write the
replica cannot confirm makes the task retry, with the reason in `status`, and loses nothing."""

import os
import signal
import subprocess
import sys
import time

import redis

from tests.support import OpenMeterSink
from tests.support.mwproc import Proc, meterworker, wait_until, write_config
from tests.test_hostile import FakeServer, run, vector

SERIES = [({"instance": f"customer-{n}"}, str(n + 1)) for n in range(3)]
TICK = 1795860000


def sentinel_config(tmp_path, cluster, prometheus_url, sink_url, name="repl", schedule="@every 1h", offset="2s",
                    **meterworker_extra):
    return write_config(
        tmp_path / "collector.yaml", prometheus_url, sink_url, [{"name": "q", "promql": "up"}],
        schedule=schedule, offset=offset, name=name, http={"batching": {"count": 100, "period": "200ms"}},
        extra={"meterworker": {"redis_url": ";".join(f"{u}/0" for u in cluster.sentinel_urls()),
                               "redis_sentinel": {"master_name": cluster.master_name},
                               "query_retry_period": "1s", **meterworker_extra}})


def send_query(cfg, tick):
    r = subprocess.run([sys.executable, "-c",
                        "from meterworker.app import app; from meterworker.keys import QUERY_TASK;"
                        "from meterworker import runtime;"
                        f"runtime.current().state.mark_pending('q', {tick});"  # as beat does
                        f"app.send_task(QUERY_TASK, args=['q', {tick}], queue='query')"],
                       env={**os.environ, "METERWORKER_CONFIG": str(cfg)}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_writes_are_confirmed_on_the_replica_and_a_paused_replica_makes_the_task_retry(tmp_path, sentinel_cluster):
    prom = FakeServer(lambda h, body: (200, vector(*SERIES)))
    cluster = sentinel_cluster
    replica_port = cluster.node_ports[1]
    with OpenMeterSink() as sink:
        cfg = sentinel_config(tmp_path, cluster, prom.url, sink.url, redis_min_replicas=1,
                              redis_replica_timeout="300ms")
        worker = Proc(meterworker("worker", "-c", str(cfg), "-Q", "query,send", "--concurrency", "2",
                                  "--loglevel", "INFO"), tmp_path / "worker.log", cwd=tmp_path)
        replica = redis.Redis("127.0.0.1", replica_port, decode_responses=True)
        try:
            wait_until(lambda: "sweeper started" in worker.output(), 60, "the worker to start", worker)
            send_query(cfg, TICK)
            sink.wait_for_events(3, timeout=30)
            wait_until(lambda: replica.get("meterworker:repl:completed:q") == str(TICK), 20,
                       "the completed tick on the replica", worker)
            assert replica.exists("meterworker:repl:replication-probe")

            # The replica stops answering: WAIT gets no confirmation within 300 ms.
            os.kill(cluster._procs[replica_port].pid, signal.SIGSTOP)
            try:
                send_query(cfg, TICK + 3600)
                wait_until(lambda: "confirmed by 0 of the 1 Redis replica" in run("status", "-c", str(cfg)).stdout,
                           30, "status to show the write the replica did not confirm", worker)
                status = run("status", "-c", str(cfg)).stdout
                assert "FAILING" in status and "pending: 1" in status, status
                time.sleep(2)  # a few retries, each refused
            finally:
                os.kill(cluster._procs[replica_port].pid, signal.SIGCONT)

            wait_until(lambda: replica.get("meterworker:repl:completed:q") == str(TICK + 3600), 30,
                       "the second tick to complete, confirmed", worker)
            time.sleep(1)
            status = run("status", "-c", str(cfg)).stdout
            assert "pending: 0" in status and "FAILING" not in status, status
        finally:
            worker.stop()
            prom.close()
        log = worker.output()
        # Every series of both ticks at the sink, once.
        assert not sink.duplicates(), sink.duplicates()
        got = sorted((e["subject"], e["time"]) for e in sink.events)
        assert len(got) == 6 and len({t for _, t in got}) == 2, got
        assert sorted({s for s, _ in got}) == [f"customer-{n}" for n in range(3)]
        assert "retrying in" in log and "Traceback" not in log, log[-3000:]
