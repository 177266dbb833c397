"""`backfill --dry-run` prints the plan (ticks, Prometheus requests, estimated events) and touches nothing: no
Redis key, no task, no request to the sink. Through the real CLI, against a real Prometheus and Redis."""

import subprocess
import time

import redis

from tests.support.mwproc import meterworker, wait_until, write_config

QUERIES = [{"name": "sessions", "promql": "mw_active_sessions"},
           {"name": "monthly", "promql": "mw_active_sessions", "schedule": "0 0 1 * *"}]


def dry_run(cfg, start, end, *extra):
    r = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(start), "--to", str(end), "--dry-run",
                                   *extra), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def test_dry_run_prints_ticks_requests_and_estimated_events_and_touches_nothing(
        tmp_path, prometheus, exporter, sink, redis_url):
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url, QUERIES, schedule="@every 10s", offset="0s",
                       redis_url=redis_url)
    end = (int(time.time()) // 10 + 1) * 10  # a tick after Prometheus' first scrape (the fixture waited for it)
    time.sleep(max(0.0, end + 1.5 - time.time()))
    wait_until(lambda: len(prometheus.query("mw_active_sessions", end)["result"]) == len(exporter.customers), 10,
               "Prometheus to answer at the last tick")
    start = end - 40 * 86400  # 345,601 ticks of @every 10s, above the guard: a dry run does not ask
    ticks = (end - start) // 10 + 1
    months = sum(1 for m in range(12) if start <= _first_of_month_utc(end, m) <= end)
    series = len(exporter.customers)
    client = redis.Redis.from_url(redis_url)

    out = dry_run(cfg, start, end, "--inline", "--range")
    assert f"query sessions: {ticks:,} ticks from" in out, out
    # 500 ticks first, then 250,000 points per request / 3 series = 10,000 ticks (Prometheus' limit is 11,000)
    expected_range = 1 + -(-(ticks - 500) // 10_000)
    assert f"range queries: {ticks:,} ticks in 1 evenly spaced stretches (step 10s): {expected_range:,} requests" \
        in out, out
    assert f"estimated events: {series * ticks:,} ({series:,} at the last tick" in out, out
    assert "an estimate" in out
    # months of different lengths: no stretch of three equal windows, an instant query per tick
    assert f"query monthly: {months:,} ticks" in out, out
    assert f"instant queries (where the spacing changes): {months:,} ticks, {months:,} requests" in out, out
    assert f"{expected_range:,} range and {months:,} instant requests to Prometheus" in out, out

    # through the workers, the default: tasks of at most 10,000 ticks, each asking 500 ticks first, then the rest
    workers = dry_run(cfg, start, end)
    tasks = -(-ticks // 10_000)
    assert f"range queries: {ticks:,} ticks in 1 evenly spaced stretches (step 10s) in {tasks} tasks: " \
           f"{2 * tasks} requests" in workers, workers
    instant = dry_run(cfg, start, end, "--instant")
    assert f"instant queries (tick by tick): {ticks:,} ticks, {ticks:,} requests" in instant, instant

    assert client.dbsize() == 0  # no tick state, no report, no task, no mark
    assert not sink.requests


def _first_of_month_utc(end: int, months_back: int) -> int:
    from datetime import datetime, timezone

    d = datetime.fromtimestamp(end, timezone.utc).replace(day=1, hour=0, minute=0, second=0)
    y, m = d.year, d.month - months_back
    while m < 1:
        y, m = y - 1, m + 12
    return int(datetime(y, m, 1, tzinfo=timezone.utc).timestamp())
