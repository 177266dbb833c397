"""Past ticks of a range: which ticks, how long one may take, and the report the query tasks of a backfill write."""

import json
from datetime import datetime, timedelta

from meterworker.keys import Keys
from meterworker.schedule.due import to_epoch

REPORT_TTL = 7 * 86400


def ticks_in_range(schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every tick t with start <= t <= end."""
    return list(schedule.ticks_between(start - timedelta(microseconds=1), end))


def plan(rt, queries, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """(query, tick) pairs oldest first, interleaving queries as live dispatch does."""
    pairs = [(to_epoch(t), q.name) for q in queries for t in ticks_in_range(rt.schedule_for(q), start, end)]
    return [(name, tick) for tick, name in sorted(pairs)]


def longest_tick(attempts: int, retry_period: float, max_backoff: float, prometheus_timeout: float) -> float:
    """The longest one tick takes through `attempts` attempts: each up to the Prometheus timeout, with the
    full (unjittered) retry delay between them."""
    delays = sum(min(max_backoff, retry_period * 2 ** (i - 1)) for i in range(1, attempts))
    return attempts * prometheus_timeout + delays


def report_key(rt, run_id: str) -> str:
    return Keys(rt.collector).backfill_report(run_id)


def report_tick(pipe, key: str, query: str, tick: int, error: str | None = None, attempts: int = 0) -> None:
    """Adds to `pipe` (a Redis pipeline) the word of the query task on one tick of a backfill: done, or given up."""
    value = "" if error is None else json.dumps({"error": error, "attempts": attempts})
    pipe.hset(key, f"{query}:{tick}", value).expire(key, REPORT_TTL)


def read_report(redis, key: str) -> dict[tuple[str, int], dict | None]:
    """(query, tick) -> None for each tick done, {"error", "attempts"} for each tick given up."""
    out = {}
    for field, value in redis.hgetall(key).items():
        query, _, tick = (field.decode() if isinstance(field, bytes) else field).rpartition(":")
        out[(query, int(tick))] = json.loads(value) if value else None
    return out
