"""When queries run: schedules and their ticks (cron.py), the window of each tick (windows.py), which ticks
are due (due.py); and, apart from this pure arithmetic, the tick state in Redis (state.py) and beat (beat.py)."""

from meterworker.schedule.cron import Schedule, parse_schedule
from meterworker.schedule.windows import Window, evaluation_time, window_for

__all__ = ["Schedule", "Window", "evaluation_time", "parse_schedule", "window_for"]
