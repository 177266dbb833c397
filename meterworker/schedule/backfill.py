"""Past ticks of a range: which ticks, how long one may take, and the report the query tasks of a backfill write."""

import heapq
import json
from collections.abc import Iterator
from datetime import datetime, timedelta

from meterworker.keys import Keys
from meterworker.schedule.due import to_epoch

REPORT_TTL = 7 * 86400


# Above this many ticks a backfill asks before it starts (or needs --yes): a typo in --from costs no flood.
GUARD_TICKS = 10_000


def ticks_in_range(schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every tick t with start <= t <= end (for short ranges; a backfill's Plan stores none)."""
    return list(schedule.ticks_between(start - timedelta(microseconds=1), end))


class Plan:
    """The (query, tick) pairs of a backfill, oldest first, interleaving queries as live dispatch does
    (ties in query name order). Built as it is iterated, and iterable again: nothing is stored."""

    def __init__(self, schedules: list[tuple[str, object]], start: datetime, end: datetime):
        self.schedules, self.start, self.end = schedules, start, end

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for tick, name in heapq.merge(*(self._stream(name, s) for name, s in self.schedules)):
            yield name, tick

    def _stream(self, name, schedule) -> Iterator[tuple[int, str]]:
        for t in schedule.ticks_between(self.start - timedelta(microseconds=1), self.end):
            yield to_epoch(t), name

    def by_query(self) -> Iterator[tuple[str, object, Iterator[int]]]:
        """(query, schedule, its ticks ascending) for each query, one query after the other."""
        for name, s in self.schedules:
            yield name, s, (tick for tick, _ in self._stream(name, s))

    @property
    def counted_exactly(self) -> bool:
        return all(s.counted_exactly for _, s in self.schedules)

    def count(self, cap: int | None = None) -> int:
        """How many pairs; with `cap`, a number above it may be a lower bound (an @every schedule is counted
        exactly by arithmetic, a cron tick by tick up to the cap)."""
        after = self.start - timedelta(microseconds=1)
        return sum(s.count_between(after, self.end, None if cap is None else max(0, cap)) for _, s in self.schedules)


def window_lengths(schedule, ticks: Iterator[int]) -> Iterator[tuple[int, int]]:
    """(tick, its window's length in seconds) for ticks of `schedule` (Unix seconds, ascending); the query
    offset shifts both ends of a window alike, so the length is the time since the tick before."""
    from meterworker.schedule.due import from_epoch

    for t in ticks:
        yield t, round(t - schedule.prev_before(from_epoch(t)).timestamp())


def plan(rt, queries, start: datetime, end: datetime) -> Plan:
    return Plan([(q.name, rt.schedule_for(q)) for q in queries], start, end)


def longest_tick(attempts: int, retry_period: float, max_backoff: float, prometheus_timeout: float) -> float:
    """The longest one tick takes through `attempts` attempts: each up to the Prometheus timeout, with the
    full (unjittered) retry delay between them."""
    delays = sum(min(max_backoff, retry_period * 2 ** (i - 1)) for i in range(1, attempts))
    return attempts * prometheus_timeout + delays


def report_key(rt, run_id: str) -> str:
    return Keys(rt.collector).backfill_report(run_id)


def sent_counts(redis, collector: str, queries: list[str]) -> int:
    """Events of `queries` delivered so far, as send workers count them."""
    got = redis.hmget(Keys(collector).sent, queries) if queries else []
    return sum(int(v) for v in got if v is not None)


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


def run_name(queries: list[str], start: datetime, end: datetime) -> str:
    """The name of a backfill's report: the same for the same queries and range, so that the same command,
    run again after an interruption, finds the ticks done already."""
    import hashlib

    text = "\0".join([*sorted(queries), f"{start.timestamp():.6f}", f"{end.timestamp():.6f}"])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def stop(redis, report: str, token: str) -> None:
    """Tasks of the backfill invocation `token` not done yet do nothing (see stopped)."""
    redis.set(Keys.backfill_stop(report), token, ex=REPORT_TTL)


def stopped(redis, report: str | None, token: str | None) -> bool:
    if not report or not token:
        return False
    got = redis.get(Keys.backfill_stop(report))
    return got is not None and (got.decode() if isinstance(got, bytes) else got) == token


def drop_pending(state, query: str, ticks: list[int]) -> None:
    """Ticks of a stopped backfill leave the pending set (beat would run them again after stall_timeout),
    except those beat dispatched as well: a live tick stays pending until it completes."""
    pipe = state.r.pipeline(transaction=False)
    for t in ticks:
        pipe.exists(state.keys.claim(query, t))
    claimed = pipe.execute()
    mine = [str(t) for t, c in zip(ticks, claimed) if not c]
    if mine:
        state.r.zrem(state.keys.pending(query), *mine)
