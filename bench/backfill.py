"""Backfill: 7 days of a per-minute query over 100 series (10,080 ticks, about 1M events) through the workers,
from `meterworker backfill` to the last event at the sink, beside `bin/bench scale`'s one tick of 1M series in
the same run.

Figures: requests to Prometheus during the backfill (Prometheus' own prometheus_http_requests_total; goal
<= 20), wall time from the command to the last delivery against the scale run's time to deliver 1M events of
one tick (goal <= 1.5x), peak RSS of every process (goal < 600 MB each), duplicates at the sink.

The data: bench/dataset's gauge blocks of `--series` series (one sample each, 30s before dataset.TICK) on a
Prometheus with --query.lookback-delta of days + 1, so every tick of the range sees every series; the
query is `bench_usage`, ticks every minute from dataset.TICK + 1m on.

    bin/bench backfill [--days 7] [--series 100] [--concurrency 2] [--scale-series 1000000] [--no-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import dataset, harness
from .harness import (ROOT, Meterworker, Proc, RssPoller, Sink, log, machine, prometheus_on_blocks, redis_server,
                      workdir, write_config)
from .throughput import settle, summarize

GOAL_REQUESTS = 20
GOAL_RATIO = 1.5
GOAL_RSS_MB = 600
_REQUESTS = re.compile(r'^prometheus_http_requests_total\{code="(\d+)",handler="(/api/v1/query(?:_range)?)"\} (\S+)$',
                       re.MULTILINE)


def query_requests(prom_url: str) -> dict[str, int]:
    """{handler: requests} of Prometheus' query APIs, from its own /metrics (not itself a query)."""
    import httpx

    text = httpx.get(f"{prom_url}/metrics", timeout=10).text
    out: dict[str, int] = {}
    for _code, handler, value in _REQUESTS.findall(text):
        out[handler] = out.get(handler, 0) + int(float(value))
    return out


def measure(days: float, series: int, concurrency: int, *, keep: bool = False, timeout: float = 1800) -> dict:
    ticks = round(days * 1440)
    start, end = dataset.TICK + 60, dataset.TICK + ticks * 60
    lookback = f"{int(days) + 1}d"
    rss = RssPoller().start()
    with workdir(keep) as wd, redis_server(wd) as (redis_url, redis_proc), \
            prometheus_on_blocks(wd, series, flags=(f"--query.lookback-delta={lookback}",)) as (prom_url, prom_proc):
        sink = Sink(wd)
        rss.watch(redis_proc.pid, "redis")
        rss.watch(prom_proc.pid, "prometheus")
        rss.watch(sink.proc.pid, "sink")
        cfg = write_config(wd / "collector.yaml", prom_url, sink.url, redis_url, [{"name": "q0", "promql": "bench_usage"}])
        mw = Meterworker(wd, cfg, redis_url, rss, concurrency=concurrency)
        mw.start()
        try:
            before = query_requests(prom_url)
            t0 = time.time()
            cli = Proc("backfill", [sys.executable, "-m", "meterworker.cli", "backfill", "-c", str(cfg), "--from",
                                    str(start), "--to", str(end), "--yes"], wd, env={"PYTHONPATH": str(ROOT)})
            rss.watch(cli.pid, "backfill command")

            def alive():
                mw.alive()
                if cli.p.poll() not in (None, 0):
                    raise RuntimeError(f"the backfill command exited with {cli.p.returncode}:\n{cli.tail()}")

            sink.wait_for_events(ticks * series, timeout, alive=alive)
            cli_rc = cli.p.wait(120)
            cli_done = time.time()
            settle(mw)
            after = query_requests(prom_url)
            stats = sink.stats()
            output = cli.tail(4000)
            cli.stop()
        finally:
            mw.stop()
            sink.stop()
            rss.stop()
    requests = {h: after.get(h, 0) - before.get(h, 0) for h in set(after) | set(before)}
    return {"days": days, "series": series, "ticks": ticks, "concurrency": concurrency,
            "seconds": stats["last"] - t0, "command_seconds": cli_done - t0, "command_exit": cli_rc,
            "events": stats["events"], "unique": stats["unique"], "sink_requests": stats["requests"],
            "prometheus_requests": requests, "rss_mb": rss.snapshot(), "command_output": output}


def scale_run(series: int, concurrency: int) -> dict:
    """`bin/bench scale --sizes <series> --runs 1`'s measurement (bench.throughput in a process of its own)."""
    with tempfile.TemporaryDirectory(prefix="mw-bench-backfill-scale-") as tmp:
        out = Path(tmp) / "scale.json"
        subprocess.run([sys.executable, "-m", "bench.throughput", "--series", str(series), "--runs", "1",
                        "--concurrency", str(concurrency), "--json", str(out)], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return json.loads(out.read_text())


def print_report(r: dict, scale: dict | None) -> None:
    req = r["prometheus_requests"]
    n_req = sum(req.values())
    print(f"\n## backfill: {r['days']:g} days of a per-minute query over {r['series']:,} series "
          f"({r['ticks']:,} ticks, {r['ticks'] * r['series']:,} events), through {r['concurrency']} worker processes")
    print(f"machine: {machine()}\n")
    print("| figure | value | goal | |")
    print("|---|---|---|---|")
    print(f"| requests to Prometheus | {n_req} ({req.get('/api/v1/query_range', 0)} range, "
          f"{req.get('/api/v1/query', 0)} instant) | <= {GOAL_REQUESTS} | {'met' if n_req <= GOAL_REQUESTS else 'NOT met'} |")
    print(f"| command to last delivery | {r['seconds']:.2f} s (the command itself: {r['command_seconds']:.2f} s, "
          f"exit {r['command_exit']}) | | |")
    if scale is not None:
        s = summarize(scale)
        ratio = r["seconds"] / s["meterworker_s"]
        print(f"| bench scale, {s['series']:,} series of one tick, tick to last delivery | {s['meterworker_s']:.2f} s "
              f"| | |")
        print(f"| backfill / scale | {ratio:.2f} | <= {GOAL_RATIO} | {'met' if ratio <= GOAL_RATIO else 'NOT met'} |")
    peak = max(r["rss_mb"].values())
    print(f"| highest peak RSS of a process | {peak:.0f} MB | < {GOAL_RSS_MB} MB | "
          f"{'met' if peak < GOAL_RSS_MB else 'NOT met'} |")
    print(f"| events at the sink (unique) | {r['events']:,} ({r['unique']:,}) | {r['ticks'] * r['series']:,} | |")
    print(f"\nduplicates at the sink: {r['events'] - r['unique']}")
    print("\npeak RSS (MB) of every process:\n")
    print("| process | backfill run |" + (" scale run |" if scale else ""))
    print("|---|---|" + ("---|" if scale else ""))
    for name in sorted(set(r["rss_mb"]) | set(scale["rss_mb"] if scale else {})):
        cells = [r["rss_mb"].get(name)] + ([scale["rss_mb"].get(name)] if scale else [])
        print(f"| {name} | " + " | ".join("" if c is None else f"{c:.0f}" for c in cells) + " |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench backfill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--series", type=int, default=100)
    p.add_argument("--scale-series", type=int, default=1_000_000,
                   help="the series of the scale run compared against (default: the backfill's events)")
    p.add_argument("--no-scale", action="store_true", help="skip the scale run (no ratio)")
    harness.worker_options(p, profile=False)
    args = p.parse_args(argv)
    r = measure(args.days, args.series, args.concurrency, keep=args.keep)
    log(f"backfill: {r['seconds']:.2f}s, {sum(r['prometheus_requests'].values())} Prometheus requests")
    scale = None if args.no_scale else scale_run(args.scale_series, args.concurrency)
    print_report(r, scale)
    harness.write_json(args.json, {"backfill": r, "scale": scale})
    return 0


if __name__ == "__main__":
    sys.exit(main())
