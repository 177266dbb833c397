"""Throughput: one query returning N series (default 100,000), tick to last event at the sink.

Starts Redis, Prometheus on promtool-made blocks of N series, the fast sink and one meterworker
worker with `--concurrency` processes (default 2) consuming both queues. Each run dispatches the
tick as the active beat does (meterworker.schedule.beat.dispatch_due) and waits for every event at the sink;
the baseline (bench/baseline.py) runs in the same run, order alternating. Prints both side by side.

    bin/bench throughput [--series 100000] [--runs 5] [--concurrency 2]

`--scenario counter`: the same tick of the same counter data (bench/dataset.py counter blocks: 13 samples per
series, one in 1,000 reset in the window, one in 5,000 new) as a `counter:` query and as an instant `promql:`
query (increase(...[$__interval])), alternating, each tick to last event at the sink; prints the ratio.

`--scenario replicated`: the instant query's tick on a replicated Redis (Sentinel), with and without WAIT
(bench/throughput_replicated.py).
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


HTTP_CHOICES = {"transport": ("transport",), "httpx": ("httpx",), "both": ("transport", "httpx")}
HTTP_HELP = ("the send workers' HTTP client: transport (meterworker's http11.Transport, as deployed), httpx "
             "(httpx's own transport), or both, alternating in every run (the worker restarted for each)")


def measure(series: int, runs: int, concurrency: int, *, keep: bool = False, timeout: float | None = None,
            profile: str | None = None, pool: str = "prefork", http: str = "transport") -> dict:
    timeout = timeout or max(60.0, series / 1000)
    rss = RssPoller().start()
    variants = HTTP_CHOICES[http]
    # The first variant's figures are a run's "meterworker" (and "ratio"); another's "meterworker_httpx".
    keys = {v: "meterworker" if n == 0 else f"meterworker_{v}" for n, v in enumerate(variants)}
    results = {"series": series, "runs": [], "concurrency": concurrency, "pool": pool, "http": http}
    with workdir(keep) as wd, redis_server(wd) as (redis_url, redis_proc), \
            prometheus_on_blocks(wd, series) as (prom_url, prom_proc):
        sink = Sink(wd)
        rss.watch(redis_proc.pid, "redis")
        rss.watch(prom_proc.pid, "prometheus")
        rss.watch(sink.proc.pid, "sink")
        cfg = write_config(wd / "collector.yaml", prom_url, sink.url, redis_url, [{"name": "q0", "promql": PROMQL}])
        workers = {v: Meterworker(wd, cfg, redis_url, rss, concurrency=concurrency, profile=profile, pool=pool,
                                  http=v) for v in variants}
        running = None
        try:
            for i in range(runs):
                order = ["baseline", *variants] if i % 2 == 0 else [*reversed(variants), "baseline"]
                run = {}
                for who in order:
                    if who == "baseline":
                        run["baseline"] = baseline_run(wd, rss, prom_url, sink, concurrency)
                    else:
                        if running is not workers[who]:
                            if running is not None:
                                running.stop()
                            running = workers[who]
                            running.start()
                        run[keys[who]] = meterworker_run(running, sink, series, timeout)
                    time.sleep(0.5)
                for v in variants:
                    run[keys[v].replace("meterworker", "ratio")] = run[keys[v]]["seconds"] / run["baseline"]["seconds"]
                log(f"run {i + 1}/{runs}: " + ", ".join(
                    f"meterworker ({v}) {run[keys[v]]['seconds']:.2f}s" for v in variants)
                    + f", baseline {run['baseline']['seconds']:.2f}s")
                results["runs"].append(run)
        finally:
            if running is not None:
                running.stop()
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


def _worker_cpu(m: dict) -> float:
    return sum(v for k, v in m.get("cpu", {}).items() if k.startswith("worker"))


def print_http_comparison(runs: list[dict]) -> None:
    """meterworker with http11.Transport beside meterworker with httpx's own transport, run by run."""
    print("\nThe send workers' HTTP client, in the same runs: http11.Transport (as deployed) and httpx's own:\n")
    print("| run | transport s | httpx s | transport worker CPU s | httpx worker CPU s | requests (transport / httpx) |")
    print("|---|---|---|---|---|---|")
    for i, x in enumerate(runs, 1):
        t, h = x["meterworker"], x["meterworker_httpx"]
        print(f"| {i} | {t['seconds']:.2f} | {h['seconds']:.2f} | {_worker_cpu(t):.2f} | {_worker_cpu(h):.2f} "
              f"| {t['requests']} / {h['requests']} |")
    series = runs[0]["meterworker"]["events"]
    ts, hs = median([x["meterworker"]["seconds"] for x in runs]), median([x["meterworker_httpx"]["seconds"] for x in runs])
    tc, hc = median([_worker_cpu(x["meterworker"]) for x in runs]), median([_worker_cpu(x["meterworker_httpx"]) for x in runs])
    reqs = median([x["meterworker"]["requests"] for x in runs])
    saved = median([(_worker_cpu(x["meterworker_httpx"]) - _worker_cpu(x["meterworker"])) / x["meterworker"]["requests"]
                    for x in runs])
    print(f"\n| median | transport | httpx |\n|---|---|---|")
    print(f"| tick to last event (s) | {ts:.2f} | {hs:.2f} |")
    print(f"| events per second | {series / ts:,.0f} | {series / hs:,.0f} |")
    print(f"| worker CPU s (all worker processes) | {tc:.2f} | {hc:.2f} |")
    print(f"| worker CPU ms per request ({reqs:.0f} requests) | {1000 * tc / reqs:.2f} | {1000 * hc / reqs:.2f} |")
    print(f"| ratio to the baseline | {median([x['ratio'] for x in runs]):.2f} "
          f"| {median([x['ratio_httpx'] for x in runs]):.2f} |")
    print(f"\nhttpx's own transport costs {1000 * saved:.2f} ms of worker CPU more per request (median of the runs' "
          f"differences), {hs / ts:.2f}x the time")


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
    if all("meterworker_httpx" in x for x in r["runs"]):
        print_http_comparison(r["runs"])
    print("\npeak RSS (MB) per process:\n")
    print("| process | peak RSS MB |\n|---|---|")
    for name, mb in r["rss_mb"].items():
        print(f"| {name} | {mb:.0f} |")
    print(f"\nhighest worker peak RSS: {s['worker_peak_mb']:.0f} MB "
          f"(goal <= {goal_rss:.0f}: {'met' if s['worker_peak_mb'] <= goal_rss else 'NOT met'})")


COUNTER_QUERIES = {"instant": {"name": "q0", "promql": "increase(bench_calls_total[$__interval])"},
                   "counter": {"name": "q0", "counter": "bench_calls_total"}}


def measure_counter(series: int, runs: int, concurrency: int, *, keep: bool = False, pool: str = "prefork") -> dict:
    timeout = max(120.0, series / 500)
    rss = RssPoller().start()
    results = {"series": series, "runs": [], "concurrency": concurrency, "pool": pool, "scenario": "counter"}
    with workdir(keep) as wd, redis_server(wd) as (redis_url, redis_proc), \
            prometheus_on_blocks(wd, series, kind="counter") as (prom_url, prom_proc):
        sink = Sink(wd)
        rss.watch(redis_proc.pid, "redis")
        rss.watch(prom_proc.pid, "prometheus")
        workers = {}
        for kind, q in COUNTER_QUERIES.items():
            cfg = write_config(wd / f"collector-{kind}.yaml", prom_url, sink.url, redis_url, [q])
            workers[kind] = Meterworker(wd, cfg, redis_url, rss, concurrency=concurrency, pool=pool)
        try:
            for i in range(runs):
                run = {}
                for kind in (["instant", "counter"] if i % 2 == 0 else ["counter", "instant"]):
                    workers[kind].start()
                    try:
                        run[kind] = meterworker_run(workers[kind], sink, series, timeout)
                    finally:
                        workers[kind].stop()
                run["ratio"] = run["counter"]["seconds"] / run["instant"]["seconds"]
                log(f"run {i + 1}/{runs}: counter {run['counter']['seconds']:.2f}s, instant "
                    f"{run['instant']['seconds']:.2f}s, ratio {run['ratio']:.2f}")
                results["runs"].append(run)
        finally:
            sink.stop()
            rss.stop()
    return results


def print_counter_report(r: dict, goal: float = 2.0) -> None:
    print(f"\n## throughput, counter scenario: one query, {r['series']:,} counter series, {r['concurrency']} worker "
          f"processes ({pool_text(r)}), {len(r['runs'])} runs")
    print(f"machine: {machine()}\n")
    print("| run | counter s | instant promql s | ratio | counter query task s | instant query task s |")
    print("|---|---|---|---|---|---|")
    for i, x in enumerate(r["runs"], 1):
        c, p = x["counter"], x["instant"]
        print(f"| {i} | {c['seconds']:.2f} | {p['seconds']:.2f} | {x['ratio']:.2f} | "
              f"{c['query_task_seconds'] or 0:.2f} | {p['query_task_seconds'] or 0:.2f} |")
    ratio = median([x["ratio"] for x in r["runs"]])
    print(f"\nratio counter tick / instant tick (median of per-run ratios): {ratio:.2f} "
          f"(goal <= {goal}: {'met' if ratio <= goal else 'NOT met'})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--http", choices=tuple(HTTP_CHOICES), default="transport", help=HTTP_HELP)
    p.add_argument("--scenario", choices=("instant", "counter", "replicated"), default="instant",
                   help="instant: one promql query against the baseline; counter: a counter query against the "
                        "same tick as an instant promql query; replicated: the instant query on a Sentinel "
                        "deployment with redis_min_replicas 1 against 0 (bench/throughput_replicated.py)")
    harness.worker_options(p)
    args = p.parse_args(argv)
    if args.scenario == "replicated":
        from .throughput_replicated import measure_replicated, print_replicated_report

        r = measure_replicated(args.series, args.runs, args.concurrency, keep=args.keep, pool=args.pool)
        print_replicated_report(r)
        harness.write_json(args.json, r)
        return 0
    if args.scenario == "counter":
        r = measure_counter(args.series, args.runs, args.concurrency, keep=args.keep, pool=args.pool)
        print_counter_report(r)
        harness.write_json(args.json, r)
        return 0
    r = measure(args.series, args.runs, args.concurrency, keep=args.keep, profile=args.profile, pool=args.pool,
                http=args.http)
    print_report(r)
    harness.write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
