"""Health checks a probe can run: Redis answers, some beat holds the lock, ticks keep completing."""

from dataclasses import dataclass
from datetime import datetime

import redis

from meterworker.schedule.due import from_epoch
from meterworker.durations import format_go_duration
from meterworker.keys import Keys
from meterworker.schedule import beat_lock
from meterworker.schedule.windows import window_for

CHECKS = ("redis", "beat", "ticks")
GRACE = 60.0


@dataclass
class Result:
    name: str
    ok: bool
    detail: str


def redis_answers(r: redis.Redis, where: str, scrub) -> Result:
    try:
        r.ping()
    except redis.RedisError as e:
        return Result("redis", False, f"Redis at {where} does not answer: {scrub(str(e))}")
    return Result("redis", True, f"Redis at {where} answers")


def beat_holds_lock(r: redis.Redis, collector: str) -> Result:
    holder = beat_lock.holder(r, collector)
    if holder is None:
        return Result("beat", False, f"no beat holds the lock ({Keys(collector).beat_lock}): nothing dispatches ticks")
    return Result("beat", True, f"beat {holder} holds the lock")


def default_max_tick_age(rt, now: datetime) -> float:
    """Two windows of the most frequent query, and a minute for the work: a newest completed tick older
    than that means ticks have stopped completing."""
    offset = rt.config.input.prometheus.query_offset
    shortest = min(
        window_for(s, s.latest_at_or_before(now), offset).seconds
        for s in (rt.schedule_for(q) for q in rt.config.queries)
    )
    return 2 * shortest + GRACE


def newest_tick_is_recent(state, queries: list[str], now: datetime, max_age: float) -> Result:
    completed = {q: state.query_status(q)["last_completed"] for q in queries}
    done = {q: t for q, t in completed.items() if t is not None}
    if not done:
        return Result("ticks", False, "no tick has completed yet")
    query, tick = max(done.items(), key=lambda kv: kv[1])
    age = (now - from_epoch(tick)).total_seconds()
    what = (f"newest completed tick is {from_epoch(tick).isoformat()} (query {query}), "
            f"{format_go_duration(max(0, round(age)))} old")
    if age > max_age:
        return Result("ticks", False, f"{what}, over the threshold of {format_go_duration(max_age)}")
    return Result("ticks", True, f"{what}, within {format_go_duration(max_age)}")
