"""Points in time given on the command line: ISO 8601, Unix seconds, 'now', or 'now-1h' / '-1h'."""

from datetime import datetime, timedelta, timezone

from meterworker.durations import parse_duration

# Ticks are Unix seconds; a time far before 1970 or after this is a typo, and beyond it date arithmetic fails.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(3000, 1, 1, tzinfo=timezone.utc)


def parse_time(text: str, now: datetime | None = None) -> datetime:
    t = _parse(text, now or datetime.now(timezone.utc))
    if not EARLIEST <= t < LATEST:
        raise ValueError(f"time {text!r} is out of range: give one from 1970 to before 3000")
    return t


def _parse(text: str, now: datetime) -> datetime:
    s = text.strip()
    if s == "now":
        return now
    try:
        if s.startswith("now-") or s.startswith("-"):
            return now - timedelta(seconds=parse_duration(s.split("-", 1)[1]))
    except OverflowError:
        raise ValueError(f"time {text!r} is out of range: give one from 1970 to before 3000") from None
    try:
        seconds = float(s)
    except ValueError:
        pass
    else:
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):  # inf, nan, 1e400, beyond year 9999
            raise ValueError(f"time {text!r} is out of range: give one from 1970 to before 3000") from None
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}; use ISO 8601 (2026-11-27T10:00:00Z), Unix seconds, 'now' or 'now-1h'"
        ) from None
    try:
        return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+01:00
        raise ValueError(f"time {text!r} is out of range: give one from 1970 to before 3000") from None
