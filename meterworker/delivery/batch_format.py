"""How a batch's events are written in the outbox and read back, without Redis.

The query side writes each event's JSON once; a batch keeps it as it is (the events' JSON joined by
","), with the events' digests in the same order and a line `<count>:[query, tick]` per run of events of
one (query, tick). A send worker posts that JSON as it is, and parses it only when it needs the events
themselves (a refused batch split in halves, dead-letter entries, a batch handed out again after some of
its events were settled).
"""

import struct
from typing import Any

import orjson

from meterworker.delivery.dedup import digest
from meterworker.delivery.ticklog import split


class Item:
    """A pending event and where it came from (`key`: its entry in the outbox of the release before).
    An item read from a batch has its digest, and its event only once asked for (see BatchEvents)."""

    __slots__ = ("key", "query", "tick", "digest", "_event", "_batch")

    def __init__(self, key: str, event: dict[str, Any] | None, query: str | None, tick: int | None,
                 digest: bytes | None = None, batch: "BatchEvents | None" = None):
        self.key, self.query, self.tick, self.digest = key, query, tick, digest
        self._event, self._batch = event, batch

    @property
    def event(self) -> dict[str, Any]:
        if self._event is None:
            self._batch.parse()
        return self._event

    def event_digest(self) -> bytes:
        return self.digest if self.digest is not None else digest(self.event)


class BatchEvents:
    """The JSON of a batch's events, parsed into its items' events the first time one of them is asked for."""

    def __init__(self, blob: bytes, items: list[Item]):
        self.blob, self.items = blob, items

    def parse(self) -> None:
        events = orjson.loads(b"[" + self.blob + b"]")
        if len(events) != len(self.items):
            raise ValueError(f"a batch's JSON holds {len(events)} events where its digests count {len(self.items)}")
        for item, event in zip(self.items, events):
            item._event = event

    def body(self) -> bytes:
        """The JSON array of all the batch's events, as a request's body."""
        return b"[" + self.blob + b"]"


def segment(query: str | None, tick: int | None) -> bytes:
    return orjson.dumps([query, tick])


def batch_items(blob: bytes, digests: bytes | None, segments: bytes | None,
                settled: bytes = b"") -> tuple[list[Item], BatchEvents | None]:
    """The items of a batch as the outbox holds it, less those whose digests are in `settled`; with the
    batch's JSON to post as it is (None for a batch written before batches kept their digests)."""
    if digests is None or segments is None:
        return _segmented_items(blob, settled), None
    items: list[Item] = []
    events = BatchEvents(blob, items)
    pos = 0
    for line in segments.split(b"\n"):
        if not line:
            continue
        count, _, where = line.partition(b":")
        query, tick = orjson.loads(where)
        for _ in range(int(count)):
            items.append(Item("", None, query, tick, digests[pos:pos + 8], events))
            pos += 8
    if pos != len(digests):
        raise ValueError(f"a batch's segments count {pos // 8} events where its digests count {len(digests) // 8}")
    if settled:
        done = set(split(settled))
        return [i for i in items if i.digest not in done], events
    return items, events


def _segmented_items(blob: bytes, settled: bytes) -> list[Item]:
    """The items of a batch written by the code before this layout (unreleased): JSON segments
    {"query", "tick", "events"} joined by ",", without digests."""
    done = set(split(settled))
    items = []
    for seg in orjson.loads(b"[" + blob + b"]"):
        for e in seg["events"]:
            d = digest(e)
            if d not in done:
                items.append(Item("", e, seg["query"], seg["tick"], d))
    return items


def event_jsons(events: list[dict[str, Any]]) -> tuple[bytes, list[int]]:
    """The events' JSON joined by "," (each as orjson.dumps gives it) and where each one starts (from 0).

    Encoded in one call: a call per event costs a few kilobytes of heap each, and the page faults that come
    with them. The events are told apart by the text between two of them, `},{"<first key>":`, which is
    outside any string (a string's quotes are escaped); when every event begins with the same key, each
    boundary is one such text, and exactly as many as there are events prove that no other text matched."""
    if not events:
        return b"", []
    first = next(iter(events[0]), None)
    if isinstance(first, str) and all(next(iter(e), None) == first for e in events):
        whole = orjson.dumps(events)
        sep = b"},{" + orjson.dumps(first) + b":"
        starts, at = [0], whole.find(sep, 1)
        while at != -1:
            starts.append(at + 1)  # the "{" after "},", less the "[" dropped below
            at = whole.find(sep, at + 3)
        if len(starts) == len(events):
            return whole[1:-1], starts
    jsons = [orjson.dumps(e) for e in events]
    starts, at = [], 0
    for j in jsons:
        starts.append(at)
        at += len(j) + 1
    return b",".join(jsons), starts


def packed(events: dict[bytes, dict]) -> list[bytes]:
    """The add script's last arguments: the events' digests, where each event's JSON starts (4 bytes each,
    big-endian, from 1), their JSON joined by ","."""
    blob, starts = event_jsons(list(events.values()))
    return [b"".join(events), struct.pack(f">{len(starts)}I", *(s + 1 for s in starts)), blob]
