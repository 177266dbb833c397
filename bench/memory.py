"""Memory: what Redis holds per event once it is delivered (for dedup_horizon), and while it waits.

Starts Redis, Prometheus on promtool-made blocks of 1,000 series, the fast sink and one meterworker worker
(`--concurrency` processes), then for each tick size (10 queries of 10 series, `bench_usage{shard="k"}`,
and one of 1,000, `bench_usage`) sends `--ticks` ticks of query tasks, as beat does (a tick a second
before dataset.TICK and on, all within Prometheus' lookback of the one sample), waits for every event at
the sink and an empty outbox, and reports Redis' used_memory growth (less client buffers) per delivered event, and the
MEMORY USAGE of the delivered marks (meterworker:*:marks:*) per event. The same run's reference is the
layout before the marks hash: one `SET delivered:{source}:{id} 1 EX dedup_horizon` per event, written
by hand for as many events. Last, with the sink stopped, it queues `--outage-ticks` ticks of 1,000
series and reports the growth per pending event.

    bin/bench memory [--ticks 200] [--outage-ticks 20] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import sys
import time

import redis
import yaml

from . import dataset, harness
from .harness import (Meterworker, RssPoller, Sink, log, machine, prometheus_on_blocks, redis_server, wait_for,
                      workdir, write_config)

# name -> (the PromQL of each of its queries, series per query): 10 queries of 10 series, so that
# 20,000 events of small ticks measure above Redis' noise; one query of 1,000 series.
SIZES = {"small": ([f'bench_usage{{shard="{k}"}}' for k in range(10)], 10), "large": (["bench_usage"], 1000)}


def queries(name: str) -> list[tuple[str, str]]:
    return [(f"{name}{k}", promql) for k, promql in enumerate(SIZES[name][0])]
HORIZON = 32 * 86400
REFERENCE = "meterworker:bench-reference"  # another collector's name: the workers never see these keys


def used_memory(r: redis.Redis) -> int:
    """used_memory less the buffers of the connected clients (which come and go with the workers' pools)."""
    info = r.info("memory")
    return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))


def marks_bytes(r: redis.Redis) -> int:
    return sum(r.memory_usage(k, samples=0) or 0 for k in r.scan_iter("meterworker:*:marks:*"))


def every_second(cfg) -> None:
    """A schedule of one tick a second, so that 200 ticks fit in Prometheus' lookback of the one sample."""
    doc = yaml.safe_load(cfg.read_text())
    doc["input"]["prometheus"]["schedule"] = "@every 1s"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))


def ticks(n: int, first: int = 0) -> list[int]:
    return [dataset.TICK - 29 + first + k for k in range(n)]


def dispatch(mw: Meterworker, name: str, at: list[int]) -> None:
    from meterworker.keys import QUERY_QUEUE, QUERY_TASK

    for tick in at:
        for query, _ in queries(name):
            mw.app.send_task(QUERY_TASK, args=[query, tick], queue=QUERY_QUEUE)


def settle(r: redis.Redis, drain: bool = True) -> int:
    """used_memory once Celery's queues are drained and its messages acknowledged (a send task asked for
    a batch that another one took finds nothing, but its message takes room until then); with the sink
    down (`drain` False) send tasks keep coming, and their messages are counted with the pending events."""
    if drain:
        wait_for(lambda: not any(r.llen(q) for q in (b"query", b"send")) and not r.hlen(b"unacked"), 60,
                 "Celery's queues to drain", interval=0.1)
    time.sleep(1.0)
    return used_memory(r)


def delivered_run(mw: Meterworker, sink: Sink, r: redis.Redis, name: str, n_ticks: int) -> dict:
    """Delivers n_ticks ticks in two halves: the growth over the second half is what each more event costs
    (the first half also pays for what Redis grows once: hash tables of Celery's and the keyspace's)."""
    per_tick = SIZES[name][1] * len(SIZES[name][0])  # events of one tick, all queries
    mw.flush_redis()
    sink.reset()
    before, before_marks = settle(r), marks_bytes(r)
    started = time.monotonic()
    half = n_ticks // 2
    at = ticks(n_ticks)
    dispatch(mw, name, at[:half])
    sink.wait_for_events(per_tick * half, 600, alive=mw.alive)
    wait_for(lambda: mw.rt.outbox.counts()["pending"] == 0, 120, "the outbox to empty")
    middle = settle(r)
    dispatch(mw, name, at[half:])
    sink.wait_for_events(per_tick * n_ticks, 600, alive=mw.alive)
    wait_for(lambda: mw.rt.outbox.counts()["pending"] == 0, 120, "the outbox to empty")
    seconds = time.monotonic() - started
    after, after_marks = settle(r), marks_bytes(r)
    stats = sink.stats()
    events = per_tick * n_ticks
    second = per_tick * (n_ticks - half)
    return {"query": name, "series": SIZES[name][1], "queries": len(SIZES[name][0]), "ticks": n_ticks,
            "events": events, "seconds": seconds,
            "sink_events": stats["events"], "sink_unique": stats["unique"],
            "used_memory_growth": after - before, "per_event_all": (after - before) / events,
            "per_event": (after - middle) / second,
            "marks_bytes": after_marks - before_marks, "marks_per_event": (after_marks - before_marks) / events}


def legacy_reference(r: redis.Redis, events: int) -> dict:
    """The layout of the release before: one key per delivered id, written by hand."""
    before = settle(r)
    pipe = r.pipeline(transaction=False)
    for i in range(events):
        pipe.set(f"{REFERENCE}:delivered:prometheus:{i:08x}-5b0c-5e53-9a55-6a8e8f0a6d21", "1", ex=HORIZON)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    after = settle(r)
    keys = list(r.scan_iter(f"{REFERENCE}:*", count=10000))
    for i in range(0, len(keys), 10000):
        r.unlink(*keys[i:i + 10000])
    return {"events": events, "used_memory_growth": after - before, "per_event": (after - before) / events}


def outage_run(mw: Meterworker, sink: Sink, r: redis.Redis, n_ticks: int) -> dict:
    mw.flush_redis()
    sink.stop()
    per_tick = SIZES["large"][1]
    before = settle(r)
    dispatch(mw, "large", ticks(n_ticks, first=50))  # large0
    events = per_tick * n_ticks
    wait_for(lambda: mw.rt.outbox.counts()["pending"] >= events, 300, "every event to be pending")
    after = settle(r, drain=False)
    counts = mw.rt.outbox.counts()
    return {"ticks": n_ticks, "events": events, "pending": counts["pending"], "batches": counts["batches"],
            "used_memory_growth": after - before, "per_event": (after - before) / events}


def measure(n_ticks: int, outage_ticks: int, concurrency: int, *, keep: bool = False, pool: str = "prefork") -> dict:
    rss = RssPoller().start()
    results: dict = {"ticks": n_ticks, "concurrency": concurrency, "pool": pool, "runs": []}
    with workdir(keep) as wd, redis_server(wd) as (redis_url, redis_proc), \
            prometheus_on_blocks(wd, 1000) as (prom_url, prom_proc):
        r = redis.Redis.from_url(redis_url)
        # The slow log keeps the arguments of up to 128 slow commands (scripts with their payloads, on a
        # loaded machine): bounded, but it would show up as growth here.
        r.config_set("slowlog-max-len", 0)
        r.slowlog_reset()
        sink = Sink(wd)
        cfg = write_config(wd / "collector.yaml", prom_url, sink.url, redis_url,
                           [{"name": q, "promql": promql} for name in SIZES for q, promql in queries(name)])
        every_second(cfg)
        mw = Meterworker(wd, cfg, redis_url, rss, concurrency=concurrency, pool=pool)
        try:
            mw.start()
            for name in SIZES:
                run = delivered_run(mw, sink, r, name, n_ticks)
                log(f"{name}: {run['events']:,} events delivered in {run['seconds']:.1f}s, "
                    f"{run['per_event']:.1f} B/event used_memory, marks {run['marks_per_event']:.1f} B/event")
                results["runs"].append(run)
            mw.flush_redis()
            results["legacy"] = legacy_reference(r, n_ticks * SIZES["large"][1])
            log(f"reference (one key per id): {results['legacy']['per_event']:.1f} B/event")
            results["outage"] = outage_run(mw, sink, r, outage_ticks)
            log(f"outage: {results['outage']['per_event']:.1f} B per pending event")
        finally:
            mw.stop()
            sink.stop()
            rss.stop()
    return results


def print_report(r: dict, goal: float = 16.0) -> None:
    print(f"\n## memory: Redis per event, {r['ticks']} ticks per size, {harness.pool_text(r)}")
    print(f"machine: {machine()}\n")
    print("| ticks of | queries | events | delivered at the sink (unique) | used_memory growth per more event (B) "
          "| per event, whole run (B) | marks per event (B) | goal <= 16 B |")  # used_memory less client buffers
    print("|---|---|---|---|---|---|---|---|")
    for x in r["runs"]:
        print(f"| {x['series']:,} series | {x['queries']} | {x['events']:,} | {x['sink_events']:,} ({x['sink_unique']:,}) "
              f"| {x['per_event']:.1f} | {x['per_event_all']:.1f} | {x['marks_per_event']:.1f} | {'met' if x['per_event'] <= goal else 'NOT met'} |")
    ref = r["legacy"]
    print("\n(used_memory less client buffers; per more event: the growth over the second half of the ticks; "
          "whole run: over all of them, with what Redis grows once)")
    print(f"reference, one `delivered:{{source}}:{{id}}` key per event (the release before), same Redis: "
          f"{ref['per_event']:.1f} B/event ({ref['events']:,} keys)")
    o = r["outage"]
    print(f"sink down: {o['events']:,} events of {o['ticks']} ticks x 1,000 series pending "
          f"({o['batches']} batches): {o['per_event']:.0f} B per pending event")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench memory", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ticks", type=int, default=200)
    p.add_argument("--outage-ticks", type=int, default=20)
    harness.worker_options(p, profile=False)
    args = p.parse_args(argv)
    r = measure(args.ticks, args.outage_ticks, args.concurrency, keep=args.keep, pool=args.pool)
    print_report(r)
    harness.write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
