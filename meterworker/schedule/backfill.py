"""Past ticks of a range: which ticks, and dispatching them to the query workers."""

from datetime import datetime, timedelta

from meterworker.keys import Keys
from meterworker.schedule.due import to_epoch


def ticks_in_range(schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every tick t with start <= t <= end."""
    return list(schedule.ticks_between(start - timedelta(microseconds=1), end))


def plan(rt, queries, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """(query, tick) pairs oldest first, interleaving queries as live dispatch does."""
    pairs = [(to_epoch(t), q.name) for q in queries for t in ticks_in_range(rt.schedule_for(q), start, end)]
    return [(name, tick) for tick, name in sorted(pairs)]


def report_key(rt, run_id: str) -> str:
    return Keys(rt.collector).backfill_report(run_id)
