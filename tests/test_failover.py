"""Beat and workers on a replicated Redis (a primary, two replicas, three Sentinels; broker and state
alike on the sentinel:// URL, meterworker.redis_min_replicas: 1) through a SENTINEL FAILOVER and then
a SIGKILL of the primary: every window of the query is delivered once afterwards, and delivery resumes
within RESUME_BOUND seconds of each fault.

The oracle is the schedule's arithmetic: on `@every 2s` with `query_offset: 1s`, tick t (a multiple of
2 s) bills the window [t - 3 s, t - 1 s) of each of the 3 series the fake Prometheus answers. The sink
deduplicates by event id, as OpenMeter does: an id accepted twice (a request whose record the killed
primary took with it) is counted once, and printed; a window under two different ids would be a
double bill and fails the test.
"""

import time
from collections import Counter
from datetime import datetime

import pytest
import redis

from tests.conftest import _binary_or_skip
from tests.support import OpenMeterSink
from tests.support.mwproc import Proc, meterworker, wait_until
from tests.support.redis_server import system_redis_binary
from tests.support.sentinel import SentinelCluster
from tests.test_hostile import FakeServer, vector
from tests.test_replicated import sentinel_config

SERIES = [({"instance": f"customer-{n}"}, str(n + 1)) for n in range(3)]
EVERY, OFFSET = 2, 1
# SENTINEL FAILOVER: writes go to the old primary until the Sentinels demote it (~10 s, their INFO
# period), and meterworker's confirmations fail until then; SIGKILL: down-after 1 s plus the election.
RESUME_BOUND = 25.0


def window_start(event) -> int:
    return int(datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp())


@pytest.fixture
def cluster():
    _binary_or_skip(system_redis_binary, "redis-server")
    _binary_or_skip(system_redis_binary, "redis-sentinel")
    with SentinelCluster("mymaster", replicas=2) as c:
        yield c


def test_every_window_is_delivered_once_through_a_failover_and_a_sigkill_of_the_primary(tmp_path, cluster):
    prom = FakeServer(lambda h, body: (200, vector(*SERIES)))
    with OpenMeterSink() as sink:
        cfg = sentinel_config(tmp_path, cluster, prom.url, sink.url, name="fo", schedule=f"@every {EVERY}s",
                              offset=f"{OFFSET}s", redis_min_replicas=1,
                              redis_replica_timeout="500ms", stall_timeout="5s", lock_timeout="3s",
                              query_max_backoff="2s")
        worker = Proc(meterworker("worker", "-c", str(cfg), "-Q", "query,send", "--concurrency", "2",
                                  "--loglevel", "INFO"), tmp_path / "worker.log", cwd=tmp_path)
        beat = Proc(meterworker("beat", "-c", str(cfg), "--loglevel", "INFO"), tmp_path / "beat.log", cwd=tmp_path)
        resumed = {}
        try:
            wait_until(lambda: len(sink.events) >= 6, 60, "two ticks at the sink", worker)

            def resume_after(fault: str, at: float):
                wait_until(lambda: any(window_start(e) >= at for e in sink.events), 60,
                           f"delivery to resume after the {fault}", worker)
                resumed[fault] = time.time() - at

            at = time.time()
            cluster.failover()
            cluster.wait_for_new_primary()
            resume_after("SENTINEL FAILOVER", at)

            at = time.time()
            cluster.kill_primary()
            cluster.wait_for_new_primary()
            resume_after("SIGKILL of the primary", at)
            time.sleep(2 * EVERY)
            beat.stop()
            stopped = time.time()
            primary = redis.Redis(*cluster.primary_address(), decode_responses=True)
            wait_until(lambda: primary.zcard("meterworker:fo:pending:q") == 0
                       and primary.hlen("meterworker:fo:outbox:batch-data") == 0
                       and not primary.keys("meterworker:fo:outbox:tick:*"), 60, "the pipeline to drain", worker)
        finally:
            beat.stop()
            worker.stop()
            prom.close()
        for fault, seconds in resumed.items():
            print(f"{fault}: delivery resumed {seconds:.1f}s later")

        events = sink.events
        unique = {e["id"]: e for e in events}
        repeated = [i for i, n in Counter(e["id"] for e in events).items() if n > 1]
        print(f"{len(unique)} events, {len(repeated)} ids accepted twice (deduplicated by the sink)")
        windows = Counter((e["subject"], window_start(e)) for e in unique.values())
        assert [w for w, n in windows.items() if n > 1] == []  # no window billed under two ids
        starts = sorted({s for _, s in windows})
        first, last = starts[0], starts[-1]
        expected = {(f"customer-{n}", s) for n in range(3) for s in range(first, last + 1, EVERY)}
        assert set(windows) == expected, sorted(expected - set(windows))
        # Every tick up to the one before beat stopped: tick = window start + EVERY + OFFSET.
        assert last + EVERY + OFFSET >= stopped - 2 * EVERY
        assert all(s <= RESUME_BOUND for s in resumed.values()), resumed
        assert "Traceback" not in beat.output(), beat.output()[-3000:]
