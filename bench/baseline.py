"""The raw limit: one process that runs the same queries, maps them to the same CloudEvents and POSTs
the same batches (100 events a request, 64 in flight) to the same sink, with nothing in between:
no Redis, no Celery, no dedup, no retries. What meterworker costs is measured against this.

It reads each Prometheus response whole and parses it with orjson (the fastest parser at hand, at
the price of holding the whole result), maps with meterworker.query.mapping (the mapping meterworker
uses), encodes each batch with orjson (as meterworker does) and posts over 64 keep-alive
connections with a minimal HTTP/1.1 client on asyncio. Queries run `--query-concurrency` at a time (as many as meterworker's worker processes).

    python -m bench.baseline --prometheus URL --sink URL --at TICK --promql Q [--promql Q ...] --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Iterator
from urllib.parse import urlsplit

import httpx
import orjson

from meterworker.query.mapping import Skipped, check_result_type, map_series

WINDOW = 60  # the benchmarks' schedule is @every 1m


def series_of(data: dict) -> Iterator[tuple[dict[str, str], str]]:
    """(labels, value text) of each series of an already parsed `data`."""
    check_result_type(data.get("resultType"))
    if data["resultType"] == "scalar":
        yield {}, data["result"][1]
        return
    for s in data.get("result") or []:
        yield s.get("metric") or {}, s["value"][1]


class RawPoster:
    """`in_flight` keep-alive HTTP/1.1 connections to one host; POST a body, read the status."""

    def __init__(self, url: str, in_flight: int):
        u = urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.in_flight = in_flight
        self.pool: asyncio.Queue = asyncio.Queue()
        self.made = 0
        self.requests = 0

    async def _conn(self):
        if self.pool.empty() and self.made < self.in_flight:
            self.made += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self.pool.get()

    async def post(self, body: bytes) -> int:
        reader, writer = await self._conn()
        writer.write(f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     f"Content-Type: application/cloudevents-batch+json\r\nContent-Length: {len(body)}\r\n\r\n"
                     .encode() + body)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await reader.readexactly(length)
        self.pool.put_nowait((reader, writer))
        self.requests += 1
        if status >= 300:
            raise RuntimeError(f"sink answered {status}")
        return status


async def run(args) -> dict:
    mapping = SimpleNamespace(type=None, source="prometheus", subject_label="instance", labels=None,
                              event_time="start")
    end = datetime.fromtimestamp(args.at, tz=timezone.utc)
    start = datetime.fromtimestamp(args.at - WINDOW, tz=timezone.utc)
    poster = RawPoster(f"{args.sink}/api/v1/events", args.in_flight)
    slots = asyncio.Semaphore(args.in_flight)
    posts: set[asyncio.Task] = set()
    pending: list[dict] = []
    counts = {"events": 0, "series": 0}

    async def post(batch: list[dict]):
        try:
            await poster.post(orjson.dumps(batch))
        finally:
            slots.release()

    async def flush(force: bool):
        nonlocal pending
        while len(pending) >= args.count or (force and pending):
            batch, pending = pending[:args.count], pending[args.count:]
            await slots.acquire()
            t = asyncio.create_task(post(batch))
            posts.add(t)
            t.add_done_callback(posts.discard)

    queries = asyncio.Semaphore(args.query_concurrency)
    async with httpx.AsyncClient(timeout=600) as client:
        async def one_query(i: int, promql: str):
            async with queries:
                resp = await client.post(f"{args.prometheus}/api/v1/query",
                                         data={"query": promql, "time": f"{args.at:.3f}"})
                body = await resp.aread()
            data = orjson.loads(body)["data"]
            del body
            skipped = Skipped()
            name = args.names[i] if args.names else f"q{i}"
            for event in map_series(series_of(data), scalar=data["resultType"] == "scalar", collector="bench",
                                    query=name, mapping=mapping, start=start, end=end, skipped=skipped):
                pending.append(event)
                counts["events"] += 1
                if len(pending) >= args.count:
                    await flush(False)
            counts["series"] += len(data["result"])

        t0 = time.time()
        await asyncio.gather(*(one_query(i, q) for i, q in enumerate(args.promql)))
        await flush(True)
        while posts:
            await asyncio.gather(*list(posts))
        t1 = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"start": t0, "end": t1, "seconds": t1 - t0, "events": counts["events"], "requests": poster.requests,
            "cpu": usage.ru_utime + usage.ru_stime}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--prometheus", required=True)
    p.add_argument("--sink", required=True)
    p.add_argument("--at", type=int, required=True)
    p.add_argument("--promql", action="append", default=[])
    p.add_argument("--promql-file", help="one PromQL expression a line")
    p.add_argument("--names", nargs="*", default=None)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--in-flight", type=int, default=64)
    p.add_argument("--query-concurrency", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.promql_file:
        args.promql += [line.strip() for line in open(args.promql_file) if line.strip()]
    result = asyncio.run(run(args))
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
