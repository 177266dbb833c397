"""`backfill --inline` through the real command: each tick reports its own outcome."""

import json
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timezone

import redis

from tests.support.mwproc import meterworker, write_config


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def backfill(cfg, start, end, *extra):
    return subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", iso(start), "--to", iso(end),
                                      "--inline", *extra), capture_output=True, text=True, timeout=120)


def test_a_refused_tick_fails_alone(tmp_path, prometheus, exporter, sink, redis_url):
    period, n = 2, 4
    # History for every window, from Prometheus' first sample (the session's Prometheus may start after the exporter).
    time.sleep(max(0.0, prometheus.history_since("mw_requests_total") + 3 + period * n + 2 - time.time()))
    end = int(time.time() - 2) // period * period
    start = end - period * (n - 1)
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url,
                       [{"name": "sessions", "promql": "mw_active_sessions"}], schedule=f"@every {period}s",
                       offset="0s", redis_url=redis_url, http={"retries": 0})
    printed = backfill(cfg, start, end, "--print")
    assert printed.returncode == 0, printed.stderr
    by_time = defaultdict(list)
    for line in printed.stdout.splitlines():
        event = json.loads(line)
        by_time[event["time"]].append(event["id"])
    assert len(by_time) == n
    refused_time = sorted(by_time)[1]  # the second tick: ticks after it must not count as failed
    refused = by_time[refused_time]
    sink.reject_ids(refused, detail="subject is not a customer")

    r = backfill(cfg, start, end)
    assert r.returncode == 1, r.stderr
    assert f"backfill: {n - 1}/{n} ticks done" in r.stderr
    assert "Traceback" not in r.stderr
    accepted = [i for t, ids in by_time.items() if t != refused_time for i in ids]
    assert sorted(sink.ids()) == sorted(accepted)
    assert f"{len(accepted)} delivered, 0 already delivered or on their way, {len(refused)} not delivered" in r.stderr

    entries = [json.loads(v) for v in redis.Redis.from_url(redis_url).hgetall("meterworker:e2e:dlq").values()]
    assert sorted(e["id"] for entry in entries for e in entry["events"]) == sorted(refused)
    assert {iso(entry["tick"]) for entry in entries} == {iso(start + period)}
    assert all(entry["status"] == 400 and "subject is not a customer" in entry["body"] for entry in entries)
