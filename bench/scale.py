"""Scale: the same query at 10k, 100k and 1M series; time, events per second and peak RSS per size.

For each size, bench/throughput.py's measurement (its own Redis, Prometheus on promtool-made blocks of
that many series, the fast sink, one worker with `--concurrency` processes, the baseline in the same
run). Time should grow linearly with the series, and every worker's peak RSS stay bounded: the
Prometheus response is parsed as it streams and handed over in slices of 5,000 events, and send
tasks hold one batch at a time.

    bin/bench scale [--sizes 10000,100000,1000000] [--runs 3] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import harness
from .harness import ROOT, machine, pool_text
from .throughput import summarize


def print_report(results: list[dict], goal_rss: float = 600) -> None:
    rows = [summarize(r) for r in results]
    smallest = rows[0]
    sizes = ", ".join(f"{r['series']:,}" for r in rows)
    print(f"\n## scale: one query, {sizes} series, "
          f"{results[0]['concurrency']} worker processes ({pool_text(results[0])})")
    print(f"machine: {machine()}\n")
    print("| series | runs | meterworker s | baseline s | ratio | mw events/s | baseline events/s "
          "| mw s per 100k series | highest worker peak RSS MB | baseline peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r, s in zip(results, rows):
        base_rss = r["rss_mb"].get("baseline", float("nan"))
        print(f"| {s['series']:,} | {len(r['runs'])} | {s['meterworker_s']:.2f} | {s['baseline_s']:.2f} "
              f"| {s['ratio']:.2f} | {s['meterworker_eps']:,.0f} | {s['baseline_eps']:,.0f} "
              f"| {s['meterworker_s'] / s['series'] * 100_000:.2f} | {s['worker_peak_mb']:.0f} | {base_rss:.0f} |")
    largest = rows[-1]
    growth = (largest["meterworker_s"] / smallest["meterworker_s"]) / (largest["series"] / smallest["series"])
    print(f"\ntime per series, largest vs smallest size: {growth:.2f}x (1.00 = linear; below 1 the fixed "
          f"cost of a tick is spread over more series)")
    peak = max(s["worker_peak_mb"] for s in rows)
    print(f"highest worker peak RSS over all sizes: {peak:.0f} MB "
          f"(goal <= {goal_rss:.0f}: {'met' if peak <= goal_rss else 'NOT met'})")
    print(f"duplicates at the sink: {max(s['duplicates'] for s in rows)}")
    print("\npeak RSS (MB) of every process, per size:\n")
    names = sorted({k for r in results for k in r["rss_mb"]})
    print("| process | " + " | ".join(f"{r['series']:,}" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{r['rss_mb'].get(name, float('nan')):.0f}" for r in results) + " |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated series counts")
    p.add_argument("--runs", type=int, default=3, help="runs per size (the 1M size: --runs-largest)")
    p.add_argument("--runs-largest", type=int, default=None, help="runs of the largest size (default --runs)")
    harness.worker_options(p, profile=False)
    args = p.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results = []
    with tempfile.TemporaryDirectory(prefix="mw-bench-scale-") as tmp:
        for n in sizes:
            # Each size in a process of its own (bench.throughput): a fresh Celery app for its own Redis.
            runs = args.runs_largest if (n == sizes[-1] and args.runs_largest) else args.runs
            out = Path(tmp) / f"{n}.json"
            cmd = [sys.executable, "-m", "bench.throughput", "--series", str(n), "--runs", str(runs),
                   "--concurrency", str(args.concurrency), "--pool", args.pool, "--json", str(out), *(["--keep"] if args.keep else [])]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
            results.append(json.loads(out.read_text()))
    print_report(results)
    harness.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
