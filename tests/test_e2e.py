"""End to end: `meterworker run` on real Redis, Prometheus, Celery workers and an OpenMeter-like sink."""

import json
import os
import re
import signal
import subprocess
from collections import defaultdict
from datetime import datetime

import pytest
import redis

from meterworker.keys import QUERY_QUEUE, SEND_QUEUE, Keys
from tests.support import PrometheusServer
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

TOKEN = "e2e-s3cret-token"
QUERIES = [
    {"name": "requests", "promql": "sum by (instance, customer) (increase(mw_requests_total[$__interval]))"},
    {"name": "sessions", "promql": "mw_active_sessions"},
]


def ts(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def ticks_by_query(events):
    out = defaultdict(set)
    for e in events:
        out[e["type"]].add(e["time"])
    return out


def assert_values_match_prometheus(prometheus, events, window=2.0):
    """Each event's value is what Prometheus answers for its query at its evaluation time."""
    promql = {q["name"]: q["promql"].replace("$__interval", f"{window:g}s") for q in QUERIES}
    checked = 0
    for e in events:
        eval_at = ts(e["time"]) + window  # event time is the window start; evaluation is at its end
        result = prometheus.query(promql[e["type"]], eval_at)["result"]
        expected = [float(s["value"][1]) for s in result if s["metric"] == e["data"]["metric"]]
        assert expected == [e["data"]["value"]], (e, result)
        checked += 1
    return checked


def assert_no_gaps(events, window=2.0):
    per_series = defaultdict(list)
    for e in events:
        per_series[(e["type"], e["subject"])].append(ts(e["time"]))
    for key, times in per_series.items():
        times.sort()
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g == window for g in gaps), (key, times)


@pytest.fixture
def token_sink():
    from tests.support import OpenMeterSink

    with OpenMeterSink(token=TOKEN) as s:
        yield s


def run_until_ticks(tmp_path, cfg, sink, n_ticks=3, timeout=60):
    proc = Proc(meterworker("run", "-c", str(cfg), "--loglevel", "DEBUG"), tmp_path / "run.log",
                env={"SINK_TOKEN": TOKEN}, cwd=tmp_path)
    try:
        wait_until(lambda: all(len(t) >= n_ticks for t in ticks_by_query(sink.events).values())
                   and len(ticks_by_query(sink.events)) == len(QUERIES),
                   timeout, f"{n_ticks} ticks of each query at the sink", proc)
    finally:
        status = proc.stop()
    return proc, status


def finish_what_the_run_left(tmp_path, cfg, redis_url):
    """The run was stopped (SIGTERM) wherever it was: ticks dispatched and not run yet, a tick's last batches
    in the outbox, not sent yet (on a loaded machine, often). Its events stay in Redis for a restarted run; a
    worker takes them here, so that the events at the sink are every event of every tick the run took."""
    keys = Keys("e2e")
    r = redis.Redis.from_url(redis_url)

    def idle():
        return (r.llen(QUERY_QUEUE) == 0 and r.llen(SEND_QUEUE) == 0 and r.hlen(keys.outbox_batch_data) == 0
                and all(r.zcard(keys.pending(q["name"])) == 0 for q in QUERIES))

    if idle():
        return
    worker = Proc(meterworker("worker", "-c", str(cfg), "-Q", "query,send", "-n", "finish@%h"),
                  tmp_path / "finish.log", env={"SINK_TOKEN": TOKEN}, cwd=tmp_path)
    try:
        wait_until(idle, 60, "the ticks and events the run left to be done", worker)
    finally:
        worker.stop()


def test_run_delivers_every_tick_with_prometheus_values(tmp_path, promql_backend, exporter, token_sink, redis_url):
    prometheus = promql_backend  # Prometheus, then VictoriaMetrics
    if not isinstance(prometheus, PrometheusServer):
        # MetricsQL's increase() bills a series' first sample as growth from 0: start the windows after it.
        wait_until(lambda: prometheus.query("min(count_over_time(mw_requests_total[1h])) >= 6")["result"], 20,
                   "6 samples of every series")
    cfg = write_config(tmp_path / "collector.yaml", prometheus.url, token_sink.url, QUERIES, redis_url=redis_url,
                       http={"headers": {"Authorization": "Bearer ${SINK_TOKEN}"}, "batching": {"count": 2}})
    proc, status = run_until_ticks(tmp_path, cfg, token_sink)
    assert status == 0, proc.output()[-3000:]
    finish_what_the_run_left(tmp_path, cfg, redis_url)

    events = token_sink.events
    assert not token_sink.duplicates()
    assert {e["subject"] for e in events} == set(exporter.customers)
    for r in token_sink.requests:
        assert r.status == 204, r
        assert r.headers["Content-Type"] == "application/cloudevents-batch+json"
        assert len(r.events) <= 2
    assert_no_gaps(events)
    assert assert_values_match_prometheus(prometheus, events) == len(events)
    if isinstance(prometheus, PrometheusServer):
        # increase() over 2s of a counter growing at a known rate is that rate times 2, up to extrapolation.
        for e in events:
            if e["type"] == "requests" and e["data"]["value"] > 0:
                assert e["data"]["value"] == pytest.approx(exporter.rates[e["subject"]] * 2, rel=0.35)
    else:
        # MetricsQL's increase() is the difference of two stored samples, so one window follows the scrape
        # jitter; consecutive windows add up to the rate times their length (exactly so to the raw samples:
        # tests/test_victoria_metrics.py).
        per_customer = defaultdict(list)
        for e in events:
            if e["type"] == "requests":
                per_customer[e["subject"]].append(e["data"]["value"])
        for customer, values in per_customer.items():
            assert sum(values) == pytest.approx(exporter.rates[customer] * 2 * len(values), rel=0.35)
    log = proc.output()
    assert TOKEN not in log
    assert "dispatched query requests" in log
    assert "[queues]" in log and "celery beat v" in log  # --loglevel DEBUG: Celery's banners too

    # A backfill over the same ticks gives the same events: same ids, same values.
    # Tick = window start + window (2s) + query_offset (2s).
    first = min(ts(e["time"]) for e in events) + 4
    last = max(ts(e["time"]) for e in events) + 4
    r = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(first), "--to", str(last),
                                   "--inline", "--print"), capture_output=True, text=True, timeout=60,
                       env={**os.environ, "SINK_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    replayed = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted({e["time"] for e in replayed}) == sorted({e["time"] for e in events}), r.stderr
    assert sorted((e["id"], e["data"]["value"]) for e in replayed) == sorted(
        (e["id"], e["data"]["value"]) for e in events)


def test_run_starts_an_embedded_redis_when_none_is_configured(tmp_path, prometheus, token_sink, monkeypatch):
    monkeypatch.delenv("METERWORKER_REDIS_URL", raising=False)
    data_dir = tmp_path / "data"
    cfg = write_config(tmp_path / "collector.yaml", prometheus.url, token_sink.url, QUERIES,
                       http={"headers": {"Authorization": "Bearer ${SINK_TOKEN}"}},
                       extra={"meterworker": {"data_dir": str(data_dir)}})
    proc, status = run_until_ticks(tmp_path, cfg, token_sink, n_ticks=2)
    assert status == 0, proc.output()[-3000:]
    assert "embedded Redis" in proc.output()
    assert (data_dir / "appendonlydir").exists() or list(data_dir.glob("*.aof"))
    assert not token_sink.duplicates()
    assert_values_match_prometheus(prometheus, token_sink.events)


def test_run_greets_with_what_it_started_and_then_a_line_per_tick(tmp_path, prometheus, token_sink, redis_url):
    cfg = write_config(tmp_path / "collector.yaml", prometheus.url, token_sink.url, QUERIES, redis_url=redis_url,
                       http={"headers": {"Authorization": "Bearer ${SINK_TOKEN}"}})
    proc = Proc(meterworker("run", "-c", str(cfg), "--query-concurrency", "3"), tmp_path / "run.log",
                env={"SINK_TOKEN": TOKEN}, cwd=tmp_path)
    try:
        wait_until(lambda: proc.output().count("events queued") >= 4, 60, "4 completed ticks", proc)
    finally:
        status = proc.stop()
    log = proc.output()
    assert status == 0, log[-3000:]
    greeting = log[:log.index("a line per completed tick follows")]
    assert f"Redis at {redis_url}" in greeting
    assert "beat: dispatching 2 queries" in greeting
    assert "query worker: 3 processes; send worker: 2 processes" in greeting
    for q in QUERIES:
        assert re.search(rf"query {q['name']}: @every 2s, next tick \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d[02468]\+00:00",
                         greeting), greeting
    assert f"sink: {token_sink.url}/api/v1/events with Authorization: Bearer ****" in greeting
    assert TOKEN not in log
    assert len(greeting.splitlines()) <= 10, greeting
    assert re.search(r"query (requests|sessions) tick \S+: \d+ events queued", log)
    # Celery's banners, its start-up lines, its line per task and its root warning wait for --loglevel DEBUG.
    for noise in ("[queues]", "celery beat v", "superuser privileges", "Connected to redis", " ready.",
                  "Task meterworker.query[", "HTTP Request:", "dispatched query"):
        assert noise not in log, (noise, log[-3000:])


def test_ctrl_c_on_run_shuts_the_workers_down_before_its_embedded_redis(tmp_path, prometheus, token_sink,
                                                                       monkeypatch):
    """A terminal's Ctrl-C signals the whole process group: the embedded Redis must outlive the workers' warm
    shutdown, which still records what they were doing."""
    monkeypatch.delenv("METERWORKER_REDIS_URL", raising=False)
    cfg = write_config(tmp_path / "collector.yaml", prometheus.url, token_sink.url, QUERIES,
                       http={"headers": {"Authorization": "Bearer ${SINK_TOKEN}"}},
                       extra={"meterworker": {"data_dir": str(tmp_path / "data")}})
    proc = Proc(meterworker("run", "-c", str(cfg)), tmp_path / "run.log", env={"SINK_TOKEN": TOKEN}, cwd=tmp_path)
    try:
        wait_until(lambda: len(ticks_by_query(token_sink.events)) == len(QUERIES), 60, "a tick of each query", proc)
        os.killpg(proc.p.pid, signal.SIGINT)  # as a terminal does
        status = proc.p.wait(60)
    finally:
        proc.kill()
    log = proc.output()
    assert status == 0, log[-3000:]
    assert "Connection refused" not in log and "does not answer" not in log, log[-3000:]
