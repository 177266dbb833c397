"""One active beat, fail-over and catch-up, with real beat and worker processes."""

import re
import signal
import time
from collections import Counter, defaultdict
from datetime import datetime

import redis

from tests.support.mwproc import Proc, celery, meterworker, wait_until, write_config

QUERIES = [{"name": "sessions", "promql": "mw_active_sessions"}]
PERIOD = 2


def ts(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def series_times(events):
    out = defaultdict(list)
    for e in events:
        out[e["subject"]].append(ts(e["time"]))
    return {k: sorted(v) for k, v in out.items()}


def dispatches(procs):
    lines = []
    for p in procs:
        lines += re.findall(r"dispatched query (\S+) tick (\S+)", p.output())
    return Counter(lines)


def test_two_beats_fail_over_and_catch_up_without_missing_or_repeating_a_tick(
        tmp_path, prometheus, exporter, sink, redis_url):
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url, QUERIES, schedule=f"@every {PERIOD}s",
                       offset="1s", redis_url=redis_url, extra={"meterworker": {"lock_timeout": "3s"}})
    env = {"METERWORKER_CONFIG": str(cfg)}
    workers = [Proc(celery("worker", "-Q", "query", "-n", "q@%h", "-c", "1", "--loglevel", "INFO"),
                    tmp_path / "query.log", env),
               Proc(celery("worker", "-Q", "send", "-n", "s@%h", "-c", "1", "--loglevel", "INFO"),
                    tmp_path / "send.log", env)]
    beats = [Proc(celery("beat", "--loglevel", "INFO"), tmp_path / f"beat{i}.log", env) for i in (1, 2)]
    r = redis.Redis.from_url(redis_url)
    lock = "meterworker:e2e:beat-lock"
    try:
        holder = wait_until(lambda: r.get(lock), 20, "a beat holding the lock").decode()
        wait_until(lambda: len(sink.events) >= 3 * len(exporter.customers), 30, "three ticks delivered", workers[0])

        # Fail-over: kill the active beat; the standby takes over within the lock timeout.
        active = next(b for b in beats if f":{b.p.pid}:" in holder)
        standby = next(b for b in beats if b is not active)
        active.p.send_signal(signal.SIGKILL)
        active.p.wait()
        killed_at = time.time()
        wait_until(lambda: (r.get(lock) or b"").decode().split(":")[1:2] == [str(standby.p.pid)], 15,
                   "the standby beat taking the lock", standby)
        assert time.time() - killed_at < 3 + 3  # lock timeout plus a renewal period, with slack
        time.sleep(2 * PERIOD)

        # Downtime of every beat for more than 3 ticks, then a restart: the missed ticks are caught up.
        standby.p.send_signal(signal.SIGKILL)
        standby.p.wait()
        down_from = time.time()
        time.sleep(4 * PERIOD + 0.5)
        restarted = Proc(celery("beat", "--loglevel", "INFO"), tmp_path / "beat3.log", env)
        beats.append(restarted)
        up_at = time.time()
        wait_until(lambda: max(ts(e["time"]) for e in sink.events) + PERIOD + 1 >= up_at, 30,
                   "ticks after the restart delivered", restarted)
        time.sleep(PERIOD)
    finally:
        for p in beats + workers:
            p.stop()

    events = sink.events
    assert not sink.duplicates()
    times = series_times(events)
    assert set(times) == set(exporter.customers)
    for subject, ts_list in times.items():
        gaps = [b - a for a, b in zip(ts_list, ts_list[1:])]
        assert gaps and all(g == PERIOD for g in gaps), (subject, ts_list)
        assert ts_list[0] < down_from - PERIOD and ts_list[-1] > up_at - 2 * PERIOD - 1
    counts = dispatches(beats)
    assert counts and max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    assert "catching up" in restarted.output()
