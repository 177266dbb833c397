"""One active beat: a redis-py Lock holding the active beat's id, renewed while that beat lives.

A beat that dies stops renewing; its lock expires after lock_timeout and a standby beat takes it.
"""

import redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from meterworker.keys import Keys


def holder(r: redis.Redis, collector: str) -> str | None:
    """The id of the beat that holds the lock, or None."""
    v = r.get(Keys(collector).beat_lock)
    return v.decode() if isinstance(v, bytes) else v


class BeatLock:
    def __init__(self, r: redis.Redis, collector: str, holder: str, ttl: float):
        self.r, self.collector = r, collector
        self.key = Keys(collector).beat_lock
        self.holder_id = holder
        self._lock = Lock(r, self.key, timeout=ttl, blocking=False, thread_local=False)

    def acquire(self) -> bool:
        """Take the lock, or renew it for another ttl when this beat holds it; False when another beat does."""
        if self._lock.local.token is not None:
            try:
                return self._lock.reacquire()
            except LockNotOwnedError:
                self._lock.local.token = None
        return self._lock.acquire(blocking=False, token=self.holder_id)

    def release(self) -> None:
        """Let the lock go, if this beat still holds it."""
        if self._lock.local.token is None:
            return
        try:
            self._lock.release()
        except LockNotOwnedError:
            pass

    def holder(self) -> str | None:
        return holder(self.r, self.collector)
