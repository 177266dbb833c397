"""`backfill` through real Celery workers: it exits 0 when every tick completed, 1 naming each tick that gave up
its attempts or did not complete before the wait's deadline."""

import re
import subprocess
import time
from datetime import datetime, timezone


from meterworker.schedule.backfill import longest_tick
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

QUERIES = [{"name": "sessions", "promql": "mw_active_sessions"}, {"name": "broken", "promql": "sum(rate(x[1m])"}]
FAST_RETRIES = {"meterworker": {"query_retry_period": "1s", "query_max_backoff": "2s"}}


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def backfill(cfg, *args, timeout=120):
    started = time.monotonic()
    r = subprocess.run(meterworker("backfill", "-c", str(cfg), *map(str, args)), capture_output=True, text=True,
                       timeout=timeout)
    return r, time.monotonic() - started


def test_the_longest_tick_is_every_attempt_with_the_full_delay_between():
    assert longest_tick(1, 5, 300, 30) == 30
    assert longest_tick(5, 5, 300, 30) == 5 * 30 + 5 + 10 + 20 + 40
    assert longest_tick(4, 100, 150, 0) == 100 + 150 + 150


def test_a_tick_that_fails_its_attempts_is_named_and_exits_1_and_a_good_backfill_exits_0(
        tmp_path, prometheus, exporter, sink, redis_url):
    scraped = time.time()  # the fixture waited for Prometheus' first scrape
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url, QUERIES, schedule="@every 2s", offset="0s",
                       redis_url=redis_url, extra=FAST_RETRIES)
    worker = Proc(meterworker("worker", "-c", str(cfg), "-Q", "query,send", "-n", "bf@%h", "--loglevel", "INFO"),
                  tmp_path / "worker.log", cwd=tmp_path)
    try:
        wait_until(lambda: " ready." in worker.output(), 60, "the worker to start", worker)
        time.sleep(max(0.0, scraped + 10 - time.time()))  # Prometheus has samples before the range
        end = int(time.time() - 3) // 2 * 2
        r, took = backfill(cfg, "--from", end - 4, "--to", end, "--attempts", 3)
        good, _ = backfill(cfg, "--from", end - 4, "--to", end, "--query", "sessions")
        status = subprocess.run(meterworker("status", "-c", str(cfg)), capture_output=True, text=True, timeout=30)
        wait_until(lambda: len(sink.events) >= 3 * len(exporter.sessions), 30, "the good ticks at the sink", worker)
    finally:
        worker.stop()
    assert r.returncode == 1, r.stderr
    assert "dispatched 6 ticks to the query workers, 3 attempts each" in r.stderr
    for tick in (end - 4, end - 2, end):
        assert re.search(rf"error: query broken tick {re.escape(iso(tick))}: gave up after 3 attempts: .*bad_data",
                         r.stderr), r.stderr
    assert "error: query sessions" not in r.stderr
    assert "backfill: 3/6 ticks done, 3 given up" in r.stderr
    assert took < 30, r.stderr  # three attempts, 1s and 2s apart at most: far from the default deadline
    assert "Traceback" not in r.stderr

    assert good.returncode == 0, good.stderr
    assert "backfill: 3/3 ticks done" in good.stderr and "error:" not in good.stderr

    # The ticks given up stay visible: pending, with their failure.
    assert status.returncode == 0, status.stderr
    broken = status.stdout[status.stdout.index("- broken"):]
    assert "pending: 3" in broken and "FAILING since attempt 3" in broken and "bad_data" in broken
    assert "failed (attempt 3 of 3), giving up" in worker.output()
    assert not sink.duplicates()
    assert {e["time"] for e in sink.events} == {iso(t - 2).replace("+00:00", "Z") for t in (end - 4, end - 2, end)}


def test_a_tick_no_worker_takes_ends_the_wait_after_the_timeout_with_status_1(tmp_path, sink, redis_url):
    cfg = write_config(tmp_path / "c.yaml", "http://127.0.0.1:9", sink.url, QUERIES[:1], schedule="@every 10s",
                       redis_url=redis_url)
    end = int(time.time()) // 10 * 10 - 60
    r, took = backfill(cfg, "--from", end - 10, "--to", end, "--timeout", "2s", timeout=60)
    assert r.returncode == 1, r.stderr
    assert "no worker answers" in r.stderr
    for tick in (end - 10, end):
        assert (f"error: query sessions tick {iso(tick)}: not completed, no tick finished for 2s; "
                "no attempt of the query failed (is a query worker running?)") in r.stderr, r.stderr
    assert "backfill: 0/2 ticks done, 2 not completed" in r.stderr
    assert took < 20, r.stderr
