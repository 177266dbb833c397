"""The backfill's progress line: ticks done of all, events delivered, events per second, ETA; redrawn on a terminal,
a plain line every few seconds elsewhere."""

import io

from meterworker.cli.progress import PLAIN_EVERY, Progress, progress_line


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_the_line_says_ticks_events_rate_and_eta():
    assert progress_line(2_500, 10_000, 250_000, 50.0) == \
        "2,500/10,000 ticks (25%), 250,000 events delivered, 5,000 events/s, ETA 2m30s"
    assert progress_line(0, 10, 0, 0.0).endswith("0 events/s, ETA unknown")
    assert progress_line(10, 10, 40, 4.0).endswith("10 events/s, done")


def test_without_a_terminal_a_plain_line_every_few_seconds_and_one_at_the_end():
    clock, out = Clock(), io.StringIO()
    p = Progress(100, out, clock)
    for done in range(1, 101):
        clock.now += 0.25  # 25 s in all
        p.update(done, done * 10)
    p.finish()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert PLAIN_EVERY == 5.0
    assert len(lines) == 6, lines  # at 0.25 s, then every 5 s up to 20.25 s, and the last one
    assert lines[-1] == "backfill: 100/100 ticks (100%), 1,000 events delivered, 40 events/s, done"


def test_on_a_terminal_one_line_redrawn_in_place():
    clock, out = Clock(), Tty()
    p = Progress(4, out, clock)
    for done in range(1, 5):
        clock.now += 1
        p.update(done, 0)
    p.finish()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r") == 5
