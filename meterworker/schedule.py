"""Schedules: when a query is due, and which slice of time each tick covers.

A schedule is one of
- a cron expression with 6 fields, seconds first (as in Redpanda Connect), or 5 fields;
- a keyword: @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly;
- ``@every <Go duration>``, ticking whenever the Unix time is a multiple of the period.

Cron expressions and keywords mean exactly what they mean to robfig/cron v3, the
parser Redpanda Connect uses (meterworker.robfig_cron), daylight-saving changes
included. ``@every`` deliberately differs: robfig counts the period from when the
process started (and rounds a period under 1s up to 1s, a fractional one down);
meterworker aligns it to the Unix epoch and refuses periods that are not a whole
number of seconds >= 1s, so that every worker agrees on the ticks.

Ticks are whole seconds, aligned to the wall clock (never to process start), and
returned as UTC datetimes. Cron forms are read in the schedule's time zone;
``@every`` ignores it. The window of tick t_k is (t_{k-1}, t_k] shifted back by the
query offset, so the windows of consecutive ticks tile the time line.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import robfig_cron
from .durations import format_prom_duration, parse_duration
from .robfig_cron import RobfigCron

__all__ = [
    "Schedule",
    "Window",
    "evaluation_time",
    "expand_interval",
    "parse_schedule",
    "range_selectors",
    "window_for",
]

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)


def _utc(t: datetime) -> datetime:
    if not isinstance(t, datetime):
        raise TypeError(f"expected a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: give it a time zone (e.g. UTC)")
    return t.astimezone(UTC)


class Schedule(ABC):
    """The ticks of one schedule; subclasses supply next_after and prev_before."""

    expr: str
    tz: str

    @abstractmethod
    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after t."""

    @abstractmethod
    def prev_before(self, t: datetime) -> datetime:
        """The last tick strictly before t."""

    def is_tick(self, t: datetime) -> bool:
        t = _utc(t)
        return t.microsecond == 0 and self.next_after(t - ONE_SECOND) == t

    def latest_at_or_before(self, t: datetime) -> datetime:
        t = _utc(t)
        return t if self.is_tick(t) else self.prev_before(t)

    def ticks_between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """The ticks in (after, until], ascending, computed as they are consumed."""
        return self._ticks(_utc(after), _utc(until))

    def _ticks(self, after: datetime, until: datetime) -> Iterator[datetime]:
        t = self.next_after(after)
        while t <= until:
            yield t
            t = self.next_after(t)

    def __repr__(self) -> str:
        return f"parse_schedule({self.expr!r}, tz={self.tz!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.expr, other.tz) == (self.expr, self.tz)

    def __hash__(self) -> int:
        return hash((self.expr, self.tz))


class EverySchedule(Schedule):
    """``@every <period>``: the instants whose Unix time is a multiple of the period."""

    def __init__(self, expr: str, period_seconds: int, tz: str = "UTC"):
        self.expr = expr
        self.tz = tz
        self.period = timedelta(seconds=period_seconds)

    def _index(self, t: datetime) -> tuple[int, int]:
        """(k, r) with t = EPOCH + k * period + r, 0 <= r < period, in microseconds."""
        return divmod((_utc(t) - EPOCH) // MICROSECOND, self.period // MICROSECOND)

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


class CronSchedule(Schedule):
    """A cron expression or @keyword, read and stepped as robfig/cron v3 does (the
    parser of Redpanda Connect, the seed), in a time zone; see robfig_cron.

    The ticks are the instants robfig's Next returns, stepping the zone's wall clock as
    Go does: a matching wall time that clocks skip when they go forward gives no tick
    that day; one they repeat when they go back ticks in both passes.
    """

    def __init__(self, expr: str, cron: RobfigCron, tz: str = "UTC"):
        self.expr = expr
        self.tz = tz
        self.cron = cron

    def next_after(self, t: datetime) -> datetime:
        t = _utc(t)
        return self._found(self.cron.next_after(t), "within five years after", t)

    def prev_before(self, t: datetime) -> datetime:
        t = _utc(t)
        return self._found(self.cron.prev_before(t), "before", t)

    def latest_at_or_before(self, t: datetime) -> datetime:
        t = _utc(t)
        return self._found(self.cron.latest_at_or_before(t), "at or before", t)

    def is_tick(self, t: datetime) -> bool:
        t = _utc(t)
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
    if text.startswith("@") and text not in robfig_cron.DESCRIPTORS:
        known = ", ".join(robfig_cron.DESCRIPTORS) + ", @every <duration>"
        raise ValueError(f"unknown schedule {text!r}; expected one of {known}")
    return CronSchedule(text, _parse_cron(text, tz), tz)


def _check_zone(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {tz!r}; expected an IANA name such as 'Europe/Berlin'") from None


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
    whole = round(seconds)
    if whole < 1:
        raise ValueError(f"{text!r}: the period must be at least 1s")
    if not math.isclose(seconds, whole, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"{text!r}: the period must be a whole number of seconds")
    return whole


def _parse_cron(text: str, tz: str) -> RobfigCron:
    """The expression parsed as robfig/cron parses it, refusing one that never ticks."""
    try:
        cron = robfig_cron.parse(text, tz)
    except ValueError as e:
        raise ValueError(f"invalid cron expression {text!r}: {e}") from None
    if cron.next_after(EPOCH) is None:
        raise ValueError(f"invalid cron expression {text!r}: it matches no date")
    return cron


@dataclass(frozen=True)
class Window:
    """The half-open interval (start, end] of data one tick accounts for."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _utc(self.start)
        _utc(self.end)
        if not self.start < self.end:
            raise ValueError(f"empty window: start {self.start.isoformat()} is not before end {self.end.isoformat()}")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _offset(offset_seconds: float) -> timedelta:
    if not math.isfinite(offset_seconds) or offset_seconds < 0:
        raise ValueError(f"the query offset must be a finite number of seconds >= 0, got {offset_seconds}")
    return timedelta(seconds=offset_seconds)


def evaluation_time(tick: datetime, offset_seconds: float) -> datetime:
    """The instant the query of this tick is evaluated at, however late it runs."""
    return _utc(tick) - _offset(offset_seconds)


def window_for(schedule: Schedule, tick: datetime, offset_seconds: float) -> Window:
    """(previous tick, tick] shifted back by the offset; tick must be a tick of schedule."""
    tick = _utc(tick)
    if not schedule.is_tick(tick):
        raise ValueError(f"{tick.isoformat()} is not a tick of {schedule.expr!r}")
    shift = _offset(offset_seconds)
    return Window(schedule.prev_before(tick) - shift, tick - shift)


_INTERVAL = re.compile(r"\$\{__interval\}|\$__interval\b")


def expand_interval(promql: str, window: Window) -> str:
    """Replace `$__interval` and `${__interval}` with the window's length, e.g. '60s'."""
    duration = format_prom_duration(window.seconds)
    return _INTERVAL.sub(lambda _: duration, promql)


_DURATION_LITERAL = re.compile(r"(?:\d+(?:ms|[smhdwy]))+|\d+(?:\.\d+)?")


def range_selectors(promql: str) -> list[str]:
    """The literal durations of range selectors and subqueries, e.g. ['1m', '5m'].

    In `x[5m:1m]` only the range (5m) counts; `[$__interval]` is skipped since it
    always equals the window. Brackets inside strings and comments are ignored.
    """
    found = []
    for inside in _bracket_contents(promql):
        duration = inside.split(":", 1)[0].strip()
        if _DURATION_LITERAL.fullmatch(duration):
            found.append(duration)
    return found


def _bracket_contents(promql: str) -> Iterator[str]:
    i, n = 0, len(promql)
    while i < n:
        c = promql[i]
        if c in "\"'`":
            i = _end_of_string(promql, i)
        elif c == "#":
            newline = promql.find("\n", i)
            i = n if newline < 0 else newline
        elif c == "[":
            close = promql.find("]", i)
            if close < 0:
                return
            yield promql[i + 1 : close]
            i = close
        i += 1


def _end_of_string(promql: str, start: int) -> int:
    """Index of the quote closing the string literal opened at start."""
    quote, i = promql[start], start + 1
    while i < len(promql) and promql[i] != quote:
        i += 2 if promql[i] == "\\" and quote != "`" else 1
    return i
