"""The dead-letter store: batches that could not be delivered, kept in Redis until replayed or purged."""

import json
import time
import uuid
from typing import Any, Callable

import redis

from meterworker.keys import Keys

BODY_LIMIT = 2048


class DeadLetters:
    def __init__(self, r: redis.Redis, collector: str, scrub: Callable[[str], str] = lambda s: s):
        self.r = r
        keys = Keys(collector)
        self.entries = keys.dlq
        self.index = keys.dlq_index
        self.scrub = scrub

    def build(
        self,
        events: list[dict[str, Any]],
        *,
        reason: str,
        status: int | None,
        body: str,
        attempts: int,
        first_failure: float,
        query: str | None,
        tick: int | None,
    ) -> dict[str, Any]:
        """A new entry; the reason and the response body are scrubbed of secrets, the events kept as they are."""
        return {
            "id": uuid.uuid4().hex[:12],
            "reason": self.scrub(reason),
            "status": status,
            "body": self.scrub(body or "")[:BODY_LIMIT],
            "attempts": attempts,
            "first_failure": first_failure,
            "last_failure": time.time(),
            "query": query,
            "tick": tick,
            "events": events,
        }

    @staticmethod
    def encode(entry: dict[str, Any]) -> tuple[str, str, float]:
        """(id, value, time): the entry's field in the entries hash and its score in the index."""
        return entry["id"], json.dumps(entry), entry["last_failure"]

    def stage(self, pipe, entry: dict[str, Any]) -> None:
        """Adds the entry to `pipe`, so that it is written together with whatever else it holds."""
        entry_id, value, at = self.encode(entry)
        pipe.hset(self.entries, entry_id, value)
        pipe.zadd(self.index, {entry_id: at})

    def add(self, events: list[dict[str, Any]], **details) -> str:
        entry = self.build(events, **details)
        pipe = self.r.pipeline()
        self.stage(pipe, entry)
        pipe.execute()
        return entry["id"]

    def ids(self) -> list[str]:
        return [i.decode() if isinstance(i, bytes) else i for i in self.r.zrange(self.index, 0, -1)]

    def get(self, entry_id: str) -> dict[str, Any] | None:
        raw = self.r.hget(self.entries, entry_id)
        return json.loads(raw) if raw else None

    def all(self) -> list[dict[str, Any]]:
        return [e for e in (self.get(i) for i in self.ids()) if e is not None]

    def remove(self, entry_id: str) -> bool:
        pipe = self.r.pipeline()
        pipe.hdel(self.entries, entry_id)
        pipe.zrem(self.index, entry_id)
        return bool(pipe.execute()[0])

    def count(self) -> int:
        return self.r.zcard(self.index)

    def purge(self) -> int:
        n = self.count()
        self.r.delete(self.entries, self.index)
        return n
