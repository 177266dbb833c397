"""A running query task's lease on its tick, renewed from a thread while the task runs.

The lease tells beat the tick is being worked on: its sign of life in the pending set stays fresh, so
it is not dispatched again however long Prometheus takes; and a second copy of the task (dispatched
again, or a message the broker redelivered) finds it held, or the tick done, and does nothing. A worker that dies, or
loses Redis, stops renewing: after stall_timeout the lease is gone, the tick looks stalled, and beat
dispatches it again.
"""

import logging
import os
import threading
import time

import redis

log = logging.getLogger(__name__)


class TickLease:
    """``with TickLease(state, query, tick, holder, ttl) as lease:`` lease.other is None when this task holds it,
    State.DONE when the tick is done already, else the id of the task that holds it."""

    def __init__(self, state, query: str, tick: int, holder: str, ttl: float):
        self.state, self.query, self.tick, self.holder, self.ttl = state, query, tick, holder, ttl
        self.other: str | None = None
        self.released = False

    def __enter__(self) -> "TickLease":
        self.other = self.state.lease(self.query, self.tick, self.holder, self.ttl)
        if self.other is None:
            _renewer().add(self)
        return self

    def renew(self) -> bool:
        """Renew the lease; False when it is no longer this task's to renew."""
        try:
            other = self.state.lease(self.query, self.tick, self.holder, self.ttl)
        except redis.RedisError as e:
            log.warning("query %s tick %s: could not renew the tick's lease: %s", self.query, self.tick, e)
            return True
        if other is not None and other != self.state.DONE:
            log.warning("query %s tick %s: the tick's lease ran out and task %s took it over",
                        self.query, self.tick, other)
        return other is None

    def complete(self) -> None:
        """The tick is done: completed and the lease released, in one script."""
        _renewer().remove(self)
        self.state.complete(self.query, self.tick, self.holder)
        self.released = True

    def __exit__(self, *exc) -> None:
        if self.other is not None or self.released:
            return
        _renewer().remove(self)
        try:
            self.state.release(self.query, self.tick, self.holder)
        except redis.RedisError:
            pass  # it runs out after ttl


class Renewer:
    """One thread per process renews every lease its tasks hold, each a quarter of its ttl after the last
    time. A lease removed is never renewed afterwards (remove waits for a renewal under way), so a released
    lease is not taken again behind its task's back."""

    def __init__(self):
        self._leases: dict[int, list] = {}  # id(lease) -> [lease, when it is due, monotonic]
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, lease: TickLease) -> None:
        with self._lock:
            self._leases[id(lease)] = [lease, time.monotonic() + lease.ttl / 4]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="meterworker-tick-lease", daemon=True)
                self._thread.start()
        self._wake.set()

    def remove(self, lease: TickLease) -> None:
        with self._lock:
            self._leases.pop(id(lease), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                for key, entry in list(self._leases.items()):
                    lease, due = entry
                    if due <= now:
                        if lease.renew():
                            entry[1] = time.monotonic() + lease.ttl / 4
                        else:
                            del self._leases[key]
                wait = min((due for _, due in self._leases.values()), default=now + 60) - time.monotonic()
            self._wake.wait(max(0.01, wait))
            self._wake.clear()


_renewers: dict[int, Renewer] = {}


def _renewer() -> Renewer:
    """This process' renewer (a new one after a fork)."""
    pid = os.getpid()
    if pid not in _renewers:
        _renewers.clear()
        _renewers[pid] = Renewer()
    return _renewers[pid]
