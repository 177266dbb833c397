"""Ids already delivered are not sent again, for dedup_horizon (OpenMeter deduplicates by source and id).

A delivered event leaves an 8-byte mark: the first 8 bytes of blake2b(source NUL id), packed with the
other marks of its query and tick in one field of a hash per query and day (lua/marks.lua), which
expires dedup_horizon after its last write. A (query, tick) is checked against its own marks only, so
membership is exact up to a collision of two 64-bit digests among one tick's events: for a tick of
n series that chance is about n^2 / 2^65 (1e-8 for a million series), and no probabilistic filter
is involved.

Marks of the release before, one key `delivered:{source}:{id}` per event, are still honoured while
they live (legacy_possible()).
"""

import hashlib
import time
from collections import defaultdict
from typing import Iterable, Sequence

import redis

from meterworker.keys import Keys
from meterworker.scripts import register

DAY = 86400
LEGACY_RECHECK = 600.0  # seconds between two looks for marks of the release before


def digest(event: dict) -> bytes:
    return hashlib.blake2b(f"{event['source']}\0{event['id']}".encode(), digest_size=8).digest()


GROUP_SPAN = 32  # ticks whose small marks share one field (lua/marks.lua)


class TickMarks:
    """What a reader has seen of one (query, tick)'s marks, read a little more at a time: marks are only ever
    appended, so each refresh() reads what came after (the field shared with other ticks and the tick's
    first field, at most 4 KiB each, and the parts written since). The outbox's add script checks the marks
    written after the last refresh, so the two together are exact and the script's work stays small while
    the tick's events are being delivered."""

    def __init__(self, r: redis.Redis, key: str, field: str):
        self.r, self.key, self.field = r, key, field
        self.tick = int(field) if field.isdigit() and int(field) < 2**32 else None
        self.group = f"g{self.tick // GROUP_SPAN}" if self.tick is not None else None
        self._reset(b"")
        self.used = False  # whether an add went by this (query, tick) yet; see Outbox.add

    def _reset(self, hash_id: bytes) -> None:
        self.id = hash_id
        self.glen = self.hlen = self.parts = 0
        self.seen: set[bytes] = set()

    def refresh(self) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(self.key, "id")
        pipe.hget(self.key, self.group or "-g")
        pipe.hget(self.key, self.field)
        pipe.hget(self.key, f"{self.field}#")
        hash_id, group, head, parts = pipe.execute()
        hash_id, group, head = _raw(hash_id) or b"", _raw(group), _raw(head)
        if hash_id != self.id:  # made again after it expired (or first seen): read it whole
            self._reset(hash_id)
        if self.group and group and len(group) > self.glen:
            pos = self.glen
            while pos + 6 <= len(group):
                t, n = int.from_bytes(group[pos:pos + 4], "big"), int.from_bytes(group[pos + 4:pos + 6], "big")
                if t == self.tick:
                    self.seen.update(group[i:i + 8] for i in range(pos + 6, pos + 6 + 8 * n, 8))
                pos += 6 + 8 * n
            self.glen = len(group)
        if head:
            self.seen.update(head[i:i + 8] for i in range(self.hlen, len(head), 8))
            self.hlen = len(head)
        parts = int(parts or 0)
        if parts > self.parts:
            got = self.r.hmget(self.key, [f"{self.field}:{i}" for i in range(self.parts + 1, parts + 1)])
            for blob in got:
                blob = _raw(blob) or b""
                self.seen.update(blob[i:i + 8] for i in range(0, len(blob), 8))
            self.parts = parts

    def version(self) -> list:
        return [self.id, self.glen, self.hlen, self.parts]


def _raw(value) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("latin-1", errors="surrogateescape")


def pack(events: Iterable[dict]) -> bytes:
    return b"".join(digest(e) for e in events)


class Delivered:
    def __init__(self, r: redis.Redis, collector: str):
        self.r = r
        self.keys = Keys(collector)
        self._mark = register(r, __package__, "marks_add.lua")
        self._check = register(r, __package__, "marks_check.lua")
        self._legacy: tuple[float, bool] | None = None

    def where(self, query: str | None, tick: int | None) -> tuple[str, str]:
        """(hash key, field) of the marks of a query's tick."""
        if tick is None:
            return self.keys.marks(query or "", "-"), "-"
        return self.keys.marks(query or "", str(int(tick) // DAY)), str(int(tick))

    def legacy_key(self, event: dict) -> str:
        return self.keys.delivered(event["source"], event["id"])

    def legacy_possible(self) -> bool:
        """Whether marks of the release before may still live (looked for every LEGACY_RECHECK seconds)."""
        now = time.monotonic()
        if self._legacy is None or now - self._legacy[0] > LEGACY_RECHECK:
            found = False
            for _ in self.r.scan_iter(match=self.keys.delivered("*", "*").replace("*:*", "*"), count=1000):
                found = True
                break
            self._legacy = (now, found)
        return self._legacy[1]

    def not_legacy_marked(self, events: list[dict]) -> list[dict]:
        """The events no mark of the release before names."""
        if not events or not self.legacy_possible():
            return events
        seen = self.r.mget([self.legacy_key(e) for e in events])
        return [e for e, s in zip(events, seen) if s is None]

    def undelivered(self, events: list[dict], query: str | None = None, tick: int | None = None) -> list[dict]:
        """The events of (query, tick) not marked delivered."""
        events = self.not_legacy_marked(events)
        if not events:
            return []
        key, field = self.where(query, tick)
        marked = self._check(keys=[key], args=[field, *(digest(e) for e in events)])
        return [e for e, m in zip(events, marked) if not m]

    @staticmethod
    def ttl_seconds(ttl: float) -> int:
        return max(1, int(ttl))

    def groups(self, items: Sequence) -> tuple[list[str], list]:
        """KEYS and ARGV (field, packed digests of each group) marking `items` (each with event, query, tick)."""
        by = defaultdict(list)
        for i in items:
            by[self.where(i.query, i.tick)].append(i.event)
        keys, args = [], []
        for (key, field), events in by.items():
            keys.append(key)
            args += [field, pack(events)]
        return keys, args

    def mark(self, events: Iterable[dict], ttl: float, query: str | None = None, tick: int | None = None) -> None:
        from types import SimpleNamespace

        items = [SimpleNamespace(event=e, query=query, tick=tick) for e in events]
        if not items:
            return
        keys, args = self.groups(items)
        self._mark(keys=keys, args=[self.ttl_seconds(ttl), *args])
