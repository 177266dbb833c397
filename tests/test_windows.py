"""Windows against a real Prometheus: they add up to Prometheus' own increase, none is missing, backfill
repeats the live run, and a query that fails for a while still bills every window."""

import json
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timezone

import pytest

from tests.support import PrometheusServer
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

INCREASE = "sum by (customer, instance) (increase(mw_requests_total[$__interval]))"


def ts(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat()


def backfill_print(cfg, start, end):
    r = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", iso(start), "--to", iso(end),
                                   "--inline", "--print"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()], r.stderr


def test_windows_sum_to_prometheus_increase_over_the_period(tmp_path, prometheus, exporter, sink, redis_url):
    period, n = 5, 6
    # Enough history for the whole range plus a scrape interval before it, counted from Prometheus' first
    # sample: the session's Prometheus may have started well after the exporter.
    time.sleep(max(0.0, prometheus.history_since("mw_requests_total") + 3 + period * n + 2 - time.time()))
    end = int(time.time() - 2) // period * period
    start = end - period * n
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url, [{"name": "requests", "promql": INCREASE}],
                       schedule=f"@every {period}s", offset="0s", redis_url=redis_url)
    events, stderr = backfill_print(cfg, start + period, end)
    assert f"{n} ticks" in stderr

    per_customer = defaultdict(list)
    for e in events:
        per_customer[e["subject"]].append((ts(e["time"]), e["data"]["value"]))
    whole = prometheus.values(f"sum by (instance) (increase(mw_requests_total[{period * n}s]))", end)
    assert set(per_customer) == set(exporter.customers)
    for customer, windows in per_customer.items():
        assert [t for t, _ in sorted(windows)] == list(range(start, end, period))  # no window missing
        billed = sum(v for _, v in windows)
        assert billed == pytest.approx(whole[customer], rel=0.02)
        assert billed == pytest.approx(exporter.rates[customer] * period * n, rel=0.03)

    # Sent inline, the same events arrive once; a second backfill of the range sends nothing again.
    for _ in range(2):
        r = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", iso(start + period), "--to", iso(end),
                                       "--inline"), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    assert sorted(sink.ids()) == sorted(e["id"] for e in events)
    assert f"0 delivered, {len(events)} already delivered or on their way" in r.stderr


def test_a_query_failing_for_three_ticks_bills_all_its_windows(tmp_path, exporter, sink, redis_url):
    with PrometheusServer([exporter.host_port], scrape_interval="1s") as prom:
        prom.wait_for("mw_active_sessions", timeout=30)
        cfg = write_config(tmp_path / "c.yaml", prom.url, sink.url,
                           [{"name": "sessions", "promql": "mw_active_sessions"}], schedule="@every 2s",
                           offset="1s", redis_url=redis_url,
                           extra={"meterworker": {"query_retry_period": "1s", "query_max_backoff": "2s"}})
        run = Proc(meterworker("run", "-c", str(cfg)), tmp_path / "run.log")
        try:
            wait_until(lambda: len(sink.events) >= 3, 40, "first events", run)
            prom.stop()
            down_at = time.time()
            time.sleep(3 * 2 + 1)
            status = subprocess.run(meterworker("status", "-c", str(cfg)), capture_output=True, text=True,
                                    timeout=30)
            prom.start()
            up_at = time.time()
            wait_until(lambda: max(ts(e["time"]) for e in sink.events) >= up_at, 40,
                       "windows after the recovery delivered", run)
            # A backfill through the workers over ticks already delivered: done, and nothing sent twice.
            first = min(ts(e["time"]) for e in sink.events) + 3
            backfill = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(first),
                                                  "--to", str(first + 6)), capture_output=True, text=True, timeout=60)
        finally:
            run.stop()
    assert status.returncode == 0, status.stderr
    assert backfill.returncode == 0, backfill.stderr
    assert "dispatched 4 ticks to the query workers" in backfill.stderr and "4/4" in backfill.stderr
    assert "FAILING" in status.stdout and "cannot reach" in status.stdout
    assert "pending: " in status.stdout and "pending: 0" not in status.stdout
    assert "beat lock: " in status.stdout and "no holder" not in status.stdout
    assert "outbox: " in status.stdout and "dead-letter entries: 0" in status.stdout
    assert "query sessions tick" in run.output() and "failed (attempt" in run.output()
    assert not sink.duplicates()
    by_subject = defaultdict(list)
    for e in sink.events:
        by_subject[e["subject"]].append(ts(e["time"]))
    for subject, times in by_subject.items():
        times.sort()
        assert all(b - a == 2 for a, b in zip(times, times[1:])), (subject, times)
        assert times[0] < down_at - 2 and times[-1] >= up_at - 2
        assert {e["data"]["value"] for e in sink.events if e["subject"] == subject} == {exporter.sessions[subject]}
