"""The cost of confirming writes on a replica (meterworker.redis_min_replicas: 1) where meterworker makes them.

Starts a primary, a replica and three Sentinels (tests/support/sentinel.py) and, through meterworker's
own Runtime on the sentinel:// URL, times the two writes that are confirmed when Redis is replicated,
with the confirmation (min_replicas 1) and without it (0), alternating, in the same run:

  tick     a query task's hand-over: --series events added to the outbox in slices of 5,000 (as
           query/task.py does), then confirm_writes (probe write + WAIT + primary check)
  batch    a send task's record of one delivered batch of batching.count events (the outbox_delivered
           script), then confirm_writes

    python -m bench.replication [--series 10000] [--batch 500] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from meterworker.config import load_config  # noqa: E402
from meterworker.query.task import HANDOVER  # noqa: E402
from meterworker.runtime import Runtime  # noqa: E402
from tests.support.mwproc import write_config  # noqa: E402
from tests.support.sentinel import SentinelCluster  # noqa: E402


def event(i: int, tick: int) -> dict:
    return {"specversion": "1.0", "id": f"bench-{tick}-{i}", "source": "prometheus", "type": "q",
            "subject": f"customer-{i}", "time": "2026-11-27T10:00:00Z",
            "data": {"value": float(i), "metric": {"instance": f"customer-{i}"}}}


def runtime(tmp: Path, cluster: SentinelCluster, replicas: int, batch: int) -> Runtime:
    path = write_config(tmp / f"c{replicas}.yaml", "http://127.0.0.1:9", "http://127.0.0.1:9",
                        [{"name": "q", "promql": "up"}], name="bench-repl",
                        http={"batching": {"count": batch, "period": "1h"}},
                        extra={"meterworker": {"redis_url": ";".join(f"{u}/0" for u in cluster.sentinel_urls()),
                                               "redis_sentinel": {"master_name": cluster.master_name},
                                               "redis_min_replicas": replicas, "redis_replica_timeout": "5s"}})
    return Runtime(load_config(str(path)).config)


def time_tick(rt: Runtime, series: int, tick: int) -> float:
    events = [event(i, tick) for i in range(series)]
    t0 = time.perf_counter()
    mark = rt.replication_mark()
    for i in range(0, series, HANDOVER):
        rt.outbox.add(events[i:i + HANDOVER], {"query": "q", "tick": tick})  # as enqueue_events, no send task asked for
    rt.confirm_writes(mark, "bench tick")
    return time.perf_counter() - t0


def time_batch(rt: Runtime, batch: int, tick: int) -> float:
    rt.outbox.add([event(i, tick) for i in range(batch)], {"query": "q", "tick": tick})
    taken = rt.outbox.take()
    assert taken is not None and len(taken.items) == batch
    t0 = time.perf_counter()
    mark = rt.replication_mark()
    rt.outbox.delivered_now(taken, taken.items, 3600)
    rt.confirm_writes(mark, "bench batch")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args(argv)
    results: dict[int, dict[str, list[float]]] = {0: {"tick": [], "batch": []}, 1: {"tick": [], "batch": []}}
    with tempfile.TemporaryDirectory(prefix="mw-bench-repl-") as tmp, SentinelCluster("benchmaster") as cluster:
        rts = {n: runtime(Path(tmp), cluster, n, args.batch) for n in (0, 1)}
        tick = 1795860000
        for run in range(args.runs):
            for n in ((0, 1) if run % 2 == 0 else (1, 0)):
                rt = rts[n]
                rt.redis.flushdb()
                tick += 60
                results[n]["tick"].append(time_tick(rt, args.series, tick))
                rt.redis.flushdb()
                results[n]["batch"].append(time_batch(rt, args.batch, tick))
    print(f"replicated Redis (primary + 1 replica + 3 Sentinels, loopback), {args.runs} runs, median (min-max):")
    for what, label in (("tick", f"tick: {args.series:,} events to the outbox"),
                        ("batch", f"batch: {args.batch} events recorded delivered")):
        row = []
        for n in (0, 1):
            xs = [x * 1000 for x in results[n][what]]
            row.append(statistics.median(xs))
            print(f"  {label:<40} min_replicas {n}: {row[-1]:8.2f} ms ({min(xs):.2f}-{max(xs):.2f})")
        print(f"  {'':<40} cost of confirming: {row[1] - row[0]:+.2f} ms ({(row[1] / row[0] - 1) * 100:+.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
