"""`backfill` asks range queries over evenly spaced ticks (issue 14), in this process (--inline) and through the
workers; each tick's events must be those of one instant query at that tick. Against a real Prometheus and a real
VictoriaMetrics.

Two oracles: the test's own `POST /api/v1/query` per tick (evaluation time tick - query_offset, `$__interval`
the window's length written by the test) gives each tick's values, and `backfill --inline` (one instant query
per tick, --instant) gives the same events, ids included. Past ranges use data-less PromQL whose value is the evaluation
time and the window (`time()`, a subquery over `$__interval`), which is what a range query could get wrong."""

import json
import os
import re
import subprocess
import time
from datetime import datetime, timezone

import httpx
import pytest
import yaml

from meterworker.schedule.cron import parse_schedule
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

# Two series whose values are the evaluation time and how many subquery steps fit in the window.
CLOCK = ('label_replace(vector(time()), "instance", "clock", "", "") or '
         'label_replace(count_over_time(vector(1)[$__interval:{step}]), "instance", "steps", "", "")')


def backfill(cfg, start, end, *extra):
    r = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(start), "--to", str(end),
                                   "--inline", "--print", *extra),
                       capture_output=True, text=True, timeout=300, env={**os.environ, "METERWORKER_REDIS_URL":
                                                                         "redis://127.0.0.1:1/0"}, cwd="/tmp")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()], r.stderr


def ticks(schedule, tz, start, end):
    s = parse_schedule(schedule, tz)
    return [int(t.timestamp()) for t in s.ticks_between(datetime.fromtimestamp(start - 1, timezone.utc),
                                                        datetime.fromtimestamp(end, timezone.utc))], s


def instant_oracle(url, promql, schedule, tz, start, end, offset):
    """{(window start, subject): value} from the test's own instant queries, one per tick at tick - offset."""
    out = {}
    tick_list, s = ticks(schedule, tz, start, end)
    with httpx.Client() as client:
        for tick in tick_list:
            prev = int(s.prev_before(datetime.fromtimestamp(tick, timezone.utc)).timestamp())
            q = promql.replace("$__interval", f"{tick - prev}s")
            r = client.post(f"{url}/api/v1/query", data={"query": q, "time": str(tick - offset), "nocache": "1"})
            r.raise_for_status()
            for series in r.json()["data"]["result"]:
                out[(prev - offset, series["metric"]["instance"])] = float(series["value"][1])
    return out, tick_list


def by_id(events):
    return sorted((e["id"], e["time"], e["subject"], e["data"]["value"]) for e in events)


def by_window(events):
    return {(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp(), e["subject"]): e["data"]["value"]
            for e in events}


CASES = {
    # name: (schedule, timezone, start, end, query_offset seconds, subquery step, range queries expected)
    "every": ("@every 10s", "UTC", "2026-10-01T00:00:00Z", "2026-10-01T06:00:00Z", 5, "5s", True),
    "minutely": ("* * * * *", "UTC", "2026-09-30T22:00:00Z", "2026-10-01T02:00:00Z", 30, "5s", True),
    # months of 28 to 31 days, two of them an hour shorter or longer (DST in March and October)
    "monthly_dst": ("0 0 1 * *", "Europe/Berlin", "2025-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 0, "1h", False),
}


def iso_s(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.mark.parametrize("case", CASES)
def test_range_backfill_events_equal_one_instant_query_per_tick(tmp_path, promql_backend, case):
    schedule, tz, start, end, offset, step, ranged = CASES[case]
    promql = CLOCK.replace("{step}", step)
    start_s, end_s = iso_s(start), iso_s(end)
    cfg = write_config(tmp_path / "c.yaml", promql_backend.url, "http://127.0.0.1:9",
                       [{"name": "clock", "promql": promql}], schedule=schedule, offset=f"{offset}s")
    data = yaml.safe_load(cfg.read_text())
    data["input"]["prometheus"]["timezone"] = tz
    cfg.write_text(yaml.safe_dump(data))

    got, err = backfill(cfg, start_s, end_s)
    per_tick, _ = backfill(cfg, start_s, end_s, "--instant")
    oracle, tick_list = instant_oracle(promql_backend.url, promql, schedule, tz, start_s, end_s, offset)

    assert len(tick_list) > 10 and len(got) == 2 * len(tick_list), err
    assert by_id(got) == by_id(per_tick)  # same ids, times, subjects and values as an instant query per tick
    assert by_window(got) == oracle
    clocks = sorted(e["data"]["value"] for e in got if e["subject"] == "clock")
    assert clocks == [float(t - offset) for t in tick_list]  # each tick evaluated at tick - offset
    requests = err.rsplit("Prometheus requests: ", 1)[1].split("\n", 1)[0]
    n_range, n_instant = int(requests.split(" range")[0]), int(requests.split(", ")[1].split(" instant")[0])
    if ranged:
        assert 1 <= n_range <= 4 and n_instant == 0, requests
    else:
        assert n_range == 0 and n_instant == len(tick_list), requests


def test_ticks_evaluated_in_the_last_five_minutes_are_asked_by_instant_queries(tmp_path, promql_backend):
    """A store may answer the newest points of a range short (VictoriaMetrics' -search.latencyOffset): a backfill up
    to now asks range queries only for ticks evaluated 5 minutes ago or more, the rest an instant query each."""
    offset, every = 5, 10
    promql = CLOCK.replace("{step}", "5s")
    cfg = write_config(tmp_path / "c.yaml", promql_backend.url, "http://127.0.0.1:9",
                       [{"name": "clock", "promql": promql}], schedule=f"@every {every}s", offset=f"{offset}s")
    before = time.time()
    end = int(before) // every * every
    start = end - 1200
    got, err = backfill(cfg, start, end)
    after = time.time()
    oracle, tick_list = instant_oracle(promql_backend.url, promql, f"@every {every}s", "UTC", start, end, offset)
    assert by_window(got) == oracle
    requests = err.rsplit("Prometheus requests: ", 1)[1].split("\n", 1)[0]
    n_range, n_instant = int(requests.split(" range")[0]), int(requests.split(", ")[1].split(" instant")[0])
    # the command's cutoff is somewhere between 300 s before it started and 300 s before it ended
    fewest = sum(1 for t in tick_list if t - offset > after - 300)
    most = sum(1 for t in tick_list if t - offset > before - 300)
    assert n_range >= 1 and fewest <= n_instant <= most, (requests, fewest, most)


def test_backfill_through_the_workers_asks_range_queries_and_delivers_the_same_events(
        tmp_path, promql_backend, sink, redis_url):
    schedule, tz, start, end, offset, step, _ = CASES["minutely"]
    promql = CLOCK.replace("{step}", step)
    start_s, end_s = iso_s(start), iso_s(end)
    cfg = write_config(tmp_path / "c.yaml", promql_backend.url, sink.url, [{"name": "clock", "promql": promql}],
                       schedule=schedule, offset=f"{offset}s", redis_url=redis_url)
    worker = Proc(meterworker("worker", "-c", str(cfg), "-Q", "query,send", "-n", "range@%h", "--loglevel", "INFO"),
                  tmp_path / "worker.log", cwd=tmp_path)
    try:
        wait_until(lambda: " ready." in worker.output(), 60, "the worker to start", worker)
        r = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(start_s), "--to", str(end_s)),
                           capture_output=True, text=True, timeout=120)
        oracle, tick_list = instant_oracle(promql_backend.url, promql, schedule, tz, start_s, end_s, offset)
        wait_until(lambda: len(sink.events) >= 2 * len(tick_list), 60, "every event at the sink", worker)
        status = subprocess.run(meterworker("status", "-c", str(cfg)), capture_output=True, text=True, timeout=30)
    finally:
        worker.stop()
    assert r.returncode == 0, r.stderr
    assert f"dispatched {len(tick_list)} ticks to the query workers, 5 attempts each (1 task)" in r.stderr, r.stderr
    assert f"backfill: {len(tick_list)}/{len(tick_list)} ticks done" in r.stderr, r.stderr
    per_tick, _ = backfill(cfg, start_s, end_s, "--instant")
    assert not sink.duplicates()
    assert by_id(sink.events) == by_id(per_tick)  # same ids, times, subjects and values as an instant query per tick
    assert by_window(sink.events) == oracle
    # each tick's bookkeeping as a one-tick task's: none left pending
    assert "pending: 0" in status.stdout, status.stdout
    assert re.search(rf"query clock: {len(tick_list)} ticks from \S+: {2 * len(tick_list)} events queued",
                     worker.output()), worker.output()[-3000:]
