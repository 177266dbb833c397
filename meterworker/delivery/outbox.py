"""The outbox in Redis: events waiting to be sent, and the batches under way.

A query task's events go into batches of up to batching.count events, each batch a few fields of one
hash (its events' JSON as the query task wrote it, posted as it is: batch_format.py): they first fill
the newest batch still open, so that small ticks of many queries share requests, then make new ones.
A batch waits in the ready queue until it is full or its first event has waited `period`, and is then
taken by a send worker. What a tick has in the outbox is logged per (query, tick) (ticklog.py): adding
an event that is pending, or was delivered within the dedup horizon, does nothing. So no event is ever
in two requests at once, however often a query task runs.

A batch has a lease: the worker that holds it renews it before every request. When the lease runs
out, because the worker died or because the batch waits for its next retry, a send worker's sweeper
hands the batch out again. Each hand-out raises the batch's generation; a task whose generation is
no longer current finds nothing to do, so a redelivered Celery message cannot make a batch go out
twice.

Events are settled (recorded delivered with their dedup marks, dedup.py, or dead-lettered) in one
script per outcome, which records the batch's settled events and counts the tick's log down, so a
batch handed out again sends only what is left; the script that settles a batch's last events also
takes the next ready batch for the same worker. Adding checks the marks in the same script, so an
event taken into a batch has not been delivered by anyone: a batch's events are not looked up
again. Times are Redis' clock, shared by every host. The scripts are lua/outbox_*.lua;
meterworker.keys documents the keys. Batches and events of the release before (one entry per
event) are delivered first (legacy_outbox.py).
"""

import os
import time
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import redis

from meterworker.delivery.batch_format import BatchEvents, Item, batch_items, packed, segment
from meterworker.delivery.batching import overdue, still_fresh
from meterworker.delivery.deadletter import DeadLetters
from meterworker.delivery.dedup import Delivered, TickMarks, digest
from meterworker.delivery.legacy_outbox import LegacyOutbox
from meterworker.delivery.ticklog import TickLog
from meterworker.keys import Keys
from meterworker.query.ids import compact_json
from meterworker.scripts import register

ADD_CHUNK = 5000  # events per add script call
TICKS_KEPT = 4  # ticks whose marks and log read so far an outbox keeps (see add)
_ANY = object()
NONE_READY = object()  # a batch's successor when no batch was ready as it was done


def event_key(event: dict[str, Any]) -> str:
    """An event's identity for deduplication: OpenMeter deduplicates by (source, id)."""
    return compact_json([event["source"], event["id"]]).decode()


def batch_ids(n: int) -> list[str]:
    """n random batch ids of 12 hex digits, from one read of the system's randomness."""
    raw = os.urandom(6 * n).hex()
    return [raw[i:i + 12] for i in range(0, 12 * n, 12)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Batch:
    id: str
    gen: int
    attempt: int
    first_failure: float | None
    items: list[Item]
    leased_at: float = 0.0  # time.monotonic() before the lease was last set in Redis
    legacy: bool = field(default=False)  # a batch of the release before's outbox
    events: BatchEvents | None = None  # its events' JSON, when nothing of it was settled before
    successor: "Batch | object | None" = None  # the batch taken when this one was done (delivered_now)

    def body(self, items: Sequence[Item]) -> bytes | None:
        """The request body for `items` as the outbox holds it, when they are all of this batch."""
        if self.events is None or len(items) != len(self.items) or not items:
            return None
        if items[0] is not self.items[0] or items[-1] is not self.items[-1]:
            return None
        return self.events.body()


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
        self.data_key = keys.outbox_batch_data
        self.ready_key = keys.outbox_ready
        self.open_key = keys.outbox_open
        self.stats_key = keys.outbox_stats
        self.batches_key = keys.outbox_batches
        self.flush_marker = keys.outbox_flush_requested
        self.legacy = LegacyOutbox(r, keys)
        self._add = register(r, __package__, "outbox_add.lua")
        self._take = register(r, __package__, "outbox_take.lua")
        self._resume = register(r, __package__, "outbox_resume.lua")
        self._claim = register(r, __package__, "outbox_claim.lua")
        self._renew = register(r, __package__, "outbox_renew.lua")
        self._finish = register(r, __package__, "outbox_finish.lua")
        self._settle = register(r, __package__, "outbox_settle.lua")
        self._ticks: OrderedDict[tuple[str, str], tuple[TickMarks, TickLog]] = OrderedDict()

    def log_key(self, query: str | None, tick: int | None) -> str:
        return self.keys.outbox_tick(query or "", self.delivered.where(query, tick)[1])

    # --- the query side -----------------------------------------------------------------

    def add(self, events: list[dict[str, Any]], meta: dict[str, Any]) -> Added:
        """Queue events that are neither pending nor delivered; say how many full batches this made.
        All of `events` belong to meta's query and tick (their marks and log are looked up there).
        meta's "run", when given, names one evaluation of the tick: its adds hold different events."""
        added = formed = 0
        query, tick, run = meta.get("query"), meta.get("tick"), meta.get("run")
        marks, log = self._tick(query, tick)
        log.start(run)
        seg = segment(query, tick)
        for i in range(0, len(events), ADD_CHUNK):
            chunk = self.delivered.not_legacy_marked(events[i:i + ADD_CHUNK])
            chunk = self.legacy.not_pending(chunk, event_key)
            if marks.used:  # the first call checks all of the tick's marks in the script: one round trip
                marks.refresh()
            marks.used = True
            while True:
                fresh: dict[bytes, dict] = {}
                held = 0  # left out as pending by what this outbox read of the log: right if the log is unchanged
                for e in chunk:
                    d = digest(e)
                    if d in marks.seen or d in fresh:
                        continue
                    if log.pending(d):
                        held += 1
                    else:
                        fresh[d] = e
                if not fresh:
                    if held and not log.current():
                        log.refresh()
                        continue
                    break
                ids = batch_ids(len(fresh) // self.count + 2)
                args: list[Any] = [self.count, log.id, log.h, log.x, marks.field, *marks.version(), seg,
                                   len(ids), *ids]
                args += packed(fresh)
                got = self._add(keys=[log.key, marks.key, self.data_key, self.ready_key, self.open_key,
                                      self.stats_key], args=args)
                if not got[0]:  # someone else added to or dead-lettered from this tick since: read that
                    log.refresh()
                    continue
                _, n, full, log_id, h, left = got
                left = set(left)
                log.added([d for j, d in enumerate(fresh, 1) if j not in left], log_id, h, run)
                added += n
                formed += full
                break
        return Added(added, len(events) - added, formed)

    def _tick(self, query: str | None, tick: int | None) -> tuple[TickMarks, TickLog]:
        """The marks and log read so far of a (query, tick): a tick's slices are added one after the other."""
        where = self.delivered.where(query, tick)
        got = self._ticks.pop(where, None) or (TickMarks(self.r, *where), TickLog(self.r, self.log_key(query, tick)))
        self._ticks[where] = got
        while len(self._ticks) > TICKS_KEPT:
            self._ticks.popitem(last=False)
        return got

    def not_pending(self, events: list[dict[str, Any]], query=_ANY, tick=_ANY) -> list[dict[str, Any]]:
        """The events the outbox does not hold: no live worker is sending them. With a query and tick, only
        that tick's log is read; without, every tick's."""
        if not events:
            return []
        events = self.legacy.not_pending(events, event_key)
        if query is _ANY or tick is _ANY:
            logs = [TickLog(self.r, _text(k)) for k in self.r.scan_iter(match=self.keys.outbox_tick("*", "*")
                                                                          .replace("*:*", "*"), count=1000)]
        else:
            logs = [TickLog(self.r, self.log_key(query, tick))]
        for log in logs:
            log.refresh()
        return [e for e in events if not any(log.pending(digest(e)) for log in logs)]

    # --- the send side ------------------------------------------------------------------

    def take(self) -> Batch | None:
        """The oldest ready batch, when it is full or its first event waited `period` (events of the release
        before's outbox first)."""
        started = time.monotonic()
        got = self._take(keys=[self.legacy.queue_key, self.ready_key, self.open_key, self.data_key,
                               self.batches_key, self.stats_key],
                         args=[self.count, self.period, self.lease])
        if got == -1:
            batch_id, got = self.legacy.take(self.count, self.period, self.lease, self.batches_key)
            return self._legacy_batch(batch_id, got, started)
        return self._taken(got, started)

    @staticmethod
    def _taken(got, leased_at: float) -> Batch | None:
        """The batch of a reply of take.lua (None when none was ready)."""
        if not got:
            return None
        batch_id, blob, digests, segments = got
        items, events = batch_items(blob, digests, segments)
        return Batch(_text(batch_id), 1, 1, None, items, leased_at, events=events)

    def resume(self, batch_id: str, gen: int) -> Batch | None:
        """The batch, when generation `gen` was the one handed out; None when that hand-out is stale."""
        started = time.monotonic()
        if not self.r.hexists(self.data_key, f"{batch_id}:gen"):
            return self._legacy_batch(batch_id, self.legacy.resume(batch_id, gen, self.lease, self.batches_key),
                                      started)
        got = self._resume(keys=[self.batches_key, self.data_key], args=[batch_id, gen, self.lease])
        if not got:
            return None
        gen, attempt, first_failure, blob, settled, digests, segments = got
        first = float(first_failure) if first_failure else None
        items, events = batch_items(blob, digests, segments, settled)
        return Batch(batch_id, int(gen), int(attempt or 1), first, items, started,
                     events=None if settled else events)

    def _legacy_batch(self, batch_id: str, got, leased_at: float) -> Batch | None:
        if not got:
            return None
        gen, attempt, first_failure, items = LegacyOutbox.items(got, Item)
        return Batch(batch_id, gen, attempt, first_failure, items, leased_at, legacy=True)

    def renew(self, batch: Batch) -> None:
        """Extend the lease before a request; raises LeaseLost when another worker took the batch over.
        A lease set moments ago (batching.still_fresh) still outlasts any request and is left as it is: no
        other worker can have taken the batch over since."""
        if time.monotonic() - batch.leased_at < still_fresh(self.lease):
            return
        started = time.monotonic()
        if not self._renew(keys=[self.batches_key, self.keys.outbox_batch(batch.id), self.data_key],
                           args=[batch.id, batch.gen, self.lease]):
            raise LeaseLost(batch.id)
        batch.leased_at = started

    def _groups(self, items: Sequence[Item]) -> tuple[list[str], list]:
        """KEYS (marks hash, tick log) and ARGV (marks field, packed digests) of each (query, tick) of `items`."""
        by = defaultdict(list)
        for i in items:
            by[(i.query, i.tick)].append(i.event_digest())
        keys, args = [], []
        for (query, tick), digests in by.items():
            marks_key, marks_field = self.delivered.where(query, tick)
            keys += [marks_key, self.log_key(query, tick)]
            args += [marks_field, b"".join(digests)]
        return keys, args

    def _settled(self, mode: str, batch: Batch, items: Sequence[Item], ttl: float = 1,
                 entries: Sequence[dict[str, Any]] = (), take_next: bool = False) -> bool:
        keys, args = self._groups(items)
        for entry in entries:
            args += [*self.dead_letters.encode(entry)]
        started = time.monotonic()
        got = self._settle(
            keys=[self.batches_key, self.data_key, self.stats_key, self.dead_letters.entries,
                  self.dead_letters.index, self.legacy.queue_key, self.ready_key, self.open_key, *keys],
            args=[mode, self.delivered.ttl_seconds(ttl), batch.id, batch.gen, len(keys) // 2,
                  self.count if take_next else 0, self.period, self.lease, *args])
        if take_next and got[0]:
            nxt = got[1] if len(got) > 1 else None
            batch.successor = NONE_READY if nxt is None else None if nxt == -1 else self._taken(nxt, started)
        return bool(got[0])

    def delivered_now(self, batch: Batch, items: list[Item], ttl: float, take_next: bool = False) -> bool:
        """The sink accepted these events: mark them delivered and let them go, in one script.
        True when that was all that was left of the batch: it is then done, as finish() would do.
        With `take_next`, the same script then takes the next ready batch for this worker: it is the batch's
        `successor` (NONE_READY when none was ready; None when events of the release before wait)."""
        if not items:
            return False
        if batch.legacy:
            marks_keys, marks_args = self.delivered.groups(items)
            return self.legacy.delivered(batch.id, batch.gen, [i.key for i in items], self.delivered.ttl_seconds(ttl),
                                         marks_keys, marks_args, self.batches_key)
        return self._settled("delivered", batch, items, ttl, take_next=take_next)

    def already_delivered(self, batch: Batch, items: list[Item]) -> None:
        if batch.legacy:
            self.legacy.resolve(batch.id, [i.key for i in items], lambda pipe: None)
        elif items:
            self._settled("gone", batch, items)

    def dead_lettered(self, batch: Batch, items: list[Item], entries: list[dict[str, Any]]) -> None:
        """Write the dead-letter entries and let their events go, in one transaction."""
        if not batch.legacy:
            self._settled("dead", batch, items, entries=entries)
            return

        def stage(pipe):
            for entry in entries:
                self.dead_letters.stage(pipe, entry)

        self.legacy.resolve(batch.id, [i.key for i in items], stage)

    def finish(self, batch: Batch, retry_in: float | None = None, first_failure: float | None = None) -> None:
        """Done with this attempt: the batch goes when nothing of it is pending, else it is due again in
        `retry_in` seconds (at once when None: some events were left unsettled)."""
        attempt = batch.attempt + 1 if retry_in is not None else batch.attempt
        first_failure = first_failure or batch.first_failure
        if batch.legacy:
            self.legacy.finish(batch.id, batch.gen, retry_in or 0, attempt, first_failure or "", self.batches_key)
            return
        self._finish(keys=[self.batches_key, self.data_key],
                     args=[batch.id, batch.gen, retry_in or 0, attempt, first_failure or ""])

    # --- the sweeper --------------------------------------------------------------------

    def claim_due(self, limit: int = 100) -> Iterator[tuple[str, int]]:
        """(batch id, generation) of each batch whose lease ran out, now leased to whoever sends it on."""
        now = self._now()
        for raw in self.r.zrangebyscore(self.batches_key, "-inf", now, start=0, num=limit):
            batch_id = _text(raw)
            gen = self._claim(keys=[self.batches_key, self.keys.outbox_batch(batch_id), self.data_key],
                              args=[batch_id, self.lease])
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
        pipe.hget(self.stats_key, "queued")
        pipe.zrange(self.ready_key, 0, 0, withscores=True)
        pipe.zcard(self.legacy.queue_key)
        pipe.zrange(self.legacy.queue_key, 0, 0, withscores=True)
        (seconds, micros), queued, oldest, legacy_size, legacy_oldest = pipe.execute()
        since = [o[0][1] for o in (oldest, legacy_oldest) if o]
        age = seconds + micros / 1e6 - min(since) if since else 0.0
        return int(queued or 0) + legacy_size, age

    def counts(self) -> dict[str, int]:
        """Pending events, of which queued, and batches under way or waiting for a retry."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.stats_key, ["pending", "queued"])
        pipe.hlen(self.legacy.pending_key)
        pipe.zcard(self.legacy.queue_key)
        pipe.zcard(self.batches_key)
        (pending, queued), legacy_pending, legacy_queued, batches = pipe.execute()
        return {"pending": int(pending or 0) + legacy_pending, "queued": int(queued or 0) + legacy_queued,
                "batches": batches}
