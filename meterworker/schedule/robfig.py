"""Cron expressions read and stepped as Go's robfig/cron v3 does.

Redpanda Connect parses a cron ``schedule`` with
``cron.NewParser(SecondOptional | Minute | Hour | Dom | Month | Dow | Descriptor)``:
6 fields with seconds first, or 5 without them (second 0), and the descriptors
@yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly. This module
reproduces that parser (parser.go) and ``SpecSchedule.Next`` (spec.go) of robfig/cron
v3.0.1:

- A field is a comma list of ``*``, ``?``, ``n``, ``a-b``, each optionally ``/step``;
  ``n/step`` means ``n-max/step``. Month and day-of-week take three-letter names in any
  case (JAN, mon). Day of week is 0-6 (0 is Sunday; 7 is refused).
- Only an item written ``*`` or ``?`` (with no step, or step 1) counts as a star for
  the day rule: when day-of-month or day-of-week is a star, a day must match both;
  otherwise either. ``1-31``, ``0-6`` and ``*/2`` are restrictions.
- Next walks the zone's wall clock as Go does (hours and smaller units added as
  absolute durations, days and months through ``time.Date``), at most five calendar
  years ahead. What it returns always has a matching wall clock, and a matching
  instant is what it returns from just before it: the ticks are those instants. A wall
  time skipped in spring never ticks; one repeated in autumn ticks twice (spec_test:
  "2am nightly job (skipped)", "1am nightly job (runs twice)").

``robfig_next`` is Go's walk itself. Across an offset change by part of an hour (Lord
Howe's 30 minutes) it can step past a matching instant, so its answer then depends on
where it started. ``next_after`` does the same walk run by run of constant UTC offset:
the first matching instant, equal to ``robfig_next`` wherever that does not depend on
the start. Ticks are whole seconds, as UTC datetimes. Standard library only.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["RobfigCron", "parse"]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_SECOND = timedelta(seconds=1)
_STAR = 1 << 63  # robfig's starBit: the field was written * or ?
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (name, min, max, names), in robfig's order: seconds first.
_FIELDS = (
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
# The bit sets robfig's parseDescriptor builds, written as the fields that give them.
DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_INT = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi accepts
_GO_INT_MAX = 2**63 - 1
# Years too close to datetime's limits for Go's five-year search.
_LAST_YEAR = 9990
_MIN_UNIX = (datetime(2, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_SECOND
_MAX_LOOK_BACK = 2**31  # seconds, ~68 years
# Offsets are probed this far apart; no zone has kept an offset for less than a week.
_PROBE = 6 * 3600


class RobfigCron:
    """One parsed expression in one time zone: the six bit sets and the zone."""

    def __init__(self, spec: str, zone: tzinfo, bits: tuple[int, int, int, int, int, int]):
        self.spec = spec
        self.zone = zone
        self.second, self.minute, self.hour, self.dom, self.month, self.dow = bits

    def __repr__(self) -> str:
        return f"robfig.parse({self.spec!r}, {str(self.zone)!r})"

    # --- the public instants --------------------------------------------------------

    def next_after(self, t: datetime) -> datetime | None:
        """The first tick strictly after t, or None when there is none within five
        years (where Go's Next returns the zero time)."""
        return _instant(self._next(_floor_seconds(t)))

    def robfig_next(self, t: datetime) -> datetime | None:
        """What robfig's Next(t) returns: Go's walk in the zone, unsplit."""
        u = _floor_seconds(t)
        return _instant(self._walk(u, self.zone, _year(u + 1, self.zone) + 5))

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The last tick at or before t (None if none is found)."""
        return _instant(self._latest(_floor_seconds(t)))

    def prev_before(self, t: datetime) -> datetime | None:
        """The last tick strictly before t (None if none is found)."""
        s = _floor_seconds(t)
        return _instant(self._latest(s - 1 if _instant(s) == t else s))

    # --- Go's walk, run by run of constant offset ---------------------------------------

    def _next(self, u: int) -> int | None:
        year_limit = _year(u + 1, self.zone) + 5
        while True:
            offset = _offset(u + 1, self.zone)
            end = _next_change(self.zone, u + 1)
            found = self._walk(u, timezone(timedelta(seconds=offset)), year_limit)
            if found is None or end is None or found < end:
                return found
            u = end - 1

    def _walk(self, u: int, zone: tzinfo, year_limit: int) -> int | None:
        """robfig's SpecSchedule.Next on Unix seconds, in zone."""
        u += 1  # t.Add(1*time.Second - t.Nanosecond()): u is already floored
        w = _wall(u, zone)
        added = False
        while True:  # each pass is robfig's WRAP label
            if w.year > year_limit or w.year >= _LAST_YEAR:
                return None
            wrapped = False
            while not (1 << w.month) & self.month:
                if not added:
                    added = True
                    w = _wall(u := _date(w.year, w.month, 1, 0, 0, 0, zone), zone)
                w = _wall(u := _date(w.year, w.month + 1, w.day, w.hour, w.minute, w.second, zone), zone)
                if wrapped := w.month == 1:
                    break
            if wrapped:
                continue
            while not self._day_matches(w):
                if not added:
                    added = True
                    w = _wall(u := _date(w.year, w.month, w.day, 0, 0, 0, zone), zone)
                w = _wall(u := _date(w.year, w.month, w.day + 1, w.hour, w.minute, w.second, zone), zone)
                if w.hour != 0:  # robfig's correction for a midnight that DST moved
                    u += (24 - w.hour) * 3600 if w.hour > 12 else -w.hour * 3600
                    w = _wall(u, zone)
                if wrapped := w.day == 1:
                    break
            if wrapped:
                continue
            while not (1 << w.hour) & self.hour:
                if not added:
                    added = True
                    w = _wall(u := _date(w.year, w.month, w.day, w.hour, 0, 0, zone), zone)
                w = _wall(u := u + 3600, zone)
                if wrapped := w.hour == 0:
                    break
            if wrapped:
                continue
            while not (1 << w.minute) & self.minute:
                if not added:
                    added = True
                    u -= u % 60  # t.Truncate(time.Minute) works on absolute time
                w = _wall(u := u + 60, zone)
                if wrapped := w.minute == 0:
                    break
            if wrapped:
                continue
            while not (1 << w.second) & self.second:
                added = True  # Truncate(time.Second) changes nothing on whole seconds
                w = _wall(u := u + 1, zone)
                if wrapped := w.second == 0:
                    break
            if wrapped:
                continue
            return u

    def _day_matches(self, w: datetime) -> bool:
        dom = bool((1 << w.day) & self.dom)
        dow = bool((1 << (w.weekday() + 1) % 7) & self.dow)  # Go: Sunday is 0
        if (self.dom | self.dow) & _STAR:
            return dom and dow
        return dom or dow

    # --- the last tick at or before an instant -----------------------------------------

    def _latest(self, limit: int) -> int | None:
        """The largest _next(x) <= limit: gallop back to an x whose next tick is <= limit,
        then bisect for the largest such x (_next is monotonic; _next(x) > x)."""
        step, no = 1, limit
        while True:
            x = limit - step
            if x < _MIN_UNIX or step > _MAX_LOOK_BACK:
                return None
            found = self._next(x)
            if found is not None and found <= limit:
                break
            no, step = x, step * 2
        yes = x
        while no - yes > 1:
            mid = (yes + no) // 2
            n = self._next(mid)
            if n is not None and n <= limit:
                yes, found = mid, n
            else:
                no = mid
        return found


def _wall(u: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(u, zone)


def _offset(u: int, zone: tzinfo) -> int:
    return _wall(u, zone).utcoffset() // _ONE_SECOND


def _year(u: int, zone: tzinfo) -> int:
    return _wall(u, zone).year


def _date(year: int, month: int, day: int, hour: int, minute: int, second: int, zone: tzinfo) -> int:
    """Go's time.Date: overflow (month 13, day 32) normalised as Go does, and the offset
    of a skipped or repeated wall time chosen as Go does: the offset in force at the wall
    time read as UTC, unless that is 0 or the resulting instant lies in another zone
    period; then the offset in force at that instant."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    days = date(year, month, 1).toordinal() - _EPOCH_ORDINAL + day - 1
    unix = days * 86400 + hour * 3600 + minute * 60 + second
    offset = _offset(unix, zone)
    if offset != 0:
        offset = _offset(unix - offset, zone)
    return unix - offset


def _next_change(zone: tzinfo, u: int) -> int | None:
    """The first instant after u where the zone's UTC offset changes (within ten years)."""
    year = _wall(u, UTC).year
    for y in range(year, min(year + 10, _LAST_YEAR)):
        changes = _changes(zone, y)
        i = bisect_right(changes, u)
        if i < len(changes):
            return changes[i]
    return None


@lru_cache(maxsize=512)
def _changes(zone: tzinfo, year: int) -> tuple[int, ...]:
    """The instants of year (UTC) at which the zone's offset differs from a second before."""
    start = (datetime(year, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_SECOND
    end = (datetime(year + 1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_SECOND
    found, lo = [], start - 1
    while lo < end:
        hi = min(lo + _PROBE, end)
        if _offset(hi, zone) != _offset(lo, zone):
            a, b = lo, hi  # bisect to the first second of the new offset
            while b - a > 1:
                mid = (a + b) // 2
                a, b = (a, mid) if _offset(mid, zone) != _offset(a, zone) else (mid, b)
            found.append(b)
        lo = hi
    return tuple(found)


def _instant(u: int | None) -> datetime | None:
    return None if u is None else _EPOCH + timedelta(seconds=u)


def parse(spec: str, tz: str | tzinfo = "UTC") -> RobfigCron:
    """Parse as Redpanda Connect's robfig parser does; ValueError names the bad field."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    text = DESCRIPTORS.get(spec, spec)
    if text.startswith("@"):
        raise ValueError(f"unrecognized descriptor {spec!r}")
    fields = text.split()
    if len(fields) == 5:
        fields.insert(0, "0")  # SecondOptional: the missing seconds field is 0
    elif len(fields) != 6:
        raise ValueError(
            "expected 6 fields (second minute hour day-of-month month day-of-week) "
            f"or 5 (without the second), got {len(fields)}"
        )
    bits = []
    for value, (name, lo, hi, names) in zip(fields, _FIELDS):
        try:
            bits.append(_field_bits(value, lo, hi, names))
        except ValueError as e:
            raise ValueError(f"{name} field {value!r} is not valid: {e}") from None
    return RobfigCron(spec, zone, tuple(bits))


def _field_bits(value: str, lo: int, hi: int, names: dict[str, int] | None) -> int:
    bits = 0
    for item in value.split(","):
        if item:  # strings.FieldsFunc drops empty items: "1,,2" is "1,2"
            bits |= _range_bits(item, lo, hi, names)
    return bits


def _range_bits(item: str, lo: int, hi: int, names: dict[str, int] | None) -> int:
    """robfig's getRange, with its checks in its order."""
    range_and_step = item.split("/")
    low_high = range_and_step[0].split("-")
    star = 0
    if low_high[0] in ("*", "?"):  # anything after a leading *- is ignored, as in robfig
        start, end, star = lo, hi, _STAR
    else:
        start = _number(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _number(low_high[1], names)
        else:
            raise ValueError(f"too many hyphens in {item!r}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _number(range_and_step[1], None)
        if len(low_high) == 1:
            end = hi  # "n/step" means "n-max/step"
        if step > 1:
            star = 0
    else:
        raise ValueError(f"too many slashes in {item!r}")
    if start < lo:
        raise ValueError(f"beginning of range ({start}) below minimum ({lo})")
    if end > hi:
        raise ValueError(f"end of range ({end}) above maximum ({hi})")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end})")
    if step == 0:
        raise ValueError("step of range should be a positive number")
    return sum(1 << v for v in range(start, end + 1, step)) | star


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    if not _INT.fullmatch(text) or abs(int(text)) > _GO_INT_MAX:
        hint = ""
        if any(c in text for c in "LW#"):
            hint = " (L, W and # are not supported)"
        elif text[:1] in ("R", "r", "H", "h"):
            hint = " (R and H are not supported)"
        raise ValueError(f"failed to parse int from {text!r}{hint}")
    if int(text) < 0:
        raise ValueError(f"negative number ({int(text)}) not allowed")
    return int(text)


def _floor_seconds(t: datetime) -> int:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: give it a time zone (e.g. UTC)")
    return (t - _EPOCH) // _ONE_SECOND
