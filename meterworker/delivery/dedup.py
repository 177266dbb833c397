"""Ids already delivered are not sent again, for dedup_horizon (OpenMeter deduplicates by source and id)."""

from typing import Iterable

import redis

from meterworker.keys import Keys


class Delivered:
    def __init__(self, r: redis.Redis, collector: str):
        self.r = r
        self.keys = Keys(collector)

    def key(self, event: dict) -> str:
        return self.keys.delivered(event["source"], event["id"])

    def undelivered(self, events: list[dict]) -> list[dict]:
        if not events:
            return []
        seen = self.r.mget([self.key(e) for e in events])
        return [e for e, s in zip(events, seen) if s is None]

    @staticmethod
    def ttl_seconds(ttl: float) -> int:
        return max(1, int(ttl))

    def stage_mark(self, pipe, events: Iterable[dict], ttl: float) -> None:
        """Adds the marks to `pipe`, so that they are written together with whatever else it holds."""
        for e in events:
            pipe.set(self.key(e), "1", ex=self.ttl_seconds(ttl))

    def mark(self, events: Iterable[dict], ttl: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        self.stage_mark(pipe, events, ttl)
        pipe.execute()
