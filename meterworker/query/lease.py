"""A running query task's lease on its tick, renewed from a thread while the task runs.

The lease tells beat the tick is being worked on: its sign of life in the pending set stays fresh, so
it is not dispatched again however long Prometheus takes; and a second copy of the task (dispatched
again, or a message the broker redelivered) finds it held, or the tick done, and does nothing. A worker that dies, or
loses Redis, stops renewing: after stall_timeout the lease is gone, the tick looks stalled, and beat
dispatches it again.
"""

import logging
import threading

import redis

log = logging.getLogger(__name__)


class TickLease:
    """``with TickLease(state, query, tick, holder, ttl) as lease:`` lease.other is None when this task holds it,
    State.DONE when the tick is done already, else the id of the task that holds it."""

    def __init__(self, state, query: str, tick: int, holder: str, ttl: float):
        self.state, self.query, self.tick, self.holder, self.ttl = state, query, tick, holder, ttl
        self.other: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "TickLease":
        self.other = self.state.lease(self.query, self.tick, self.holder, self.ttl)
        if self.other is None:
            self._thread = threading.Thread(target=self._renew, name="meterworker-tick-lease", daemon=True)
            self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                other = self.state.lease(self.query, self.tick, self.holder, self.ttl)
            except redis.RedisError as e:
                log.warning("query %s tick %s: could not renew the tick's lease: %s", self.query, self.tick, e)
                continue
            if other == self.state.DONE:
                return
            if other is not None:
                log.warning("query %s tick %s: the tick's lease ran out and task %s took it over",
                            self.query, self.tick, other)
                return

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        try:
            self.state.release(self.query, self.tick, self.holder)
        except redis.RedisError:
            pass  # it runs out after ttl
