from datetime import datetime, timedelta, timezone

from meterworker.schedule.backfill import ticks_in_range
from meterworker.schedule.due import due_ticks
from meterworker.schedule.cron import parse_schedule

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
MINUTELY = parse_schedule("0 * * * * *")


def test_first_start_dispatches_only_the_latest_tick():
    due = due_ticks(MINUTELY, None, T0 + timedelta(seconds=30), horizon=86400)
    assert due.ticks == [T0] and due.skipped == 0


def test_missed_ticks_are_due_oldest_first():
    due = due_ticks(MINUTELY, T0, T0 + timedelta(minutes=3, seconds=5), horizon=86400)
    assert due.ticks == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]


def test_nothing_due_between_ticks():
    assert due_ticks(MINUTELY, T0, T0 + timedelta(seconds=59), horizon=86400).ticks == []


def test_the_horizon_bounds_catch_up_and_says_what_it_left():
    now = T0 + timedelta(hours=3)
    due = due_ticks(MINUTELY, T0, now, horizon=3600)
    assert due.ticks[0] == now - timedelta(minutes=59) and due.ticks[-1] == now
    assert len(due.ticks) == 60
    assert due.skipped == 120 and due.oldest_skipped == T0 + timedelta(minutes=1)


def test_backfill_range_is_inclusive():
    ticks = ticks_in_range(MINUTELY, T0, T0 + timedelta(minutes=2))
    assert ticks == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
