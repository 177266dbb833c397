"""Ids already delivered are not sent again, for dedup_horizon (OpenMeter deduplicates by source and id)."""

from typing import Iterable

import redis


class Delivered:
    def __init__(self, r: redis.Redis, collector: str):
        self.r = r
        self.prefix = f"meterworker:{collector}:delivered"

    def _key(self, source: str, event_id: str) -> str:
        return f"{self.prefix}:{source}:{event_id}"

    def undelivered(self, events: list[dict]) -> list[dict]:
        if not events:
            return []
        seen = self.r.mget([self._key(e["source"], e["id"]) for e in events])
        return [e for e, s in zip(events, seen) if s is None]

    def mark(self, events: Iterable[dict], ttl: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        for e in events:
            pipe.set(self._key(e["source"], e["id"]), "1", ex=max(1, int(ttl)))
        pipe.execute()
