"""Throughput on a replicated Redis: the same tick of N series (bench/throughput.py's instant query) through
meterworker on a primary, one replica and three Sentinels (tests/support/sentinel.py), broker and state on
the sentinel:// URL, with `redis_min_replicas: 1` (the outbox writes and delivered records confirmed by WAIT)
and with 0, alternating, the same workers' code and Redis; prints both and their ratio.

    bin/bench throughput --scenario replicated [--series 100000] [--runs 3]
"""

from __future__ import annotations

import time

from .harness import Meterworker, RssPoller, Sink, log, machine, median, pool_text, prometheus_on_blocks, \
    workdir, write_config
from .throughput import PROMQL, meterworker_run

SETTINGS = {"off": 0, "wait": 1}  # redis_min_replicas


def measure_replicated(series: int, runs: int, concurrency: int, *, keep: bool = False,
                       pool: str = "prefork") -> dict:
    from tests.support.sentinel import SentinelCluster

    timeout = max(60.0, series / 1000)
    rss = RssPoller().start()
    results = {"series": series, "runs": [], "concurrency": concurrency, "pool": pool, "scenario": "replicated"}
    with workdir(keep) as wd, SentinelCluster("bench", replicas=1) as cluster, \
            prometheus_on_blocks(wd, series) as (prom_url, prom_proc):
        url = ";".join(f"{u}/0" for u in cluster.sentinel_urls())
        sink = Sink(wd)
        rss.watch(prom_proc.pid, "prometheus")
        rss.watch(sink.proc.pid, "sink")
        workers, running = {}, None
        for name, replicas in SETTINGS.items():
            settings = {"redis_sentinel": {"master_name": "bench"}, "redis_min_replicas": replicas}
            cfg = write_config(wd / f"collector-{name}.yaml", prom_url, sink.url, url,
                               [{"name": "q0", "promql": PROMQL}], settings=settings)
            workers[name] = Meterworker(wd, cfg, url, rss, concurrency=concurrency, pool=pool)
        try:
            for i in range(runs):
                run = {}
                for name in (list(SETTINGS) if i % 2 == 0 else list(reversed(SETTINGS))):
                    if running is not workers[name]:
                        if running is not None:
                            running.stop()
                        running = workers[name]
                        running.start()
                    run[name] = meterworker_run(running, sink, series, timeout)
                    waits = running.rt.redis.info("commandstats").get("cmdstat_wait", {})
                    run[name]["wait_calls"], run[name]["wait_ms"] = waits.get("calls", 0), waits.get("usec", 0) / 1000
                    time.sleep(0.5)
                run["ratio"] = run["wait"]["seconds"] / run["off"]["seconds"]
                log(f"run {i + 1}/{runs}: redis_min_replicas 1 {run['wait']['seconds']:.2f}s, "
                    f"0 {run['off']['seconds']:.2f}s, ratio {run['ratio']:.2f}")
                results["runs"].append(run)
        finally:
            if running is not None:
                running.stop()
            sink.stop()
            rss.stop()
    return results


def print_replicated_report(r: dict) -> None:
    print(f"\n## throughput on a replicated Redis: one query, {r['series']:,} series, {r['concurrency']} worker "
          f"processes ({pool_text(r)}), a primary, 1 replica and 3 Sentinels, {len(r['runs'])} runs")
    print(f"machine: {machine()}\n")
    print("| run | redis_min_replicas 1 s | 0 s | ratio | query task s (1 / 0) | WAIT calls (1 / 0) | WAIT ms in Redis (1) |")
    print("|---|---|---|---|---|---|---|")
    for i, x in enumerate(r["runs"], 1):
        w, o = x["wait"], x["off"]
        print(f"| {i} | {w['seconds']:.2f} | {o['seconds']:.2f} | {x['ratio']:.2f} | "
              f"{w['query_task_seconds'] or 0:.2f} / {o['query_task_seconds'] or 0:.2f} | "
              f"{w['wait_calls']} / {o['wait_calls']} | {w['wait_ms']:.1f} |")
    print(f"\nmedian tick to last event: {median([x['wait']['seconds'] for x in r['runs']]):.2f}s with WAIT, "
          f"{median([x['off']['seconds'] for x in r['runs']]):.2f}s without; ratio (median of per-run ratios) "
          f"{median([x['ratio'] for x in r['runs']]):.2f}")
