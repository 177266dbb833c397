"""Which ticks are due: pure arithmetic over a schedule, a cursor and the clock."""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from meterworker.schedule.cron import Schedule


@dataclass
class Due:
    ticks: list[datetime]
    skipped: int = 0          # ticks older than the catch-up horizon, not dispatched
    oldest_skipped: datetime | None = None


def to_epoch(t: datetime) -> int:
    return int(t.timestamp())


def from_epoch(s: int | float) -> datetime:
    return datetime.fromtimestamp(s, tz=timezone.utc)


def due_ticks(schedule: Schedule, cursor: datetime | None, now: datetime, horizon: float, limit: int = 10_000) -> Due:
    """Ticks in (cursor, now], oldest first, none older than now - horizon.

    With no cursor (a query seen for the first time) only the latest tick at or before now is due.
    """
    if cursor is None:
        return Due([schedule.latest_at_or_before(now)])
    floor = now - timedelta(seconds=horizon)
    skipped, oldest = 0, None
    start = cursor
    if cursor < floor:
        first_kept = schedule.latest_at_or_before(floor)
        for t in schedule.ticks_between(cursor, first_kept):
            oldest = oldest or t
            skipped += 1
        start = first_kept
    ticks = []
    for t in schedule.ticks_between(start, now):
        ticks.append(t)
        if len(ticks) >= limit:
            break
    return Due(ticks, skipped, oldest)
