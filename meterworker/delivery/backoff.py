"""Retry delays: exponential from retry_period, capped, with jitter, honouring Retry-After."""

import random
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone


def retry_delay(
    attempt: int,
    retry_period: float,
    max_backoff: float,
    retry_after: float | None = None,
    rand=random.random,
) -> float:
    """Delay before retry number `attempt` (1 for the first retry).

    Full delay is retry_period * 2**(attempt-1), capped at max_backoff; jitter takes it
    down by up to a half, so that workers retrying together spread out. A server's
    Retry-After is a floor, still capped at max_backoff.
    """
    base = min(max_backoff, retry_period * (2 ** max(0, attempt - 1)))
    delay = base * (0.5 + 0.5 * rand())
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_backoff))
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
