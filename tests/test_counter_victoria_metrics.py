"""Counter mode on VictoriaMetrics as it comes out of the box (no flags: a 30s -search.latencyOffset, the result
cache on): integer counters the test drives restart (a reset) and then fail their scrapes (VictoriaMetrics'
scraper writes a NaN staleness marker), both inside one window; `backfill --inline` bills windows that ended
seconds ago to the sink, and they add up, per window and per series, to the growth the test computes itself
from VictoriaMetrics' raw samples (`mw_calls_total[...]` with nocache=1, read with plain httpx, staleness
markers left out), by issue 12's rule."""

import math
import time
from collections import defaultdict
from datetime import datetime

import httpx

from bench.counter_oracle import window_growth as growth
from tests.conftest import _binary_or_skip
from tests.support.counters import IntegerCounters
from tests.support.mwproc import wait_until, write_config
from tests.support.victoria_metrics import VictoriaMetricsServer, find_victoria_metrics
from tests.test_victoria_metrics import run_cli

WINDOW = 3


def ts(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def raw_samples(vm, since: float, until: float) -> dict[str, list[tuple[int, float]]]:
    """Per customer, mw_calls_total's raw samples in (since, until] as (milliseconds, value), as stored:
    VictoriaMetrics includes its staleness markers (NaN)."""
    r = httpx.post(f"{vm.url}/api/v1/query", data={"query": f"mw_calls_total[{until - since:g}s]",
                                                   "time": f"{until:.3f}", "nocache": "1"}, timeout=10)
    r.raise_for_status()
    return {s["metric"]["customer"]: [(round(float(t) * 1000), float(v)) for t, v in s["values"]]
            for s in r.json()["data"]["result"]}


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def test_counter_windows_add_up_to_victoria_metrics_raw_samples_through_a_reset_and_a_staleness_marker(
        tmp_path, redis_url, sink):
    binary = _binary_or_skip(find_victoria_metrics)
    counters = IntegerCounters({"acme": 1, "globex": 3}, initial={"acme": 1_000_000, "globex": 5_000})
    with counters, VictoriaMetricsServer([counters.host_port], binary=binary, query_flags=()) as vm:
        def scraped():
            vm.flush()
            got = raw_samples(vm, time.time() - 60, time.time())
            return len(got) == 2 and max(s[0][0] for s in got.values()) / 1000

        since = wait_until(scraped, 20, "both counters in VictoriaMetrics")
        first = math.ceil(since / WINDOW) * WINDOW  # windows from after the first sample on
        s = math.ceil(time.time() / WINDOW) * WINDOW
        sleep_until(s + 0.3)
        counters.restart()           # a reset: every counter from zero, scraped at least once, then
        sleep_until(s + 1.5)
        counters.failing = True      # failing scrapes: a staleness marker in the same window
        sleep_until(s + 4.5)
        counters.failing = False
        last = s + 2 * WINDOW
        sleep_until(last + 1)
        vm.flush()
        cfg = write_config(tmp_path / "c.yaml", vm.url, sink.url, [{"name": "calls", "counter": "mw_calls_total"}],
                           schedule=f"@every {WINDOW}s", offset="0s", redis_url=redis_url)
        run_cli("backfill", "-c", str(cfg), "--from", str(first + WINDOW), "--to", str(last), "--inline")
        raw = raw_samples(vm, first - 60, last)

    for customer, samples in raw.items():  # the case is what it says: a reset and a marker in (s, s + WINDOW]
        inside = [v for t, v in samples if s * 1000 < t <= (s + WINDOW) * 1000]
        assert any(math.isnan(v) for v in inside), (customer, samples)
        values = [v for t, v in samples if t <= (s + WINDOW) * 1000 and not math.isnan(v)]
        assert any(b < a for a, b in zip(values, values[1:])), (customer, samples)

    assert not sink.duplicates()
    billed = defaultdict(dict)
    for e in sink.events:
        value = e["data"]["value"]
        assert value == int(value), e  # integer counters give integers
        assert set(e["data"]["metric"]) == {"customer", "instance", "job"}, e
        billed[e["subject"]][ts(e["time"])] = value
    assert set(billed) == {"acme", "globex"}
    for customer, windows in billed.items():
        assert any(t <= first * 1000 and not math.isnan(v) for t, v in raw[customer]), customer  # a baseline
        expected = {w: growth(raw[customer], w, w + WINDOW) for w in range(first, last, WINDOW)}
        assert windows == {w: v for w, v in expected.items() if v is not None}, customer
        assert sum(windows.values()) == growth(raw[customer], first, last) > 0
