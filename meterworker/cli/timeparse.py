"""Points in time given on the command line: ISO 8601, Unix seconds, 'now', or 'now-1h' / '-1h'."""

from datetime import datetime, timedelta, timezone

from meterworker.durations import parse_duration


def parse_time(text: str, now: datetime | None = None) -> datetime:
    now = now or datetime.now(timezone.utc)
    s = text.strip()
    if s == "now":
        return now
    if s.startswith("now-") or s.startswith("-"):
        return now - timedelta(seconds=parse_duration(s.split("-", 1)[1]))
    try:
        return datetime.fromtimestamp(float(s), tz=timezone.utc)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}; use ISO 8601 (2026-11-27T10:00:00Z), Unix seconds, 'now' or 'now-1h'"
        ) from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
