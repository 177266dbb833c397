"""Fan-out: 1,000 queries per tick, 10 series each; tick to last delivery, HTTP requests, tick lag.

Starts Redis, Prometheus on promtool-made blocks (10 series per `shard` label value), the fast sink and
one meterworker worker with `--concurrency` processes (default 2) consuming both queues. Each run
dispatches the tick with beat's own code (meterworker.schedule.beat.dispatch_due, all queries) at t0 and
waits for every event at the sink. Tick lag of a query is when a worker started its task (bench/task_starts.py
records it) less t0; delivery lag is when its last event reached the sink less t0. The
baseline (bench/baseline.py) runs the same 1,000 queries, two at a time, and posts the same batches.

    bin/bench fanout [--queries 1000] [--runs 5] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import sys
import time

from . import dataset, harness
from .harness import (Meterworker, pool_text, RssPoller, Sink, TaskStarts, log, machine, median, prometheus_on_blocks,
                      redis_server, run_baseline, wait_for, worker_peak, workdir, write_config)


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def query_names(n: int) -> list[str]:
    return [f"q{k:04d}" for k in range(n)]


def promql(k: int) -> str:
    return f'bench_usage{{shard="{k}"}}'


def meterworker_run(mw: Meterworker, sink: Sink, starts: TaskStarts, events: int, timeout: float) -> dict:
    mw.flush_redis()
    sink.reset()
    starts.clear()
    t0 = time.time()
    sent = mw.dispatch_tick(dataset.TICK)
    dispatched = time.time()
    sink.wait_for_events(events, timeout, alive=mw.alive)
    wait_for(lambda: mw.rt.outbox.counts()["pending"] == 0, 60, "the outbox to empty")
    stats = sink.stats(by_type=True)
    started = starts.read()
    missing = sum(1 for task_id, _, _ in sent if task_id not in started)
    if missing:
        log(f"{missing} of {len(sent)} query tasks have no start time; tick lag is of the others")
    tick_lag = [started[task_id] - t0 for task_id, _, _ in sent if task_id in started]
    delivery_lag = [t - t0 for t in stats["last_by_type"].values()]
    return {"seconds": stats["last"] - t0, "dispatch_seconds": dispatched - t0, "tasks": len(sent),
            "events": stats["events"], "unique": stats["unique"], "requests": stats["requests"],
            "tick_lag_p50": percentile(tick_lag, 50), "tick_lag_p99": percentile(tick_lag, 99),
            "delivery_lag_p50": percentile(delivery_lag, 50), "delivery_lag_p99": percentile(delivery_lag, 99),
            "sizes": stats["sizes"], "task_starts_missing": missing}


def baseline_run(wd, rss, prom_url: str, sink: Sink, n: int, concurrency: int) -> dict:
    sink.reset()
    qfile = wd / "queries.txt"
    qfile.write_text("".join(promql(k) + "\n" for k in range(n)))
    got = run_baseline(wd, rss, "--prometheus", prom_url, "--sink", sink.url, "--at", str(dataset.TICK),
                       "--promql-file", str(qfile), "--names", *query_names(n),
                       "--query-concurrency", str(concurrency))
    stats = sink.stats()
    return {"seconds": stats["last"] - got["start"], "events": stats["events"], "unique": stats["unique"],
            "requests": stats["requests"]}


def measure(queries: int, runs: int, concurrency: int, *, keep: bool = False, profile: str | None = None,
            task_events: bool = False, pool: str = "prefork") -> dict:
    series = queries * dataset.SERIES_PER_SHARD
    rss = RssPoller().start()
    results = {"queries": queries, "series": series, "runs": [], "concurrency": concurrency,
               "task_events": task_events, "pool": pool}
    with workdir(keep) as wd, redis_server(wd) as (redis_url, redis_proc), \
            prometheus_on_blocks(wd, series) as (prom_url, prom_proc):
        sink = Sink(wd)
        for proc, label in ((redis_proc, "redis"), (prom_proc, "prometheus"), (sink.proc, "sink")):
            rss.watch(proc.pid, label)
        cfg = write_config(wd / "collector.yaml", prom_url, sink.url, redis_url,
                           [{"name": name, "promql": promql(k)} for k, name in enumerate(query_names(queries))])
        mw = Meterworker(wd, cfg, redis_url, rss, concurrency=concurrency, profile=profile, task_events=task_events,
                         pool=pool, task_starts=True)
        if task_events:
            mw.app.conf.task_send_sent_event = True  # beat's dispatch sends task-sent events too
        starts = TaskStarts(mw.rt.redis)
        try:
            mw.start()
            for i in range(runs):
                order = ("baseline", "meterworker") if i % 2 == 0 else ("meterworker", "baseline")
                run = {}
                for who in order:
                    if who == "baseline":
                        run["baseline"] = baseline_run(wd, rss, prom_url, sink, queries, concurrency)
                    else:
                        run["meterworker"] = meterworker_run(mw, sink, starts, series, max(60.0, queries / 10))
                    time.sleep(0.5)
                run["ratio"] = run["meterworker"]["seconds"] / run["baseline"]["seconds"]
                m = run["meterworker"]
                log(f"run {i + 1}/{runs}: meterworker {m['seconds']:.2f}s ({m['requests']} requests, "
                    f"tick lag p50 {m['tick_lag_p50']:.2f}s p99 {m['tick_lag_p99']:.2f}s), "
                    f"baseline {run['baseline']['seconds']:.2f}s")
                results["runs"].append(run)
        finally:
            mw.stop()
            sink.stop()
            rss.stop()
    results["rss_mb"] = rss.snapshot()
    return results


def print_report(r: dict, goal_seconds: float = 5.0) -> None:
    runs = r["runs"]
    workers = r["concurrency"]
    events = r["series"]
    request_goal = 1.2 * events / 100 + workers
    med = lambda key: median([x["meterworker"][key] for x in runs])  # noqa: E731
    mw_s, base_s = med("seconds"), median([x["baseline"]["seconds"] for x in runs])
    print(f"\n## fan-out: {r['queries']:,} queries x {dataset.SERIES_PER_SHARD} series per tick, "
          f"{workers} worker processes ({pool_text(r)}), {len(runs)} runs"
          + (", Celery task events on" if r.get("task_events") else ""))
    print(f"machine: {machine()}\n")
    print("| run | meterworker s | baseline s | ratio | dispatch s | requests | tick lag p50 / p99 s "
          "| delivery lag p50 / p99 s |")
    print("|---|---|---|---|---|---|---|---|")
    for i, x in enumerate(runs, 1):
        m = x["meterworker"]
        print(f"| {i} | {m['seconds']:.2f} | {x['baseline']['seconds']:.2f} | {x['ratio']:.2f} "
              f"| {m['dispatch_seconds']:.2f} | {m['requests']} | {m['tick_lag_p50']:.2f} / {m['tick_lag_p99']:.2f} "
              f"| {m['delivery_lag_p50']:.2f} / {m['delivery_lag_p99']:.2f} |")
    print(f"\n| median | meterworker | baseline |\n|---|---|---|")
    print(f"| tick to last delivery (s) | {mw_s:.2f} | {base_s:.2f} |")
    print(f"| HTTP requests | {med('requests'):.0f} | {median([x['baseline']['requests'] for x in runs]):.0f} |")
    print(f"| beat's dispatch of the tick (s) | {med('dispatch_seconds'):.2f} | |")
    print(f"| tick lag p50 / p99 (s) | {med('tick_lag_p50'):.2f} / {med('tick_lag_p99'):.2f} | |")
    print(f"| delivery lag p50 / p99 (s) | {med('delivery_lag_p50'):.2f} / {med('delivery_lag_p99'):.2f} | |")
    print(f"\nratio meterworker/baseline (median of per-run ratios): {median([x['ratio'] for x in runs]):.2f}")
    print(f"tick to last delivery: {mw_s:.2f}s (goal <= {goal_seconds:g}s: "
          f"{'met' if mw_s <= goal_seconds else 'NOT met'})")
    worst_requests = max(x["meterworker"]["requests"] for x in runs)
    print(f"HTTP requests: at most {worst_requests} (goal <= 1.2 x {events}/100 + {workers} = {request_goal:.0f}: "
          f"{'met' if worst_requests <= request_goal else 'NOT met'})")
    print(f"duplicates at the sink: {max(x['meterworker']['events'] - x['meterworker']['unique'] for x in runs)}")
    print(f"highest worker peak RSS: {worker_peak(r['rss_mb']):.0f} MB")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench fanout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    harness.worker_options(p)
    p.add_argument("--task-events", action="store_true",
                   help="run the worker and the dispatch with Celery's task events on (off in celeryconfig), "
                        "as when Flower is running")
    args = p.parse_args(argv)
    r = measure(args.queries, args.runs, args.concurrency, keep=args.keep, profile=args.profile,
                task_events=args.task_events, pool=args.pool)
    print_report(r)
    harness.write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
