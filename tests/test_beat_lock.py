"""The beat lock on a real Redis: one holder, renewed while it lives, taken over after it stops."""

import time

import pytest
import redis

from meterworker.schedule import beat_lock
from meterworker.schedule.beat_lock import BeatLock

KEY = "meterworker:c:beat-lock"


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_one_holder_and_released(r):
    a, b = BeatLock(r, "c", "a", 10), BeatLock(r, "c", "b", 10)
    assert a.acquire() and not b.acquire()
    assert a.acquire()
    assert b.holder() == "a" and beat_lock.holder(r, "c") == "a"
    b.release()  # not b's to release
    assert r.get(KEY) == b"a"
    a.release()
    assert beat_lock.holder(r, "c") is None
    assert b.acquire() and b.holder() == "b"


def test_the_holder_renews_its_lease(r):
    a = BeatLock(r, "c", "a", 10)
    assert a.acquire()
    r.pexpire(KEY, 500)
    assert a.acquire()
    assert 9000 < r.pttl(KEY) <= 10000


def test_a_standby_takes_over_after_the_lock_timeout(r):
    a, b = BeatLock(r, "c", "a", 0.3), BeatLock(r, "c", "b", 0.3)
    assert a.acquire()
    assert not b.acquire()
    time.sleep(0.4)  # a stopped renewing
    assert b.acquire() and beat_lock.holder(r, "c") == "b"
    assert not a.acquire()  # a lost it, and says so
    a.release()
    assert beat_lock.holder(r, "c") == "b"


def test_a_holder_whose_lock_expired_unclaimed_takes_it_again(r):
    a = BeatLock(r, "c", "a", 0.2)
    assert a.acquire()
    time.sleep(0.3)
    assert r.get(KEY) is None
    assert a.acquire() and beat_lock.holder(r, "c") == "a"


def test_a_lock_lost_to_a_redis_restart_is_taken_again(r):
    a = BeatLock(r, "c", "a", 10)
    assert a.acquire()
    r.flushdb()
    assert a.acquire() and 9000 < r.pttl(KEY) <= 10000
