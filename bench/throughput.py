"""Throughput: one query returning N series (default 100,000), tick to last event at the sink.

Starts Redis, Prometheus on promtool-made blocks of N series, the fast sink and one meterworker
worker with `--concurrency` processes (default 2) consuming both queues. Each run dispatches the
tick as the active beat does (meterworker.schedule.beat.dispatch_due) and waits for every event at the sink;
the baseline (bench/baseline.py) runs in the same run, order alternating. Prints both side by side.

    bin/bench throughput [--series 100000] [--runs 5] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import sys
import time

from . import dataset, harness
from .harness import (Meterworker, pool_text, RssPoller, Sink, log, machine, median, prometheus_on_blocks, redis_server,
                      run_baseline, wait_for, worker_peak, workdir, write_config)

PROMQL = "bench_usage"


def settle(mw: Meterworker, timeout: float = 60) -> None:
    """Nothing pending in the outbox (the last batch was recorded delivered)."""
    wait_for(lambda: mw.rt.outbox.counts()["pending"] == 0, timeout, "the outbox to empty", interval=0.05)


def meterworker_run(mw: Meterworker, sink: Sink, n: int, timeout: float) -> dict:
    mw.flush_redis()
    sink.reset()
    mark = mw.rss.cpu_mark()
    mw.rt.redis.config_resetstat()
    t0 = time.time()
    mw.dispatch_tick(dataset.TICK)
    query_done = []
    completed = mw.rt.state.keys.completed("q0")

    def alive():
        mw.alive()
        if not query_done and mw.rt.redis.get(completed):
            query_done.append(time.time())

    sink.wait_for_events(n, timeout, alive=alive)
    alive()
    settle(mw)
    stats = sink.stats()
    return {"seconds": stats["last"] - t0, "events": stats["events"], "unique": stats["unique"],
            "requests": stats["requests"], "cpu": mw.rss.cpu_since(mark), "redis_commands": redis_commands(mw),
            "query_task_seconds": query_done[0] - t0 if query_done else None}


def redis_commands(mw: Meterworker, top: int = 12) -> dict[str, list]:
    """Redis' own account of the run: {command: [calls, milliseconds]} (scripts' commands counted too)."""
    stats = mw.rt.redis.info("commandstats")
    rows = sorted(((k.removeprefix("cmdstat_"), v["calls"], v["usec"] / 1000) for k, v in stats.items()),
                  key=lambda r: -r[2])
    return {name: [calls, round(ms, 1)] for name, calls, ms in rows[:top]}


def baseline_run(wd, rss, prom_url: str, sink: Sink, concurrency: int) -> dict:
    sink.reset()
    mark = rss.cpu_mark()
    got = run_baseline(wd, rss, "--prometheus", prom_url, "--sink", sink.url, "--at", str(dataset.TICK),
                       "--promql", PROMQL, "--names", "q0", "--query-concurrency", str(concurrency))
    stats = sink.stats()
    cpu = {k: v for k, v in rss.cpu_since(mark).items() if k in ("prometheus", "redis", "sink")}
    cpu["baseline"] = got["cpu"]
    return {"seconds": stats["last"] - got["start"], "events": stats["events"], "unique": stats["unique"],
            "requests": stats["requests"], "cpu": cpu}


def measure(series: int, runs: int, concurrency: int, *, keep: bool = False, timeout: float | None = None,
            profile: str | None = None, pool: str = "prefork") -> dict:
    timeout = timeout or max(60.0, series / 1000)
    rss = RssPoller().start()
    results = {"series": series, "runs": [], "concurrency": concurrency, "pool": pool}
    with workdir(keep) as wd, redis_server(wd) as (redis_url, redis_proc), \
            prometheus_on_blocks(wd, series) as (prom_url, prom_proc):
        sink = Sink(wd)
        rss.watch(redis_proc.pid, "redis")
        rss.watch(prom_proc.pid, "prometheus")
        rss.watch(sink.proc.pid, "sink")
        cfg = write_config(wd / "collector.yaml", prom_url, sink.url, redis_url, [{"name": "q0", "promql": PROMQL}])
        mw = Meterworker(wd, cfg, redis_url, rss, concurrency=concurrency, profile=profile, pool=pool)
        try:
            mw.start()
            for i in range(runs):
                order = ("baseline", "meterworker") if i % 2 == 0 else ("meterworker", "baseline")
                run = {}
                for who in order:
                    if who == "baseline":
                        run["baseline"] = baseline_run(wd, rss, prom_url, sink, concurrency)
                    else:
                        run["meterworker"] = meterworker_run(mw, sink, series, timeout)
                    time.sleep(0.5)
                run["ratio"] = run["meterworker"]["seconds"] / run["baseline"]["seconds"]
                log(f"run {i + 1}/{runs}: meterworker {run['meterworker']['seconds']:.2f}s, "
                    f"baseline {run['baseline']['seconds']:.2f}s, ratio {run['ratio']:.2f}")
                results["runs"].append(run)
        finally:
            mw.stop()
            sink.stop()
            rss.stop()
    results["rss_mb"] = rss.snapshot()
    return results


def summarize(r: dict) -> dict:
    runs = r["runs"]
    mw = median([x["meterworker"]["seconds"] for x in runs])
    base = median([x["baseline"]["seconds"] for x in runs])
    return {
        "series": r["series"], "meterworker_s": mw, "baseline_s": base,
        "ratio": median([x["ratio"] for x in runs]),
        "meterworker_eps": r["series"] / mw, "baseline_eps": r["series"] / base,
        "duplicates": max(x["meterworker"]["events"] - x["meterworker"]["unique"] for x in runs),
        "requests": median([x["meterworker"]["requests"] for x in runs]),
        "baseline_requests": median([x["baseline"]["requests"] for x in runs]),
        "worker_peak_mb": worker_peak(r["rss_mb"]),
    }


def print_cpu(runs: list[dict]) -> None:
    """CPU seconds per process during a run (median over runs; the machine has 2 cores)."""
    labels = sorted({k for x in runs for who in ("meterworker", "baseline") for k in x[who].get("cpu", {})})
    if not labels:
        return
    print("\nCPU seconds during a run (median; user + system):\n")
    print("| process | meterworker run | baseline run |\n|---|---|---|")
    for label in labels:
        cells = []
        for who in ("meterworker", "baseline"):
            xs = [x[who]["cpu"][label] for x in runs if label in x[who].get("cpu", {})]
            cells.append(f"{median(xs):.2f}" if xs else "")
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    for who in ("meterworker", "baseline"):
        total = median([sum(x[who].get("cpu", {}).values()) for x in runs])
        print(f"| all, {who} run | " + (f"{total:.2f} | |" if who == "meterworker" else f"| {total:.2f} |"))


def print_report(r: dict, goal_ratio: float = 1.25, goal_rss: float = 300) -> None:
    s = summarize(r)
    print(f"\n## throughput: one query, {r['series']:,} series, {r['concurrency']} worker processes "
          f"({pool_text(r)}), {len(r['runs'])} runs")
    print(f"machine: {machine()}\n")
    print("| run | meterworker s | baseline s | ratio | mw requests | mw events (unique) |")
    print("|---|---|---|---|---|---|")
    for i, x in enumerate(r["runs"], 1):
        m = x["meterworker"]
        print(f"| {i} | {m['seconds']:.2f} | {x['baseline']['seconds']:.2f} | {x['ratio']:.2f} | {m['requests']} "
              f"| {m['events']} ({m['unique']}) |")
    print(f"\n| median | meterworker | baseline |\n|---|---|---|")
    print(f"| tick to last event (s) | {s['meterworker_s']:.2f} | {s['baseline_s']:.2f} |")
    print(f"| events per second | {s['meterworker_eps']:,.0f} | {s['baseline_eps']:,.0f} |")
    print(f"| HTTP requests | {s['requests']:.0f} | {s['baseline_requests']:.0f} |")
    done = [x["meterworker"].get("query_task_seconds") for x in r["runs"]]
    if all(d is not None for d in done):
        print(f"| tick to the query task's end: events all in the outbox (s) | {median(done):.2f} | |")
    print_cpu(r["runs"])
    last = r["runs"][-1]["meterworker"].get("redis_commands")
    if last:
        print("\nRedis commands during the last meterworker run (calls, ms; commands run by scripts counted "
              "in their own rows too):\n")
        print("| command | calls | ms |\n|---|---|---|")
        for name, (calls, ms) in last.items():
            print(f"| {name} | {calls} | {ms:.0f} |")
    print(f"\nratio meterworker/baseline (median of per-run ratios): {s['ratio']:.2f} "
          f"(goal <= {goal_ratio}: {'met' if s['ratio'] <= goal_ratio else 'NOT met'})")
    print(f"duplicates at the sink: {s['duplicates']}")
    print("\npeak RSS (MB) per process:\n")
    print("| process | peak RSS MB |\n|---|---|")
    for name, mb in r["rss_mb"].items():
        print(f"| {name} | {mb:.0f} |")
    print(f"\nhighest worker peak RSS: {s['worker_peak_mb']:.0f} MB "
          f"(goal <= {goal_rss:.0f}: {'met' if s['worker_peak_mb'] <= goal_rss else 'NOT met'})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    harness.worker_options(p)
    args = p.parse_args(argv)
    r = measure(args.series, args.runs, args.concurrency, keep=args.keep, profile=args.profile, pool=args.pool)
    print_report(r)
    harness.write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
