"""A backfill's progress on stderr: ticks done of all, events delivered, events per second, ETA. On a terminal
one line redrawn in place; otherwise a plain line every few seconds (and at the end)."""

import sys
import time

from meterworker.durations import format_go_duration

PLAIN_EVERY = 5.0  # seconds between two lines when stderr is not a terminal
REDRAW_EVERY = 0.2


def progress_line(done: int, total: int, delivered: int, elapsed: float) -> str:
    """`1,200/10,080 ticks (12%), 120,000 events delivered, 3,400 events/s, ETA 45s`."""
    pct = 100 * done // total if total else 100
    rate = delivered / elapsed if elapsed > 0 else 0.0
    if done >= total:
        eta = "done"
    elif done and elapsed > 0:
        eta = "ETA " + format_go_duration(round((total - done) * elapsed / done))
    else:
        eta = "ETA unknown"
    return f"{done:,}/{total:,} ticks ({pct}%), {delivered:,} events delivered, {rate:,.0f} events/s, {eta}"


class Progress:
    def __init__(self, total: int, stream=None, clock=time.monotonic):
        self.total, self.stream, self.clock = total, stream or sys.stderr, clock
        self.started = clock()
        self.tty = self.stream.isatty()
        self.done = self.delivered = 0
        self._shown = None  # when the last line was written
        self._width = 0

    def update(self, done: int, delivered: int) -> None:
        self.done, self.delivered = done, delivered
        now = self.clock()
        if self._shown is not None and now - self._shown < (REDRAW_EVERY if self.tty else PLAIN_EVERY):
            return
        self._write(now)

    def _write(self, now: float) -> None:
        self._shown = now
        line = "backfill: " + progress_line(self.done, self.total, self.delivered, now - self.started)
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Ends the redrawn line, so that other lines start on their own."""
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def finish(self) -> None:
        self._write(self.clock())
        self.clear()
