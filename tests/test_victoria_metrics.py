"""VictoriaMetrics as the query backend: `once` gives its own answers, windows add up to its raw
samples (MetricsQL's increase() does not extrapolate), backfill inline and through workers bills the
same ids and values, and the ways its API differs from Prometheus' are handled. The oracle is
VictoriaMetrics' raw samples or its own query result, read with plain httpx."""

import json
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timezone

import httpx
import pytest
import redis
import yaml

from meterworker.config import parse_config
from meterworker.query import prometheus
from meterworker.query.prometheus import PrometheusClient, PrometheusError
from tests.support import OpenMeterSink
from tests.support.mwproc import Proc, meterworker, wait_until, write_config
from tests.support.prefixed_api import PrefixedApi

INCREASE = "sum by (customer, instance) (increase(mw_requests_total[$__interval]))"
QUERIES = [{"name": "requests", "promql": INCREASE}, {"name": "sessions", "promql": "mw_active_sessions"}]


def ts(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def vm_query(vm, promql: str, at: float, **args: str) -> list:
    r = httpx.post(f"{vm.url}/api/v1/query", data={"query": promql, "time": f"{at:.3f}", **args}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def raw_samples(vm, since: float, until: float) -> dict[str, list[tuple[float, float]]]:
    """mw_requests_total's raw samples in (since, until] per instance (a range selector answers them as stored;
    nocache=1 also where -search.latencyOffset is left at its default)."""
    result = vm_query(vm, f"mw_requests_total[{until - since:g}s]", until, nocache="1")
    return {s["metric"]["instance"]: [(float(t), float(v)) for t, v in s["values"]] for s in result}


def growth(samples, start: float, end: float) -> float:
    """The counter's growth in (start, end]: its last sample up to end minus its last sample up to start."""
    return [v for t, v in samples if t <= end][-1] - [v for t, v in samples if t <= start][-1]


def history_since(vm) -> float:
    """When VictoriaMetrics' first sample of the exporter was scraped."""
    return min(samples[0][0] for samples in raw_samples(vm, time.time() - 3600, time.time()).values())


def run_cli(*args, timeout=60):
    r = subprocess.run(meterworker(*args), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


def test_once_answers_what_victoria_metrics_answers_and_increase_is_the_raw_growth(tmp_path, victoria_metrics,
                                                                                    sink):
    vm = victoria_metrics
    cfg = write_config(tmp_path / "c.yaml", vm.url, sink.url, QUERIES, schedule="@every 2s", offset="0s")
    wait_until(lambda: time.time() - history_since(vm) > 6, 15, "6s of history")
    tick = int(time.time() - 2) // 2 * 2
    events = [json.loads(line) for line in run_cli("once", "-c", str(cfg), "--at", str(tick)).stdout.splitlines()]
    assert {(e["type"], e["subject"]) for e in events} == {(q, c) for q in ("requests", "sessions")
                                                           for c in ("acme", "globex", "initech")}
    raw = raw_samples(vm, tick - 10, tick)
    for e in events:
        assert ts(e["time"]) == tick - 2
        promql = next(q["promql"] for q in QUERIES if q["name"] == e["type"]).replace("$__interval", "2s")
        own = [float(s["value"][1]) for s in vm_query(vm, promql, tick) if s["metric"] == e["data"]["metric"]]
        assert own == [e["data"]["value"]], (e, own)
        if e["type"] == "requests":
            # No extrapolation: the difference of two stored samples, not Prometheus' rate * window estimate.
            assert e["data"]["value"] == pytest.approx(growth(raw[e["subject"]], tick - 2, tick), rel=1e-9)


def test_windows_add_up_to_the_raw_samples_and_backfill_through_workers_repeats_inline(
        tmp_path, victoria_metrics, exporter, sink, redis_url):
    vm = victoria_metrics
    period, n = 2, 5
    since = history_since(vm)
    time.sleep(max(0.0, since + period * (n + 1) + 3 - time.time()))
    end = int(time.time() - 2) // period * period
    start = end - period * n
    cfg = write_config(tmp_path / "c.yaml", vm.url, sink.url, [QUERIES[0]], schedule=f"@every {period}s",
                       offset="0s", redis_url=redis_url)
    r = run_cli("backfill", "-c", str(cfg), "--from", str(start + period), "--to", str(end), "--inline", "--print")
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert f"{n} ticks" in r.stderr

    raw = raw_samples(vm, start - 30, end)
    per_customer = defaultdict(list)
    for e in events:
        per_customer[e["subject"]].append((ts(e["time"]), e["data"]["value"]))
    assert set(per_customer) == set(exporter.customers)
    for customer, windows in per_customer.items():
        assert [t for t, _ in sorted(windows)] == list(range(start, end, period))  # no window missing
        # Windows tile the counter's growth exactly: each is the difference of two stored samples.
        assert sum(v for _, v in windows) == pytest.approx(growth(raw[customer], start, end), rel=1e-9)

    run_cli("backfill", "-c", str(cfg), "--from", str(start + period), "--to", str(end), "--inline")
    assert sorted(sink.ids()) == sorted(e["id"] for e in events) and not sink.duplicates()

    # The same ticks through real workers, with what was delivered forgotten: the same ids and values.
    redis.Redis.from_url(redis_url).flushdb()
    with OpenMeterSink() as sink2:
        cfg2 = write_config(tmp_path / "c2.yaml", vm.url, sink2.url, [QUERIES[0]], schedule=f"@every {period}s",
                            offset="0s", redis_url=redis_url)
        worker = Proc(meterworker("worker", "-c", str(cfg2)), tmp_path / "worker.log")
        try:
            r = run_cli("backfill", "-c", str(cfg2), "--from", str(start + period), "--to", str(end))
            assert f"dispatched {n} ticks to the query workers" in r.stderr and f"{n}/{n}" in r.stderr
            sink2.wait_for_events(len(events), timeout=30)
        finally:
            worker.stop()
        assert sorted((e["id"], e["data"]["value"]) for e in sink2.events) == sorted(
            (e["id"], e["data"]["value"]) for e in events)
        assert not sink2.duplicates()


def prom_client(url: str, **extra) -> PrometheusClient:
    data = {"input": {"prometheus": {"url": url, "queries": [{"query": {"name": "q", "promql": "up"}}], **extra}},
            "output": {"http_client": {"url": "http://sink.test/api/v1/events"}}}
    return PrometheusClient(parse_config(data, environ={}).config.input.prometheus)


def test_victoria_metrics_layout_errors_empty_windows_and_scalars(victoria_metrics, monkeypatch):
    vm = victoria_metrics
    wait_until(lambda: time.time() - history_since(vm) > 5, 15, "5s of history")
    client = prom_client(vm.url)
    now = datetime.fromtimestamp(int(time.time()) - 2, tz=timezone.utc)
    try:
        # Its vectors are written in Prometheus' compact layout: the fast parser reads them.
        raw = httpx.post(f"{vm.url}/api/v1/query", data={"query": "mw_active_sessions", "time": now.timestamp()}).content
        used = []
        real = prometheus._fast_series
        monkeypatch.setattr(prometheus, "_fast_series", lambda *a: used.append(1) or real(*a))
        got = prometheus.parse_stream([raw[i:i + 50] for i in range(0, len(raw), 50)])
        assert sorted(v for _, v in got.series) == ["12", "3", "7"] and used == [1]

        # Its error bodies are Prometheus' shape, with the HTTP status as errorType.
        with pytest.raises(PrometheusError, match=r"Prometheus 422 \(HTTP 422\): .*sum\(up") as e:
            with client.stream("sum(up", now):
                pass
        assert e.value.status == 422

        # A window that holds no sample of the series: no series at all, as in Prometheus (not a 0).
        samples = raw_samples(vm, now.timestamp() - 10, now.timestamp())["acme"]
        (t1, _), (t2, _) = samples[-2:]
        gap = datetime.fromtimestamp((t1 + t2) / 2 + 0.1, tz=timezone.utc)
        selector = 'increase(mw_requests_total{instance="acme"}[200ms])'
        with client.stream(selector, gap) as got:
            assert got.result_type == "vector" and list(got.series) == []
        with client.stream(selector, datetime.fromtimestamp(t2 + 0.1, tz=timezone.utc)) as got:
            assert [labels["instance"] for labels, _ in got.series] == ["acme"]

        # MetricsQL has no scalar result type: scalar() is a vector of one series without labels, which
        # has no subject label (Prometheus bills a scalar with the query name as subject).
        with client.stream("scalar(sum(mw_active_sessions))", now) as got:
            assert got.result_type == "vector"
            series = list(got.series)
        assert series == [({}, "22")]
    finally:
        client.close()


def test_a_path_prefix_and_tenant_header_reach_victoria_metrics_through_a_proxy(tmp_path, victoria_metrics, sink):
    """As against Mimir or Cortex: `url` with a path prefix and a query string, X-Scope-OrgID in headers."""
    vm = victoria_metrics
    tick = int(time.time() - 2) // 2 * 2
    with PrefixedApi("/prometheus", upstream=vm.url) as api:
        cfg = write_config(tmp_path / "c.yaml", api.url + "?x=1", sink.url, [QUERIES[1]], schedule="@every 2s",
                           offset="0s")
        data = yaml.safe_load(cfg.read_text())
        data["input"]["prometheus"]["headers"] = {"X-Scope-OrgID": "tenant-1"}
        cfg.write_text(yaml.safe_dump(data))
        out = run_cli("once", "-c", str(cfg), "--at", str(tick)).stdout
    events = [json.loads(line) for line in out.splitlines()]
    assert sorted(e["data"]["value"] for e in events) == sorted(
        float(s["value"][1]) for s in vm_query(vm, "mw_active_sessions", tick))
    assert [(r.path, r.query, r.headers["X-Scope-OrgID"]) for r in api.requests] == [
        ("/prometheus/api/v1/query", "x=1", "tenant-1")]


def test_a_recent_tick_is_evaluated_at_its_time_under_the_default_latency_offset(exporter):
    """Out of the box VictoriaMetrics answers a `time` less than 30s ago (-search.latencyOffset) as of now - 30s;
    meterworker asks for the time it means (nocache=1), so a tick's window does not depend on when it runs."""
    from tests.support import VictoriaMetricsServer

    with VictoriaMetricsServer([exporter.host_port], extra_flags=["-search.latencyOffset=30s"]) as vm:
        def history():
            vm.flush()
            return raw_samples(vm, time.time() - 3600, time.time()) and time.time() - history_since(vm) > 4

        wait_until(history, 30, "4s of history")
        at = time.time() - 2
        assert vm_query(vm, "timestamp(mw_active_sessions)", at) == []  # the default: as of 30s ago, no data yet
        client = prom_client(vm.url)
        try:
            with client.stream("timestamp(mw_active_sessions)", datetime.fromtimestamp(at, tz=timezone.utc)) as got:
                sampled = [float(v) for _, v in got.series]
        finally:
            client.close()
        assert len(sampled) == 3 and all(at - 1.5 < t <= at for t in sampled), (at, sampled)
