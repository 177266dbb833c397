"""RabbitMQ as the broker (meterworker.broker_url: amqp://, the state in Redis): a query worker SIGKILLed
while Prometheus hangs on its task. RabbitMQ hands the unacknowledged message to a second worker as soon
as the dead one's connection drops, and the tick is delivered exactly once. stall_timeout is an hour
here, so beat cannot be what brings the tick back: the redelivered message (the same task id, hence the
same holder of the tick's lease) is. Real RabbitMQ in a vhost of the test's own, real Redis, beat and
workers as processes."""

import re
import subprocess
import time

import pytest
import redis

from tests.support import OpenMeterSink
from tests.support.mwproc import Proc, meterworker, wait_until, write_config
from tests.support.rabbitmq import rabbitmqctl_binary
from tests.test_recovery import Prometheus, assert_delivered_once, the_tick

NAME = "rabbit"


def worker(tmp_path, cfg, name):
    return Proc(meterworker("worker", "-c", str(cfg), "-Q", "query,send", "--concurrency", "1", "-n", f"{name}@%h",
                            "--loglevel", "INFO"), tmp_path / f"{name}.log", cwd=tmp_path)


def queue_types(vhost: str) -> dict[str, str]:
    listed = subprocess.run([rabbitmqctl_binary(), "-q", "list_queues", "-p", vhost, "name", "type"],
                            capture_output=True, text=True, timeout=30).stdout
    return dict(line.split("\t", 1) for line in listed.splitlines()[1:] if "\t" in line)


def received_ids(log: str) -> list[str]:
    return re.findall(r"Task meterworker\.query\[([0-9a-f-]+)\] received", log)


def test_a_query_worker_sigkilled_mid_task_has_its_tick_redelivered_by_rabbitmq(tmp_path, redis_url, rabbitmq_vhost):
    if not rabbitmq_vhost.isolated:
        pytest.skip(f"needs a vhost of its own for the queues 'query'/'send' ({rabbitmq_vhost.problem})")
    prometheus = Prometheus(hold=1, hold_for=120)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    with OpenMeterSink() as sink:
        cfg = write_config(tmp_path / "collector.yaml", prometheus.url, sink.url, [{"name": "q", "promql": "up"}],
                           schedule="@every 1h", offset="0s", redis_url=redis_url, name=NAME,
                           http={"batching": {"count": 100, "period": "200ms"}},
                           extra={"meterworker": {"broker_url": rabbitmq_vhost.url, "stall_timeout": "1h",
                                                  "lock_timeout": "3s"}})
        first = worker(tmp_path, cfg, "first")
        procs = [first]
        try:
            wait_until(lambda: "sweeper started" in first.output(), 60, "the first worker to start", first)
            tick = the_tick(time.time())
            procs.append(Proc(meterworker("beat", "-c", str(cfg), "--loglevel", "INFO"), tmp_path / "beat.log",
                              cwd=tmp_path))
            wait_until(lambda: prometheus.requests >= 1, 30, "the query task to ask Prometheus", procs[-1])
            holder = r.get(f"meterworker:{NAME}:running:q:{tick}")
            assert holder and received_ids(first.output()) == [holder], first.output()[-3000:]
            first.kill()
            killed = time.monotonic()
            second = worker(tmp_path, cfg, "second")
            procs.append(second)
            wait_until(lambda: r.get(f"meterworker:{NAME}:completed:q") == str(tick), 60,
                       "the tick to complete on the second worker", second)
            print(f"SIGKILL of the query worker mid-task: tick completed {time.monotonic() - killed:.1f}s later "
                  "(a new worker's start included; stall_timeout 1h)")
            sink.wait_for_events(3, timeout=20)
            time.sleep(1)
            types = queue_types(rabbitmq_vhost.name)
        finally:
            for p in procs[::-1]:
                p.stop() if p.alive() else None
            prometheus.close()
        assert_delivered_once(sink, tick)
        # The second worker ran the very message the first one held; beat did not dispatch the tick again.
        assert received_ids(second.output()) == [holder], second.output()[-3000:]
        assert "3 events queued" in second.output()
        assert "dispatched it again" not in procs[1].output()
        assert prometheus.requests == 2
        assert types.get("query") == "quorum" and types.get("send") == "quorum", types
        assert not r.exists(f"meterworker:{NAME}:running:q:{tick}")
        assert r.zcard(f"meterworker:{NAME}:pending:q") == 0
