"""Beat keeps running while Redis restarts: Celery's beat loop exits on any exception from tick()."""

import redis
from kombu.exceptions import OperationalError

from meterworker.schedule.beat import TickScheduler


class DownLock:
    def __init__(self, error):
        self.error = error

    def acquire(self):
        raise self.error


def scheduler(lock) -> TickScheduler:
    sched = TickScheduler.__new__(TickScheduler)  # no app, no config: tick() is what is under test
    sched.lock, sched.renew_every, sched.active, sched.redis_down = lock, 1.0, True, False
    return sched


def test_a_redis_error_in_a_tick_makes_beat_stand_by_and_try_again(monkeypatch):
    for error in (redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
                  OperationalError("Error 111 connecting to 127.0.0.1:6379.")):
        sched = scheduler(DownLock(error))
        assert sched.tick() == 1.0  # no exception: beat's loop goes on
        assert sched.redis_down and not sched.active
        assert sched.tick() == 1.0

        monkeypatch.setattr(sched, "_tick", lambda: 0.25)  # Redis is back
        assert sched.tick() == 0.25 and not sched.redis_down
