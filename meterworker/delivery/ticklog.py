"""What of a (query, tick) the outbox holds: a log in Redis, read by the query side a little at a time.

The log (a hash per query and tick, meterworker.keys) lists the digests (dedup.digest) of the events
added, one field per add, and of those dead-lettered since, one field per dead-letter write; it only
ever grows until nothing of the tick is pending, and is then deleted. So an event is pending when
it was added more often than dead-lettered and is not marked delivered; a reader that saw the
log's id and field counts reads only the fields written after them.
"""

from collections import Counter

import redis


def _raw(value) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else value.encode("latin-1", errors="surrogateescape")


def split(blob: bytes) -> list[bytes]:
    return [blob[i:i + 8] for i in range(0, len(blob), 8)]


class TickLog:
    """One reader's view of a tick's log; `held` counts, by digest, adds less dead-letters seen."""

    def __init__(self, r: redis.Redis, key: str):
        self.r, self.key = r, key
        self._reset("")

    def _reset(self, log_id: str) -> None:
        self.id = log_id
        self.h = self.x = 0
        self.held: Counter = Counter()
        self.run: str | None = None  # the run whose own adds `held` leaves out (see added)

    def start(self, run: str | None) -> None:
        """Adds of `run` follow. A view that left out the adds of another run reads the whole log again."""
        if self.run is not None and self.run != run:
            self._reset("")

    def pending(self, d: bytes) -> bool:
        return self.held.get(d, 0) > 0

    def current(self) -> bool:
        """Whether nothing was written to the log since this reader read it."""
        log_id, h, x = self.r.hmget(self.key, ["id", "h#", "x#"])
        return (_raw(log_id).decode(), int(h or 0), int(x or 0)) == (self.id, self.h, self.x)

    def refresh(self) -> None:
        """Read what was written since this reader last looked (all of it, when the log was made again)."""
        log_id, h, x = self.r.hmget(self.key, ["id", "h#", "x#"])
        log_id = _raw(log_id).decode()
        if log_id != self.id:
            self._reset(log_id)
        h, x = int(h or 0), int(x or 0)
        fields = [f"h:{i}" for i in range(self.h + 1, h + 1)] + [f"x:{i}" for i in range(self.x + 1, x + 1)]
        if fields:
            got = self.r.hmget(self.key, fields)
            added = h - self.h
            for blob in got[:added]:
                self.held.update(split(_raw(blob)))
            for blob in got[added:]:
                self.held.subtract(split(_raw(blob)))
        self.h, self.x = h, x

    def added(self, digests: list[bytes], log_id, h: int, run: str | None = None) -> None:
        """This reader's own add was written: the log is at `h` now, with `digests` in its last field.
        With a `run`, whose events are never added twice (a query task's slices of one evaluation), they
        are not kept: a tick of a million series costs the query task no memory for them."""
        log_id = _raw(log_id).decode()
        if log_id != self.id:  # the add made the log
            self._reset(log_id)
        if run is None:
            self.held.update(digests)
        self.run = run
        self.h = int(h)
