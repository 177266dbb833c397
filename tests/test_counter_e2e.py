"""Counter mode end to end on a real Prometheus scraping integer counters the test drives: the windows billed
over a run add up, to the unit, to the growth the test computes itself from Prometheus' raw samples, through a
Prometheus outage, a counter reset, a series that appears mid-run and scrapes that fail; and to the exporter's
own count of increments, since every increment is scraped (the counters are frozen around the restart and at the
end). `backfill` and `once` then give the same windows the same ids and values, on the Konnect path too."""

import json
import os
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timezone

import pytest
import redis

from tests.support import OpenMeterSink, PrometheusServer
from tests.support.counters import IntegerCounters
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

WINDOW = 2.0
OFFSET = 1.0
OUTAGE = 30.0


def ts(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def raw_growth(prometheus, start: float, end: float) -> dict[str, int]:
    """Per customer, what the counter grew over (start, end] by the issue's rule, from the raw samples that
    `mw_calls_total[...]` returns (the baseline is the last sample at or before start; none: counted from 0)."""
    rng = int(end - start) + 600
    result = prometheus.query(f"mw_calls_total[{rng}s]", end)["result"]
    out = {}
    for s in result:
        samples = [(float(t), int(v)) for t, v in s["values"]]
        before = [v for t, v in samples if t <= start]
        prev, total = (before[-1] if before else 0), 0
        for t, v in samples:
            if start < t <= end:
                total += v - prev if v >= prev else v
                prev = v
        out[s["metric"]["customer"]] = total
    return out


def windows_with_samples(prometheus, start: float, end: float) -> set[float]:
    """The starts of the windows from start to end in which Prometheus holds at least one sample."""
    found, t = set(), start
    while t < end:
        if prometheus.query(f"count_over_time(mw_calls_total[{WINDOW:g}s])", t + WINDOW)["result"]:
            # a range [t, t+W] in Prometheus 2 includes t itself: make sure a sample lies after t
            rows = prometheus.query(f"mw_calls_total[{WINDOW:g}s]", t + WINDOW)["result"]
            if any(float(ts_) > t for r in rows for ts_, _ in r["values"]):
                found.add(t)
        t += WINDOW
    return found


@pytest.fixture
def counters():
    a = IntegerCounters({"acme": 1, "globex": 3}, initial={"acme": 1_000_000, "globex": 5_000}, frozen=True)
    b = IntegerCounters({"initech": 7}, initial={"initech": 42}, frozen=True)
    with a, b:
        yield a, b


def test_counter_windows_add_up_to_the_raw_growth_through_outage_reset_new_series_and_failed_scrapes(
        tmp_path, counters, redis_url):
    a, b = counters
    query = {"name": "calls", "counter": "mw_calls_total", "max_gap": "5m"}
    short_gap = {"name": "calls_short_gap", "counter": "mw_calls_total", "max_gap": "10s"}  # shorter than the outage
    with PrometheusServer([a.host_port, b.host_port], scrape_interval="500ms") as prom, OpenMeterSink() as sink:
        prom.wait_for('count(mw_calls_total) == 3')
        # Every window meterworker bills must start after Prometheus' first scrape: a window holding a series'
        # first sample ever counts it from zero (a new series), which is the rule, not this test's case.
        time.sleep(2 * WINDOW + OFFSET + 1)
        cfg = write_config(tmp_path / "collector.yaml", prom.url, sink.url, [query, short_gap], redis_url=redis_url,
                           offset=f"{OFFSET:g}s", extra={"meterworker": {"query_retry_period": "1s",
                                                                           "query_max_backoff": "2s"}})
        proc = Proc(meterworker("run", "-c", str(cfg)), tmp_path / "run.log", cwd=tmp_path)
        try:
            wait_until(lambda: {e["type"] for e in sink.events} == {"calls", "calls_short_gap"}, 90,
                       "the first window of each query at the sink", proc)
            a.frozen = b.frozen = False
            time.sleep(2)
            b.failing = True                    # (d) initech's scrapes fail for 3s
            a.add_series("umbrella", 2)          # (c) a series appears mid-run
            time.sleep(3)
            b.failing = False
            a.frozen = True                      # (b) the exporter restarts: every counter from zero,
            time.sleep(1.2)                      #     after its last increments were scraped
            a.restart()
            a.frozen = False
            time.sleep(1.5)
            prom.stop()                          # (a) Prometheus is down; the counters go on
            time.sleep(OUTAGE)
            prom.start()
            prom.wait_for("count(mw_calls_total) == 4", timeout=30)
            time.sleep(2)
            a.frozen = b.frozen = True
            frozen_at = time.time()
            wait_until(lambda: all(max(ts(e["time"]) for e in sink.events if e["type"] == q) >= frozen_at + 2
                                   for q in ("calls", "calls_short_gap")), 60,
                       "windows after the counters stopped", proc)
        finally:
            status = proc.stop()
        assert status == 0, proc.output()[-3000:]
        assert not sink.duplicates()
        everything = sink.events
        events = [e for e in everything if e["type"] == "calls"]
        last_end = max(ts(e["time"]) for e in events) + WINDOW
        first_start = min(ts(e["time"]) for e in events)

        billed = defaultdict(int)
        for e in events:
            value = e["data"]["value"]
            assert value == int(value), e  # integer counters give integers
            billed[e["subject"]] += int(value)
        exact = raw_growth(prom, first_start, last_end)
        assert dict(billed) == exact
        # every increment was scraped, so the raw growth is the exporter's own count (not the 1,000,000 before)
        assert dict(billed) == {**a.grown(), **b.grown()}
        assert billed["umbrella"] > 0 and billed["initech"] > 0

        # every window of the run was billed, except those in which Prometheus holds no sample (the outage)
        starts = {ts(e["time"]) for e in events}
        assert starts == windows_with_samples(prom, first_start, last_end)
        assert len(starts) < (last_end - first_start) / WINDOW - OUTAGE / WINDOW / 2  # the outage: no windows

        # the same windows again, by backfill: the same ids and values
        first_tick, last_tick = first_start + WINDOW + OFFSET, last_end + OFFSET
        r = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(first_tick), "--to",
                                       str(last_tick), "--inline", "--print"),
                           capture_output=True, text=True, timeout=60, env=os.environ)
        assert r.returncode == 0, r.stderr
        replayed = sorted((e["id"], e["data"]["value"]) for e in map(json.loads, r.stdout.splitlines())
                          if e["type"] == "calls")
        delivered = sorted((e["id"], e["data"]["value"]) for e in events)
        by_id = {e["id"]: e for e in events}
        replay_events = {e["id"]: e for e in map(json.loads, r.stdout.splitlines()) if e["type"] == "calls"}
        diff = [(by_id.get(i, {}).get("time"), by_id.get(i, {}).get("subject"), by_id.get(i, {}).get("data"),
                 replay_events.get(i, {}).get("time"), replay_events.get(i, {}).get("data"))
                for i in set(by_id) ^ set(replay_events) | {i for i in by_id if i in replay_events and
                by_id[i]["data"]["value"] != replay_events[i]["data"]["value"]}]
        assert replayed == delivered, sorted(diff, key=str)[:10]

        # `once --send` to the Konnect path: one window, the same event as the run delivered
        konnect = write_config(tmp_path / "konnect.yaml", prom.url, sink.url, [query], redis_url=redis_url,
                               offset=f"{OFFSET:g}s")
        text = konnect.read_text().replace("/api/v1/events", "/v3/openmeter/events")
        konnect.write_text(text)
        tick = first_start + 2 * WINDOW + OFFSET
        r = subprocess.run(meterworker("once", "-c", str(konnect), "--at", str(tick)), capture_output=True,
                           text=True, timeout=60, env=os.environ)
        assert r.returncode == 0, r.stderr
        once = sorted((e["id"], e["data"]["value"]) for e in map(json.loads, r.stdout.splitlines()))
        assert once and set(once) <= set(replayed)
        # With a max_gap shorter than the outage, the window after it bills only what grew after the gap (in the
        # run and by `once`), and says so: in the log and in `status`.
        ordered = sorted(starts)
        after = next(t for u, t in zip(ordered, ordered[1:]) if t - u > OUTAGE / 2)
        own = within_window(prom, after, after + WINDOW)
        short = defaultdict(int)
        for e in everything:
            if e["type"] == "calls_short_gap" and first_start <= ts(e["time"]) < last_end:
                short[e["subject"]] += int(e["data"]["value"])
        # Per series, its first window after the outage: the exporters are scraped apart, so one series' first
        # sample after the outage can fall a window later than another's.
        expected, firsts = {}, {}
        for c in exact:
            mine = sorted(ts(e["time"]) for e in events if e["subject"] == c)
            first_after = firsts[c] = next(t for u, t in zip(mine, mine[1:]) if t - u > OUTAGE / 2)
            value = next(e["data"]["value"] for e in events if e["subject"] == c and ts(e["time"]) == first_after)
            expected[c] = exact[c] - value + within_window(prom, first_after, first_after + WINDOW).get(c, 0)
        assert dict(short) == expected
        assert "had no sample within max_gap (10s) before the window" in proc.output()
        r = subprocess.run(meterworker("status", "-c", str(cfg)), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        section = r.stdout[r.stdout.index("- calls_short_gap"):]
        # `status` shows the newest tick with a gap: the window that holds the last series' first sample after it.
        latest = max(firsts.values())
        newest_tick = datetime.fromtimestamp(latest + WINDOW + OFFSET, timezone.utc).isoformat()
        n = sum(1 for t in firsts.values() if t == latest)
        assert f"COUNTER GAP at tick {newest_tick}: {n} series had no sample within max_gap (10s)" in section, (
            r.stdout, firsts)
        assert "COUNTER GAP" not in r.stdout[:r.stdout.index("- calls_short_gap")]
        once_short = write_config(tmp_path / "short.yaml", prom.url, sink.url, [short_gap], redis_url=redis_url,
                                  offset=f"{OFFSET:g}s")
        r = subprocess.run(meterworker("once", "-c", str(once_short), "--at", str(after + WINDOW + OFFSET)),
                           capture_output=True, text=True, timeout=60, env=os.environ)
        assert r.returncode == 0, r.stderr
        assert {e["subject"]: e["data"]["value"] for e in map(json.loads, r.stdout.splitlines())} == own
        assert "had no sample within max_gap (10s) before the window" in r.stderr


def within_window(prometheus, start: float, end: float) -> dict[str, int]:
    """Per customer, the growth between the window's own samples only (its first sample is the baseline)."""
    out = {}
    for s in prometheus.query(f"mw_calls_total[{end - start:g}s]", end)["result"]:
        values = [int(v) for t, v in s["values"] if float(t) > start]
        out[s["metric"]["customer"]] = sum(b - a if b >= a else b for a, b in zip(values, values[1:]))
    return out
