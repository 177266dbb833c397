"""The outbox of the release before, one entry per event: read and drained, never written.

That release kept each pending event as a field of the `outbox:pending` hash, the events in no batch
in the `outbox:queue` sorted set, and each batch as a hash and a set of members (meterworker.keys).
After an upgrade, send workers take those batches and events first (Outbox.take), finish and
settle them with the scripts of that layout (lua/legacy_*.lua), and query workers do not queue
again an event it holds.
"""

import time
import uuid
from typing import Any

import orjson
import redis

from meterworker.keys import Keys
from meterworker.scripts import register

RECHECK = 600.0  # seconds between two looks for an outbox of the release before, once it was empty


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LegacyOutbox:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r, self.keys = r, keys
        self.pending_key, self.queue_key = keys.outbox_pending, keys.outbox_queue
        self._take = register(r, __package__, "legacy_take.lua")
        self._resume = register(r, __package__, "legacy_resume.lua")
        self._finish = register(r, __package__, "legacy_finish.lua")
        self._delivered = register(r, __package__, "legacy_delivered.lua")
        self._seen_empty: float | None = None

    def batch_keys(self, batch_id: str) -> tuple[str, str]:
        return self.keys.outbox_batch(batch_id), self.keys.outbox_batch_members(batch_id)

    def possible(self) -> bool:
        """Whether events of the release before may be pending (looked for again every RECHECK seconds once
        none were)."""
        now = time.monotonic()
        if self._seen_empty is not None and now - self._seen_empty < RECHECK:
            return False
        if self.r.exists(self.pending_key):
            self._seen_empty = None
            return True
        self._seen_empty = now
        return False

    def not_pending(self, events: list[dict[str, Any]], event_key) -> list[dict[str, Any]]:
        if not events or not self.possible():
            return events
        held = self.r.hmget(self.pending_key, [event_key(e) for e in events])
        return [e for e, h in zip(events, held) if h is None]

    def take(self, count: int, period: float, lease: float, batches_key: str):
        """(batch id, raw reply) of a new batch of its oldest events, as legacy_take.lua answers."""
        batch_id = uuid.uuid4().hex[:12]
        got = self._take(keys=[self.queue_key, self.pending_key, batches_key, *self.batch_keys(batch_id)],
                         args=[count, period, lease, batch_id])
        return batch_id, got

    def resume(self, batch_id: str, gen: int, lease: float, batches_key: str):
        batch, members = self.batch_keys(batch_id)
        return self._resume(keys=[batches_key, batch, members, self.pending_key], args=[batch_id, gen, lease])

    @staticmethod
    def items(got, item):
        """The pending events of a reply of legacy_take.lua or legacy_resume.lua, as `item(key, payload)`."""
        gen, attempt, first_failure, keys, payloads = got
        out = []
        for key, payload in zip(keys, payloads):
            if payload is None:
                continue
            p = orjson.loads(payload)
            out.append(item(_text(key), p["event"], p.get("query"), p.get("tick")))
        return int(gen), int(attempt), (float(first_failure) if first_failure else None), out

    def finish(self, batch_id: str, gen: int, retry_in: float, attempt: int, first_failure, batches_key: str):
        self._finish(keys=[batches_key, *self.batch_keys(batch_id)],
                     args=[batch_id, gen, retry_in, attempt, first_failure])

    def delivered(self, batch_id: str, gen: int, keys: list[str], ttl: int, marks_keys, marks_args,
                  batches_key: str) -> bool:
        batch_key, members = self.batch_keys(batch_id)
        return bool(self._delivered(
            keys=[self.pending_key, members, batches_key, batch_key, *marks_keys],
            args=[ttl, batch_id, gen, len(marks_keys), *marks_args, *keys]))

    def resolve(self, batch_id: str, keys: list[str], stage) -> None:
        """Let events go (with whatever `stage` adds to the same transaction: dead-letter entries)."""
        _, members = self.batch_keys(batch_id)
        pipe = self.r.pipeline(transaction=True)
        stage(pipe)
        if keys:
            pipe.hdel(self.pending_key, *keys)
            pipe.srem(members, *keys)
        pipe.execute()
