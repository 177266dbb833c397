from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from meterworker.delivery.backoff import parse_retry_after, retry_delay


def test_exponential_from_retry_period_without_jitter_at_the_top():
    assert [retry_delay(n, 15, 3600, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [15, 30, 60, 120]


def test_capped_at_max_backoff():
    assert retry_delay(10, 15, 60, rand=lambda: 1.0) == 60


def test_jitter_stays_between_half_and_full():
    lows = [retry_delay(n, 15, 60, rand=lambda: 0.0) for n in range(1, 8)]
    assert lows == [7.5, 15, 30, 30, 30, 30, 30]
    for n in range(1, 8):
        d = retry_delay(n, 15, 60)
        assert min(60, 15 * 2 ** (n - 1)) / 2 <= d <= min(60, 15 * 2 ** (n - 1))


def test_retry_after_is_a_floor_within_the_cap():
    assert retry_delay(1, 1, 60, retry_after=20, rand=lambda: 0.0) == 20
    assert retry_delay(1, 1, 60, retry_after=600, rand=lambda: 0.0) == 60


def test_parse_retry_after():
    now = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_the_seeds_schedule_gives_up_after_four_attempts_over_52_to_105_seconds():
    # retry_period 15s, max_retry_backoff 1m, retries 3
    low = sum(retry_delay(n, 15, 60, rand=lambda: 0.0) for n in (1, 2, 3))
    high = sum(retry_delay(n, 15, 60, rand=lambda: 1.0) for n in (1, 2, 3))
    assert (low, high) == (52.5, 105)


def test_a_retry_after_below_the_jittered_delay_changes_nothing():
    assert retry_delay(3, 15, 60, retry_after=5, rand=lambda: 0.5) == 45
