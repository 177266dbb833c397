"""What meterworker remembers in Redis about ticks: dispatched, claimed, pending, completed, failing; and the beat lock."""

import json
import time

import redis

_ADVANCE = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS: pending, failure, completed. ARGV: tick. One round trip for a query task's last word.
_COMPLETE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
local cur = redis.call('GET', KEYS[3])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[3], ARGV[1])
end
return 1
"""

_CLAIM = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  return 1
end
return 0
"""


class State:
    def __init__(self, r: redis.Redis, collector: str):
        self.r = r
        self.prefix = f"meterworker:{collector}"
        self._advance = r.register_script(_ADVANCE)
        self._claim = r.register_script(_CLAIM)
        self._complete = r.register_script(_COMPLETE)

    def key(self, *parts: object) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    # dispatch side (beat, backfill)
    def cursor(self, query: str) -> int | None:
        v = self.r.get(self.key("cursor", query))
        return int(v) if v is not None else None

    def advance_cursor(self, query: str, tick: int) -> None:
        self._advance(keys=[self.key("cursor", query)], args=[tick])

    def claim(self, query: str, tick: int, ttl: float) -> bool:
        """True for exactly one caller per (query, tick) within ttl; the tick is then pending."""
        return bool(self._claim(
            keys=[self.key("claim", query, tick), self.key("pending", query)],
            args=[max(1, int(ttl)), tick, time.time()],
        ))

    # the same, for every query of a tick at once: a round trip each instead of one per query
    def cursors(self, queries: list[str]) -> list[int | None]:
        if not queries:
            return []
        return [int(v) if v is not None else None for v in self.r.mget([self.key("cursor", q) for q in queries])]

    def stalled_many(self, queries: list[str], idle: float) -> list[list[int]]:
        pipe = self.r.pipeline(transaction=False)
        for q in queries:
            pipe.zrangebyscore(self.key("pending", q), "-inf", time.time() - idle)
        return [sorted(int(m) for m in members) for members in pipe.execute()]

    def claim_many(self, ticks: list[tuple[str, int]], ttl: float) -> list[bool]:
        """claim() of each (query, tick); each claim is atomic on its own, as claim() is."""
        pipe = self.r.pipeline(transaction=False)
        for query, tick in ticks:
            self._claim(keys=[self.key("claim", query, tick), self.key("pending", query)],
                        args=[max(1, int(ttl)), tick, time.time()], client=pipe)
        return [bool(x) for x in pipe.execute()]

    def advance_cursors(self, ticks: list[tuple[str, int]]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for query, tick in ticks:
            self._advance(keys=[self.key("cursor", query)], args=[tick], client=pipe)
        pipe.execute()

    def mark_pending(self, query: str, tick: int) -> None:
        self.r.zadd(self.key("pending", query), {str(tick): time.time()})

    def stalled(self, query: str, idle: float) -> list[int]:
        """Pending ticks with no sign of life (dispatch or attempt) for `idle` seconds, oldest first."""
        members = self.r.zrangebyscore(self.key("pending", query), "-inf", time.time() - idle)
        return sorted(int(m) for m in members)

    # run side (query workers)
    def complete(self, query: str, tick: int) -> None:
        self._complete(keys=[self.key("pending", query), self.key("failure", query), self.key("completed", query)],
                       args=[tick])

    def record_failure(self, query: str, tick: int, message: str, attempt: int) -> None:
        now = time.time()
        pipe = self.r.pipeline()
        pipe.set(self.key("failure", query),
                 json.dumps({"tick": tick, "error": message, "attempt": attempt, "at": now}))
        pipe.zadd(self.key("pending", query), {str(tick): now}, xx=True)
        pipe.execute()

    def query_status(self, query: str) -> dict:
        completed = self.r.get(self.key("completed", query))
        failure = self.r.get(self.key("failure", query))
        pending = sorted(int(t) for t in self.r.zrange(self.key("pending", query), 0, -1))
        return {
            "last_completed": int(completed) if completed else None,
            "pending": pending,
            "failure": json.loads(failure) if failure else None,
        }


_RENEW = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class BeatLock:
    """One active beat: a Redis key holding the active beat's id, renewed while it lives."""

    def __init__(self, r: redis.Redis, collector: str, holder: str, ttl: float):
        self.r = r
        self.key = f"meterworker:{collector}:beat-lock"
        self.holder_id = holder
        self.ttl_ms = int(ttl * 1000)
        self._renew = r.register_script(_RENEW)
        self._release = r.register_script(_RELEASE)

    def acquire(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.holder_id, self.ttl_ms]))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.holder_id])

    def holder(self) -> str | None:
        v = self.r.get(self.key)
        return v.decode() if isinstance(v, bytes) else v
