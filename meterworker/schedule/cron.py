"""Schedules: when a query is due.

A schedule is one of
- a cron expression with 6 fields, seconds first (as in Redpanda Connect), or 5 fields;
- a keyword: @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly;
- ``@every <Go duration>``, ticking whenever the Unix time is a multiple of the period.

Ticks are whole seconds, aligned to the wall clock (never to process start), and
returned as UTC datetimes. Cron forms are read in the schedule's time zone;
``@every`` ignores it. windows.py turns consecutive ticks into windows.
"""

from __future__ import annotations

import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from meterworker.config.durations import parse_duration

__all__ = ["Schedule", "parse_schedule"]

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
# UTC offsets are probed this far apart; since 1970 no zone has kept an offset
# for less than a week, so no change can hide between two probes.
OFFSET_PROBE_STEP = timedelta(days=1)

KEYWORDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS_5 = ("minute", "hour", "day-of-month", "month", "day-of-week")
FIELDS_6 = ("second",) + FIELDS_5


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


class CronSchedule(Schedule):
    """A cron expression (seconds first when it has 6 fields) read in a time zone.

    An instant is a tick when the zone's wall clock then reads a time the cron
    matches. When clocks go back, the repeated times tick in both passes (they are
    different instants); when clocks go forward, the skipped times that match give
    one tick at the instant of the change. croniter only ever sees wall-clock
    times labelled UTC, so its own daylight-saving handling never comes into play.
    """

    def __init__(self, expr: str, cron: str, tz: str = "UTC"):
        self.expr = expr
        self.tz = tz
        self.cron = cron
        self.zone = ZoneInfo(tz)
        # Parsing dominates croniter's cost, so one instance is reused, under a lock.
        self._croniter = croniter(cron, EPOCH, second_at_beginning=True)
        self._croniter_lock = threading.Lock()

    # Both directions walk the runs of constant UTC offset. Within a run the wall
    # clock is the instant plus the offset, so croniter's answer converts directly,
    # unless the run ends first; then the search goes on in the next run.

    def next_after(self, t: datetime) -> datetime:
        start = _floor_second(utc(t)) + ONE_SECOND
        while True:
            if self._is_gap_tick(start):
                return start
            offset = self._offset(start)
            tick = self._wall_next(start + offset - ONE_SECOND) - offset
            change = self._first_offset_change(start, tick, offset)
            if change is None:
                return tick
            start = change

    def prev_before(self, t: datetime) -> datetime:
        last = _ceil_second(utc(t)) - ONE_SECOND
        while True:
            offset = self._offset(last)
            tick = self._wall_prev(last + offset + ONE_SECOND) - offset
            segment_start = self._offset_start(last, tick, offset)
            if segment_start is None:
                return tick
            if self._is_gap_tick(segment_start):
                return segment_start
            last = segment_start - ONE_SECOND

    def _offset(self, instant: datetime) -> timedelta:
        return instant.astimezone(self.zone).utcoffset()

    def _is_gap_tick(self, instant: datetime) -> bool:
        """Whether clocks jump forward at this instant over a time the cron matches."""
        before, after = self._offset(instant - ONE_SECOND), self._offset(instant)
        if after <= before:
            return False
        return self._wall_next(instant + before - ONE_SECOND) < instant + after

    def _first_offset_change(self, start: datetime, end: datetime, offset: timedelta) -> datetime | None:
        """The first instant in (start, end] whose UTC offset is not `offset`."""
        lo = start
        while lo < end:
            hi = min(lo + OFFSET_PROBE_STEP, end)
            if self._offset(hi) != offset:
                return _bisect(lo, hi, lambda x: self._offset(x) != offset)
            lo = hi
        return None

    def _offset_start(self, last: datetime, floor: datetime, offset: timedelta) -> datetime | None:
        """The first instant of the run of `offset` that ends at `last`, if it starts after floor."""
        hi = last
        while hi > floor:
            lo = max(hi - OFFSET_PROBE_STEP, floor)
            if self._offset(lo) != offset:
                return _bisect(lo, hi, lambda x: self._offset(x) == offset)
            hi = lo
        return None

    def _wall_next(self, wall: datetime) -> datetime:
        return self._wall_step(wall, backwards=False)

    def _wall_prev(self, wall: datetime) -> datetime:
        return self._wall_step(wall, backwards=True)

    def _wall_step(self, wall: datetime, backwards: bool) -> datetime:
        try:
            with self._croniter_lock:
                if backwards:
                    return self._croniter.get_prev(datetime, start_time=wall)
                return self._croniter.get_next(datetime, start_time=wall)
        except CroniterBadDateError:
            direction = "before" if backwards else "after"
            raise ValueError(f"{self.expr!r} matches no time {direction} {wall:%Y-%m-%d %H:%M:%S}") from None


def _floor_second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _ceil_second(t: datetime) -> datetime:
    return _floor_second(t) + (ONE_SECOND if t.microsecond else timedelta(0))


def _bisect(lo: datetime, hi: datetime, pred) -> datetime:
    """The first whole second in (lo, hi] where pred holds, given not pred(lo) and pred(hi)."""
    while hi - lo > ONE_SECOND:
        mid = _floor_second(lo + (hi - lo) // 2)
        if pred(mid):
            hi = mid
        else:
            lo = mid
    return hi


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
    if text.startswith("@"):
        return CronSchedule(text, _keyword_cron(text), tz)
    return CronSchedule(text, _cron_for_croniter(text), tz)


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
    whole = round(seconds)
    if whole < 1:
        raise ValueError(f"{text!r}: the period must be at least 1s")
    if not math.isclose(seconds, whole, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"{text!r}: the period must be a whole number of seconds")
    return whole


def _keyword_cron(text: str) -> str:
    try:
        return KEYWORDS[text]
    except KeyError:
        known = ", ".join(KEYWORDS) + ", @every <duration>"
        raise ValueError(f"unknown schedule {text!r}; expected one of {known}") from None


def _cron_for_croniter(text: str) -> str:
    """The expression croniter should run, after rejecting what is wrong with it."""
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"invalid cron expression {text!r}: expected 6 fields (second minute hour "
            f"day-of-month month day-of-week) or 5 (without the second), got {len(fields)}"
        )
    fields = [_single_value_ranges(value) for value in fields]
    names = FIELDS_6 if len(fields) == 6 else FIELDS_5
    for i, name in enumerate(names):
        _check_field(text, fields, i, name)
    cron = " ".join(fields)
    try:
        croniter(cron, EPOCH, second_at_beginning=True).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"invalid cron expression {text!r}: it matches no date") from None
    return cron


_RANGE = re.compile(r"(\w+)-(\w+)(/\d+)?")


def _single_value_ranges(value: str) -> str:
    """Write ranges like `5-5` and `5-5/2` as `5`: croniter reads them as a full wrap-around."""
    items = []
    for item in value.split(","):
        m = _RANGE.fullmatch(item)
        if m and m[1].lower() == m[2].lower():
            item = m[1]
        items.append(item)
    return ",".join(items)


# croniter's messages start by repeating the expression: "[61 * * * * *] is not acceptable, out of range".
_CRONITER_NOISE = re.compile(r"^\[[^\]]*\]\s*(is not acceptable,?\s*)?")


def _check_field(text: str, fields: list[str], i: int, name: str) -> None:
    """Reject one bad field, naming it; croniter's own messages do not say which."""
    value = fields[i]
    if any(item[:1] in ("R", "r", "H", "h") for item in value.split(",")):
        # croniter's random (R) and hashed (H) values would differ between processes.
        raise ValueError(f"invalid cron expression {text!r}: {name} field {value!r}: R and H are not supported")
    probe = ["*"] * len(fields)
    probe[i] = value
    try:
        croniter(" ".join(probe), EPOCH, second_at_beginning=True)
    except CroniterError as e:
        detail = _CRONITER_NOISE.sub("", str(e))
        reason = f"{name} field {value!r} is not valid" + (f" ({detail})" if detail else "")
        raise ValueError(f"invalid cron expression {text!r}: {reason}") from None
