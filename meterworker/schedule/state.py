"""What meterworker remembers in Redis about ticks: dispatched, claimed, pending, completed, failing."""

import json
import time

import redis

from meterworker.keys import Keys
from meterworker.scripts import register


class State:
    def __init__(self, r: redis.Redis, collector: str):
        self.r = r
        self.keys = Keys(collector)
        self._advance = register(r, __package__, "advance_cursor.lua")
        self._claim = register(r, __package__, "claim_tick.lua")
        self._complete = register(r, __package__, "complete.lua")
        self._lease = register(r, __package__, "tick_lease.lua")
        self._release = register(r, __package__, "tick_release.lua")
        self._counter_gap = register(r, __package__, "counter_gap.lua")

    # dispatch side (beat, backfill), for every query of a tick at once: a round trip each, not one per query
    def cursors(self, queries: list[str]) -> list[int | None]:
        if not queries:
            return []
        return [int(v) if v is not None else None for v in self.r.mget([self.keys.cursor(q) for q in queries])]

    def stalled_many(self, queries: list[str], idle: float) -> list[list[int]]:
        """Per query, its pending ticks with no sign of life (dispatch or attempt) for `idle` seconds, oldest first."""
        pipe = self.r.pipeline(transaction=False)
        for q in queries:
            pipe.zrangebyscore(self.keys.pending(q), "-inf", time.time() - idle)
        return [sorted(int(m) for m in members) for members in pipe.execute()]

    def claim_many(self, ticks: list[tuple[str, int]], ttl: float) -> list[bool]:
        """Per (query, tick), True for exactly one caller within ttl, the tick then pending; each claim is atomic."""
        pipe = self.r.pipeline(transaction=False)
        for query, tick in ticks:
            self._claim(keys=[self.keys.claim(query, tick), self.keys.pending(query)],
                        args=[max(1, int(ttl)), tick, time.time()], client=pipe)
        return [bool(x) for x in pipe.execute()]

    def advance_cursors(self, ticks: list[tuple[str, int]]) -> None:
        """Move each query's cursor to its tick, never back."""
        pipe = self.r.pipeline(transaction=False)
        for query, tick in ticks:
            self._advance(keys=[self.keys.cursor(query)], args=[tick], client=pipe)
        pipe.execute()

    def mark_pending(self, query: str, tick: int) -> None:
        self.r.zadd(self.keys.pending(query), {str(tick): time.time()})

    def mark_pending_many(self, query: str, ticks: list[int], per_call: int = 5000) -> None:
        now = time.time()
        for i in range(0, len(ticks), per_call):
            self.r.zadd(self.keys.pending(query), {str(t): now for t in ticks[i:i + per_call]})

    # run side (query workers)
    def complete(self, query: str, tick: int, holder: str | None = None) -> None:
        """The tick is done; given the `holder` of its lease, the lease goes in the same script."""
        self._complete(keys=[self.keys.pending(query), self.keys.failure(query), self.keys.completed(query),
                             self.keys.running(query, tick)], args=[tick, holder or ""])

    DONE = ""

    def lease(self, query: str, tick: int, holder: str, ttl: float) -> str | None:
        """Take or renew `holder`'s lease on the tick for `ttl` seconds, refreshing its sign of life;
        None when `holder` has it, State.DONE when the tick was dispatched by beat and is no longer
        pending (completed), else the id of the task that has it."""
        got = self._lease(keys=[self.keys.running(query, tick), self.keys.pending(query), self.keys.claim(query, tick)],
                          args=[holder, max(1, int(ttl * 1000)), tick, time.time()])
        if got == 1:
            return None
        if got == 0:
            return self.DONE
        return got.decode() if isinstance(got, bytes) else str(got)

    def release(self, query: str, tick: int, holder: str) -> None:
        self._release(keys=[self.keys.running(query, tick)], args=[holder])

    def record_failure(self, query: str, tick: int, message: str, attempt: int, retry_in: float = 0.0) -> None:
        """The failed attempt, shown by `status`; the tick's next sign of life is due when its retry is."""
        now = time.time()
        pipe = self.r.pipeline()
        pipe.set(self.keys.failure(query),
                 json.dumps({"tick": tick, "error": message, "attempt": attempt, "at": now}))
        pipe.zadd(self.keys.pending(query), {str(tick): now + retry_in}, xx=True)
        pipe.execute()

    def record_counter_gap(self, query: str, tick: int, series: int, max_gap: float, examples: list) -> None:
        entry = {"tick": tick, "series": series, "max_gap": max_gap, "examples": examples, "at": time.time()}
        self._counter_gap(keys=[self.keys.counter_gap(query)], args=[tick, json.dumps(entry), 7 * 86400])

    def counter_gap(self, query: str) -> dict | None:
        raw = self.r.get(self.keys.counter_gap(query))
        return json.loads(raw) if raw else None

    def query_status(self, query: str) -> dict:
        completed = self.r.get(self.keys.completed(query))
        failure = self.r.get(self.keys.failure(query))
        pending = sorted(int(t) for t in self.r.zrange(self.keys.pending(query), 0, -1))
        return {
            "last_completed": int(completed) if completed else None,
            "pending": pending,
            "failure": json.loads(failure) if failure else None,
        }
