"""Schedules: when a query is due.

A schedule is one of
- a cron expression with 6 fields, seconds first (as in Redpanda Connect), or 5 fields;
- a keyword: @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly;
- ``@every <Go duration>``, ticking whenever the Unix time is a multiple of the period.

Cron expressions and keywords mean exactly what they mean to robfig/cron v3, the
parser Redpanda Connect uses (meterworker.schedule.robfig), daylight-saving changes
included. ``@every`` deliberately differs: robfig counts the period from when the
process started (and rounds a period under 1s up to 1s, a fractional one down);
meterworker aligns it to the Unix epoch and refuses periods that are not a whole
number of seconds >= 1s, so that every worker agrees on the ticks.

Ticks are whole seconds, aligned to the wall clock (never to process start), and
returned as UTC datetimes. Cron forms are read in the schedule's time zone;
``@every`` ignores it. windows.py turns consecutive ticks into windows.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from meterworker.durations import parse_duration
from meterworker.schedule import robfig
from meterworker.schedule.robfig import RobfigCron

__all__ = ["Schedule", "parse_schedule"]

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)


def utc(t: datetime) -> datetime:
    if not isinstance(t, datetime):
        raise TypeError(f"expected a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: give it a time zone (e.g. UTC)")
    return t.astimezone(UTC)


class Schedule(ABC):
    """The ticks of one schedule; subclasses supply next_after and prev_before."""

    expr: str
    tz: str
    counted_exactly = False  # whether count_between is exact whatever its cap

    @abstractmethod
    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after t."""

    @abstractmethod
    def prev_before(self, t: datetime) -> datetime:
        """The last tick strictly before t."""

    def is_tick(self, t: datetime) -> bool:
        t = utc(t)
        return t.microsecond == 0 and self.next_after(t - ONE_SECOND) == t

    def latest_at_or_before(self, t: datetime) -> datetime:
        t = utc(t)
        return t if self.is_tick(t) else self.prev_before(t)

    def ticks_between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """The ticks in (after, until], ascending, computed as they are consumed."""
        return self._ticks(utc(after), utc(until))

    def _ticks(self, after: datetime, until: datetime) -> Iterator[datetime]:
        t = self.next_after(after)
        while t <= until:
            yield t
            t = self.next_after(t)

    def count_between(self, after: datetime, until: datetime, cap: int | None = None) -> int:
        """How many ticks are in (after, until]; with `cap`, counting may stop at cap + 1 ("more than cap")."""
        n = 0
        for _ in self.ticks_between(after, until):
            n += 1
            if cap is not None and n > cap:
                break
        return n

    def __repr__(self) -> str:
        return f"parse_schedule({self.expr!r}, tz={self.tz!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.expr, other.tz) == (self.expr, self.tz)

    def __hash__(self) -> int:
        return hash((self.expr, self.tz))


class EverySchedule(Schedule):
    """``@every <period>``: the instants whose Unix time is a multiple of the period."""

    counted_exactly = True

    def __init__(self, expr: str, period_seconds: int, tz: str = "UTC"):
        self.expr = expr
        self.tz = tz
        self.period = timedelta(seconds=period_seconds)

    def _index(self, t: datetime) -> tuple[int, int]:
        """(k, r) with t = EPOCH + k * period + r, 0 <= r < period, in microseconds."""
        return divmod((utc(t) - EPOCH) // MICROSECOND, self.period // MICROSECOND)

    def next_after(self, t: datetime) -> datetime:
        k, _ = self._index(t)
        return EPOCH + (k + 1) * self.period

    def prev_before(self, t: datetime) -> datetime:
        k, r = self._index(t)
        return EPOCH + (k - 1 if r == 0 else k) * self.period

    def is_tick(self, t: datetime) -> bool:
        return self._index(t)[1] == 0

    def _ticks(self, after: datetime, until: datetime) -> Iterator[datetime]:
        t = self.next_after(after)
        while t <= until:
            yield t
            t += self.period

    def count_between(self, after: datetime, until: datetime, cap: int | None = None) -> int:
        first, _ = self._index(after)
        last, _ = self._index(until)
        return max(0, last - first)  # exact whatever the cap: arithmetic


class CronSchedule(Schedule):
    """A cron expression or @keyword, read and stepped as robfig/cron v3 does (the
    parser of Redpanda Connect, the seed), in a time zone; see robfig.

    The ticks are the instants robfig's Next returns, stepping the zone's wall clock as
    Go does: a matching wall time that clocks skip when they go forward gives no tick
    that day; one they repeat when they go back ticks in both passes.
    """

    def __init__(self, expr: str, cron: RobfigCron, tz: str = "UTC"):
        self.expr = expr
        self.tz = tz
        self.cron = cron

    def next_after(self, t: datetime) -> datetime:
        t = utc(t)
        return self._found(self.cron.next_after(t), "within five years after", t)

    def prev_before(self, t: datetime) -> datetime:
        t = utc(t)
        return self._found(self.cron.prev_before(t), "before", t)

    def latest_at_or_before(self, t: datetime) -> datetime:
        t = utc(t)
        return self._found(self.cron.latest_at_or_before(t), "at or before", t)

    def is_tick(self, t: datetime) -> bool:
        t = utc(t)
        return t.microsecond == 0 and self.cron.next_after(t - ONE_SECOND) == t

    def _found(self, tick: datetime | None, where: str, t: datetime) -> datetime:
        if tick is None:
            raise ValueError(f"{self.expr!r} matches no time {where} {t:%Y-%m-%d %H:%M:%S} UTC")
        return tick


def parse_schedule(expr: str, tz: str = "UTC") -> Schedule:
    """A Schedule from a cron expression, a @keyword or ``@every <duration>``."""
    if not isinstance(expr, str):
        raise ValueError(f"a schedule must be a string, got {type(expr).__name__}")
    text = expr.strip()
    if not text:
        raise ValueError("empty schedule; expected e.g. '0 * * * * *', '@hourly' or '@every 1m'")
    _check_zone(tz)
    if text.split()[0] == "@every":
        return EverySchedule(text, _every_period(text), tz)
    if text.startswith("@") and text not in robfig.DESCRIPTORS:
        known = ", ".join(robfig.DESCRIPTORS) + ", @every <duration>"
        raise ValueError(f"unknown schedule {text!r}; expected one of {known}")
    return CronSchedule(text, _parse_cron(text, tz), tz)


def _check_zone(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {tz!r}; expected an IANA name such as 'Europe/Berlin'") from None


MAX_EVERY = 100 * 365 * 86400  # seconds; a longer period is a typo (Go's own durations end at 292 years)


def _every_period(text: str) -> int:
    parts = text.split(None, 1)
    if len(parts) == 1:
        raise ValueError(f"{text!r}: missing period; expected e.g. '@every 1m' or '@every 1m30s'")
    try:
        seconds = parse_duration(parts[1].strip())
    except ValueError as e:
        raise ValueError(f"{text!r}: {e}") from None
    if "d" in parts[1]:
        # Go's time.ParseDuration, which robfig/cron uses here, stops at hours.
        raise ValueError(f"{text!r}: unknown unit 'd' in a Go duration; write e.g. '24h'")
    if seconds > MAX_EVERY:
        raise ValueError(f"{text!r}: the period must be at most 876000h (100 years)")
    whole = round(seconds)
    if whole < 1:
        raise ValueError(f"{text!r}: the period must be at least 1s")
    if not math.isclose(seconds, whole, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"{text!r}: the period must be a whole number of seconds")
    return whole


def _parse_cron(text: str, tz: str) -> RobfigCron:
    """The expression parsed as robfig/cron parses it, refusing one that never ticks."""
    try:
        cron = robfig.parse(text, tz)
    except ValueError as e:
        raise ValueError(f"invalid cron expression {text!r}: {e}") from None
    if cron.next_after(EPOCH) is None:
        raise ValueError(f"invalid cron expression {text!r}: it matches no date")
    return cron


