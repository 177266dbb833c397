"""`max_in_flight`: at most that many requests under way at once, across every send worker.

A semaphore in Redis whose slots expire, so that a slot held by a worker that died comes back.
"""

import random
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import redis

from meterworker.delivery.batching import still_fresh
from meterworker.keys import Keys
from meterworker.scripts import register


class Slot:
    def __init__(self, slots: "InFlightSlots", holder: str, since: float):
        self.slots = slots
        self.holder = holder
        self.since = since  # time.monotonic() before the slot was last set in Redis

    def renew(self) -> None:
        """Keep the slot for another ttl; wait for one again if it expired and was taken meanwhile.
        A slot set moments ago (batching.still_fresh) still has nearly its whole ttl: it is not renewed again."""
        if time.monotonic() - self.since < still_fresh(self.slots.ttl):
            return
        self.since = self.slots.wait_for(self.holder)


class InFlightSlots:
    def __init__(self, r: redis.Redis, collector: str, limit: int, ttl: float, poll: float = 0.1):
        self.r = r
        self.key = Keys(collector).in_flight
        self.limit, self.ttl, self.poll = limit, ttl, poll
        self._acquire = register(r, __package__, "inflight_acquire.lua")

    def try_acquire(self, holder: str) -> bool:
        return bool(self._acquire(keys=[self.key], args=[holder, self.limit, self.ttl]))

    def wait_for(self, holder: str) -> float:
        """Wait until `holder` has a slot; returns time.monotonic() from just before it was set."""
        while True:
            started = time.monotonic()
            if self.try_acquire(holder):
                return started
            time.sleep(self.poll * (0.5 + random.random()))

    def release(self, holder: str) -> None:
        self.r.zrem(self.key, holder)

    def in_use(self) -> int:
        return self.r.zcount(self.key, "(" + str(self._now()), "+inf")

    def _now(self) -> float:
        seconds, micros = self.r.time()
        return seconds + micros / 1e6

    @contextmanager
    def held(self) -> Iterator[Slot]:
        """Wait for a free slot and hold it for the block."""
        holder = uuid.uuid4().hex
        since = self.wait_for(holder)
        try:
            yield Slot(self, holder, since)
        finally:
            self.release(holder)
