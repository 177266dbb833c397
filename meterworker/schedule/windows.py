"""Which slice of time each tick covers, and the instant its query is evaluated at.

The window of tick t_k is (t_{k-1}, t_k] shifted back by the query offset, so the windows of
consecutive ticks tile the time line; the query is evaluated at t_k - offset.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from meterworker.schedule.cron import Schedule, utc as _utc


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
