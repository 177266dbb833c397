"""Billing accuracy: the same counter billed with increase() (a fixed range, and $__interval) and with counter
mode, next to the ground truth, per window and in total, through a Prometheus outage and a counter reset.

Runs a real Prometheus (scrape every 1s) on an exporter of integer counters (tests/support/counters.py) for
about a minute: 5s windows, Prometheus stopped for 12s, the exporter restarted (every counter from zero) once.
Ground truth: the exporter's own increments per window (counted by the exporter as it makes them), and the
growth computed from Prometheus' raw samples. Prints a Markdown table (docs/billing-accuracy.md).

    .venv/bin/python -m bench.billing_accuracy
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meterworker.config.models import TLS  # noqa: E402
from meterworker.query import raw_samples  # noqa: E402
from meterworker.query.counter.compute import Gaps, Plan, series_growth  # noqa: E402
from meterworker.query.prometheus import PrometheusClient  # noqa: E402
from tests.support import PrometheusServer  # noqa: E402
from tests.support.counters import IntegerCounters  # noqa: E402

WINDOW = 5
FIXED = "10s"


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def main() -> int:
    truth: dict[int, int] = {}
    with IntegerCounters({"acme": 3}, initial={"acme": 100_000}) as ex, \
            PrometheusServer([ex.host_port], scrape_interval="1s") as prom:
        prom.wait_for("mw_calls_total")
        time.sleep(2)
        start = (int(time.time()) // WINDOW + 1) * WINDOW
        stop = threading.Event()

        def record():  # the exporter's increments per window, sampled finely
            last = None
            while not stop.is_set():
                now = time.time()
                grown = ex.grown()["acme"]
                if last is not None and now > start:
                    k = int((now - start) // WINDOW)
                    truth[k] = truth.get(k, 0) + grown - last
                last = grown
                time.sleep(0.01)

        threading.Thread(target=record, daemon=True).start()
        time.sleep(start - time.time() + 12)
        prom.stop()
        time.sleep(12)
        prom.start()
        prom.wait_for("mw_calls_total")
        time.sleep(6)
        ex.restart()
        time.sleep(12)
        ex.frozen = True
        time.sleep(3)
        stop.set()
        end = (int(time.time()) // WINDOW - 1) * WINDOW
        client = PrometheusClient(SimpleNamespace(url=prom.url, timeout=30.0, headers={}, basic_auth=None,
                                                  bearer_token=None, tls=TLS()))
        rows = []
        for k, t in enumerate(range(start, end, WINDOW)):
            s, e = t, t + WINDOW

            def one(q):
                r = prom.query(q, e)["result"]
                return float(r[0]["value"][1]) if r else 0.0

            fixed = one(f"increase(mw_calls_total[{FIXED}])")
            interval = one(f"increase(mw_calls_total[{WINDOW}s])")
            plan = Plan.of("mw_calls_total", utc(s), utc(e), 3600.0)
            counter = sum(v for _, v in series_growth(
                plan, lambda q, at: raw_samples.instant(client, q, at), lambda q, at: raw_samples.matrix(client, q, at),
                Gaps()))
            raw = prom.query(f"mw_calls_total[{WINDOW + 60}s]", e)["result"]
            samples = [(float(ts), int(v)) for ts, v in raw[0]["values"]] if raw else []
            prev = ([v for ts, v in samples if ts <= s] or [0])[-1]
            grown = 0
            for ts, v in samples:
                if s < ts <= e:
                    grown += v - prev if v >= prev else v
                    prev = v
            n = sum(1 for ts, _ in samples if s < ts <= e)
            rows.append((utc(s).strftime("%H:%M:%S"), n, truth.get(k, 0), grown, fixed, interval, counter))
    print(f"{WINDOW}s windows, scrape every 1s; Prometheus down ~12s; the exporter restarted (reset) once.\n")
    print(f"| window start | samples | ground truth (exporter) | raw-sample growth | increase([{FIXED}]) "
          f"| increase([$__interval]) | counter mode |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:g} |")
    tot = [sum(r[i] for r in rows) for i in range(2, 7)]
    print(f"| **total** | | **{tot[0]}** | **{tot[1]}** | **{tot[2]:.2f}** | **{tot[3]:.2f}** | **{tot[4]:g}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
