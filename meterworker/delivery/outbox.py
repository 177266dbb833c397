"""The outbox in Redis: events waiting to be sent, and the batches under way.

An event is *pending* from the moment it is added until it is delivered or dead-lettered. A
pending event is either in the queue, waiting to be taken, or in exactly one batch; adding an
event that is pending, or was delivered within the dedup horizon, does nothing. So no event is
ever in two requests at once, however often a query task runs.

A batch has a lease: the worker that holds it renews it before every request. When the lease
runs out, because the worker died or because the batch waits for its next retry, a send worker's
sweeper hands the batch out again. Each hand-out raises the batch's generation; a task whose
generation is no longer current finds nothing to do, so a redelivered Celery message cannot make
a batch go out twice.

Events leave the outbox only in the same transaction that records them delivered (with their
dedup marks, dedup.py) or dead-lettered. Adding checks the marks in the same transaction, so an event
taken into a batch has not been delivered by anyone: a batch's events are not looked up again. Times are Redis' clock, shared by every host. The scripts that do
this are lua/outbox_*.lua; meterworker.keys documents the keys.
"""

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

import orjson
import redis

from meterworker.delivery.batching import full_batches_formed, overdue, still_fresh
from meterworker.delivery.deadletter import DeadLetters
from meterworker.query.ids import compact_json
from meterworker.delivery.dedup import Delivered, TickMarks, digest
from meterworker.keys import Keys
from meterworker.scripts import register

ADD_CHUNK = 500
MARKS_KEPT = 4  # ticks whose marks read so far an outbox keeps (see add)


def event_key(event: dict[str, Any]) -> str:
    """An event's identity for deduplication: OpenMeter deduplicates by (source, id)."""
    return compact_json([event["source"], event["id"]]).decode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Item:
    """A pending event and where it came from."""

    key: str
    event: dict[str, Any]
    query: str | None
    tick: int | None


@dataclass
class Batch:
    id: str
    gen: int
    attempt: int
    first_failure: float | None
    items: list[Item]
    leased_at: float = 0.0  # time.monotonic() before the lease was last set in Redis


@dataclass
class Added:
    added: int
    skipped: int
    full_batches: int


class LeaseLost(Exception):
    """Another worker holds the batch now; this one must not send it."""


class Outbox:
    def __init__(self, r: redis.Redis, collector: str, delivered: Delivered, dead_letters: DeadLetters,
                 *, count: int, period: float, lease: float):
        self.r = r
        self.delivered = delivered
        self.dead_letters = dead_letters
        self.count, self.period, self.lease = count, period, lease
        self.keys = keys = Keys(collector)
        self.pending_key = keys.outbox_pending
        self.queue_key = keys.outbox_queue
        self.batches_key = keys.outbox_batches
        self.flush_marker = keys.outbox_flush_requested
        self._add = register(r, __package__, "outbox_add.lua")
        self._take = register(r, __package__, "outbox_take.lua")
        self._resume = register(r, __package__, "outbox_resume.lua")
        self._claim = register(r, __package__, "outbox_claim.lua")
        self._renew = register(r, __package__, "outbox_renew.lua")
        self._finish = register(r, __package__, "outbox_finish.lua")
        self._delivered = register(r, __package__, "outbox_delivered.lua")
        self._marks: OrderedDict[tuple[str, str], TickMarks] = OrderedDict()

    def _batch_keys(self, batch_id: str) -> tuple[str, str]:
        return self.keys.outbox_batch(batch_id), self.keys.outbox_batch_members(batch_id)

    # --- the query side -----------------------------------------------------------------

    def add(self, events: list[dict[str, Any]], meta: dict[str, Any]) -> Added:
        """Queue events that are neither pending nor delivered; say how many full batches this made.
        All of `events` belong to meta's query and tick (their delivered marks are looked up there)."""
        added = formed = 0
        query, tick = meta.get("query"), meta.get("tick")
        marks = self._tick_marks(*self.delivered.where(query, tick))
        for i in range(0, len(events), ADD_CHUNK):
            chunk = self.delivered.not_legacy_marked(events[i:i + ADD_CHUNK])
            if marks.used:  # the first call checks all of the tick's marks in the script: one round trip
                marks.refresh()
            marks.used = True
            args: list[Any] = [marks.field, *marks.version()]
            for e in chunk:
                d = digest(e)
                if d not in marks.seen:
                    args += [event_key(e), orjson.dumps({"event": e, "query": query, "tick": tick}), d]
            if len(args) == 5:
                continue
            before, after = self._add(keys=[self.pending_key, self.queue_key, marks.key], args=args)
            added += after - before
            formed += full_batches_formed(before, after, self.count)
        return Added(added, len(events) - added, formed)

    def _tick_marks(self, key: str, field: str) -> TickMarks:
        """The marks read so far of a (query, tick): a tick's slices are added one after the other."""
        marks = self._marks.pop((key, field), None) or TickMarks(self.r, key, field)
        self._marks[(key, field)] = marks
        while len(self._marks) > MARKS_KEPT:
            self._marks.popitem(last=False)
        return marks

    def not_pending(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events the outbox does not hold: no live worker is sending them."""
        if not events:
            return []
        held = self.r.hmget(self.pending_key, [event_key(e) for e in events])
        return [e for e, h in zip(events, held) if h is None]

    # --- the send side ------------------------------------------------------------------

    def take(self) -> Batch | None:
        """A new batch of the oldest events, when a full batch waits or the oldest waited `period`."""
        batch_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        got = self._take(keys=[self.queue_key, self.pending_key, self.batches_key, *self._batch_keys(batch_id)],
                         args=[self.count, self.period, self.lease, batch_id])
        return self._batch(batch_id, got, started)

    def resume(self, batch_id: str, gen: int) -> Batch | None:
        """The batch, when generation `gen` was the one handed out; None when that hand-out is stale."""
        batch, members = self._batch_keys(batch_id)
        started = time.monotonic()
        got = self._resume(keys=[self.batches_key, batch, members, self.pending_key], args=[batch_id, gen, self.lease])
        return self._batch(batch_id, got, started)

    def _batch(self, batch_id: str, got, leased_at: float) -> Batch | None:
        if not got:
            return None
        gen, attempt, first_failure, keys, payloads = got
        items = []
        for key, payload in zip(keys, payloads):
            if payload is None:
                continue
            p = orjson.loads(payload)
            items.append(Item(_text(key), p["event"], p.get("query"), p.get("tick")))
        first = float(first_failure) if first_failure else None
        return Batch(batch_id, int(gen), int(attempt), first, items, leased_at)

    def renew(self, batch: Batch) -> None:
        """Extend the lease before a request; raises LeaseLost when another worker took the batch over.
        A lease set moments ago (batching.still_fresh) still outlasts any request and is left as it is: no
        other worker can have taken the batch over since."""
        if time.monotonic() - batch.leased_at < still_fresh(self.lease):
            return
        batch_key, _ = self._batch_keys(batch.id)
        started = time.monotonic()
        if not self._renew(keys=[self.batches_key, batch_key], args=[batch.id, batch.gen, self.lease]):
            raise LeaseLost(batch.id)
        batch.leased_at = started

    def _resolve(self, batch: Batch, items: list[Item], stage) -> None:
        _, members = self._batch_keys(batch.id)
        keys = [i.key for i in items]
        pipe = self.r.pipeline(transaction=True)
        stage(pipe)
        if keys:
            pipe.hdel(self.pending_key, *keys)
            pipe.srem(members, *keys)
        pipe.execute()

    def delivered_now(self, batch: Batch, items: list[Item], ttl: float) -> bool:
        """The sink accepted these events: mark them delivered and let them go, in one transaction.
        True when that was all that was left of the batch: it is then done, as finish() would do."""
        if not items:
            return False
        batch_key, members = self._batch_keys(batch.id)
        marks_keys, marks_args = self.delivered.groups(items)
        return bool(self._delivered(
            keys=[self.pending_key, members, self.batches_key, batch_key, *marks_keys],
            args=[self.delivered.ttl_seconds(ttl), batch.id, batch.gen, len(marks_keys), *marks_args,
                  *(i.key for i in items)]))

    def already_delivered(self, batch: Batch, items: list[Item]) -> None:
        self._resolve(batch, items, lambda pipe: None)

    def dead_lettered(self, batch: Batch, items: list[Item], entries: list[dict[str, Any]]) -> None:
        """Write the dead-letter entries and let their events go, in one transaction."""

        def stage(pipe):
            for entry in entries:
                self.dead_letters.stage(pipe, entry)

        self._resolve(batch, items, stage)

    def finish(self, batch: Batch, retry_in: float | None = None, first_failure: float | None = None) -> None:
        """Done with this attempt: the batch goes when nothing of it is pending, else it is due again in
        `retry_in` seconds (at once when None: some events were left unsettled)."""
        keys = [self.batches_key, *self._batch_keys(batch.id)]
        attempt = batch.attempt + 1 if retry_in is not None else batch.attempt
        first_failure = first_failure or batch.first_failure
        self._finish(keys=keys, args=[batch.id, batch.gen, retry_in or 0, attempt, first_failure or ""])

    # --- the sweeper --------------------------------------------------------------------

    def claim_due(self, limit: int = 100) -> Iterator[tuple[str, int]]:
        """(batch id, generation) of each batch whose lease ran out, now leased to whoever sends it on."""
        now = self._now()
        for raw in self.r.zrangebyscore(self.batches_key, "-inf", now, start=0, num=limit):
            batch_id = _text(raw)
            gen = self._claim(keys=[self.batches_key, self._batch_keys(batch_id)[0]], args=[batch_id, self.lease])
            if gen:
                yield batch_id, int(gen)

    def overdue(self) -> bool:
        """Whether the oldest waiting event has waited `period` (a flush was missed, or the workers lag)."""
        size, oldest_age = self.queue_status()
        return overdue(size, oldest_age, self.period)

    def ready(self) -> bool:
        """Whether take() would return a batch now: a full batch waits, or the oldest event waited `period`."""
        size, oldest_age = self.queue_status()
        return size >= self.count or overdue(size, oldest_age, self.period)

    def request_flush_once(self) -> bool:
        """True for one caller per `period`: the sweepers of all send workers ask for one flush between them."""
        return bool(self.r.set(self.flush_marker, "1", nx=True, px=max(1, int(self.period * 1000))))

    # --- looking in ---------------------------------------------------------------------

    def _now(self) -> float:
        seconds, micros = self.r.time()
        return seconds + micros / 1e6

    def queue_status(self) -> tuple[int, float]:
        """(events waiting to be taken, seconds the oldest of them has waited)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.time()
        pipe.zcard(self.queue_key)
        pipe.zrange(self.queue_key, 0, 0, withscores=True)
        (seconds, micros), size, oldest = pipe.execute()
        age = seconds + micros / 1e6 - oldest[0][1] if oldest else 0.0
        return size, age

    def counts(self) -> dict[str, int]:
        """Pending events, of which queued, and batches under way or waiting for a retry."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hlen(self.pending_key)
        pipe.zcard(self.queue_key)
        pipe.zcard(self.batches_key)
        pending, queued, batches = pipe.execute()
        return {"pending": pending, "queued": queued, "batches": batches}
