"""Celery beat scheduler: dispatches one task per query per tick, exactly once, whichever beat is active."""

import contextlib
import logging
import os
import socket
import uuid
from datetime import datetime, timezone

import redis
from celery.beat import Scheduler
from kombu.exceptions import OperationalError

from meterworker import runtime
from meterworker.keys import QUERY_QUEUE, QUERY_TASK, QUERY_TICKS_TASK
from meterworker.schedule.due import due_ticks, from_epoch, to_epoch
from meterworker.schedule.backfill import window_lengths
from meterworker.schedule.beat_lock import BeatLock
from meterworker.schedule.stretches import MIN_STRETCH, Stretch, pieces, stretches, task_parts

log = logging.getLogger(__name__)


def dispatch_due(rt, send, now: datetime) -> datetime:
    """Dispatch every due tick of every query; return when the next tick is due.

    Read the cursors, redispatch stalled ticks, claim every due tick, send the claimed ones, advance
    the cursors, each step one round trip to Redis for all queries. A beat that dies between two
    steps leaves claimed ticks not sent pending (they go again after stall_timeout), or ticks sent
    with the cursor not advanced (due again, and their claim refuses them).
    """
    cfg = rt.config.meterworker
    queries = rt.config.queries
    names = [q.name for q in queries]
    next_due = None
    plan: list[tuple[str, int]] = []
    for query, cursor, stalled in zip(queries, rt.state.cursors(names), rt.state.stalled_many(names, cfg.stall_timeout)):
        schedule = rt.schedule_for(query)
        due = due_ticks(schedule, from_epoch(cursor) if cursor is not None else None, now, cfg.catchup_horizon)
        if due.skipped:
            log.warning("query %s: %d ticks from %s on are older than the catch-up horizon and were not dispatched; "
                        "use `meterworker backfill` for them", query.name, due.skipped, due.oldest_skipped.isoformat())
        if len(due.ticks) > 1:
            log.warning("query %s: catching up %d ticks from %s", query.name, len(due.ticks), due.ticks[0].isoformat())
        redispatch(rt, send, query.name, stalled)
        plan += [(query.name, to_epoch(tick)) for tick in due.ticks]
        candidate = schedule.next_after(now)
        next_due = candidate if next_due is None else min(next_due, candidate)
    claimed = rt.state.claim_many(plan, cfg.catchup_horizon + 86400)
    mine: dict[str, list[int]] = {}
    for (query, tick), ok in zip(plan, claimed):
        if ok:
            mine.setdefault(query, []).append(tick)
    for query, ticks in mine.items():
        _send_ticks(rt, send, rt.query(query), ticks)
    rt.state.advance_cursors(plan)
    return next_due


def _send_ticks(rt, send, query, ticks: list[int]) -> None:
    """A task per tick; a catch-up's evenly spaced stretches of ticks, a task of range queries each."""
    if len(ticks) >= MIN_STRETCH and not query.is_counter:
        units = list(pieces(stretches(window_lengths(rt.schedule_for(query), iter(ticks)))))
    else:
        units = [Stretch(t, 0, 1) for t in ticks]
    for unit in units:
        if unit.count == 1:
            send_query_task(send, query.name, unit.first)
            log.info("dispatched query %s tick %s", query.name, from_epoch(unit.first).isoformat())
            continue
        for part in task_parts(unit):
            send_ticks_task(send, query.name, part.first, part.step, part.count)
        for tick in unit.ticks():
            log.info("dispatched query %s tick %s (with range queries)", query.name, from_epoch(tick).isoformat())


# Results are ignored (celeryconfig), but send_task by name does not know it: without ignore_result=True
# it subscribes to each task's result channel in Redis, and unsubscribes when the AsyncResult goes.
#
# A tick's task messages go out in pipelines of this many Redis commands (kombu's producer batch; a task
# is its message and its task-sent event): a round trip per ~50 tasks instead of two per task. A beat
# that dies before a pipeline went out leaves those ticks pending; they are dispatched again after
# stall_timeout, as after any crash between claiming a tick and sending it.
PUBLISH_BATCH = 100


def dispatch_due_batched(app, rt, now: datetime) -> datetime:
    """dispatch_due, its messages published in pipelines."""
    with app.producer_or_acquire() as producer:
        batch = getattr(producer, "batch", None)  # kombu >= 5.7
        with batch(max_size=PUBLISH_BATCH) if batch else contextlib.nullcontext():
            def send(name, args, queue, argsrepr):
                app.send_task(name, args=args, queue=queue, argsrepr=argsrepr, producer=producer, ignore_result=True)

            return dispatch_due(rt, send, now)


def send_query_task(send, query: str, tick: int) -> None:
    send(QUERY_TASK, args=(query, tick), queue=QUERY_QUEUE, argsrepr=f"(query={query}, tick={from_epoch(tick).isoformat()})")


def send_ticks_task(send, query: str, first: int, step: int, count: int) -> None:
    """As send_query_task, for `count` ticks `step` seconds apart from `first` (meterworker.query_ticks)."""
    last = first + (count - 1) * step
    send(QUERY_TICKS_TASK, args=(query, first, step, count), queue=QUERY_QUEUE,
         argsrepr=f"(query={query}, {count} ticks every {step}s from {from_epoch(first).isoformat()} to "
                  f"{from_epoch(last).isoformat()})")


def redispatch(rt, send, query: str, ticks: list[int]) -> list[int]:
    for tick in ticks:
        rt.state.mark_pending(query, tick)
        send_query_task(send, query, tick)
        log.warning("query %s tick %s was pending with no activity for %.0fs; dispatched it again",
                    query, from_epoch(tick).isoformat(), rt.config.meterworker.stall_timeout)
    return ticks


class TickScheduler(Scheduler):
    """Replaces beat's schedule with meterworker's ticks; only the holder of the Redis lock dispatches."""

    def __init__(self, *args, **kwargs):
        self.rt = runtime.current()
        ttl = self.rt.config.meterworker.lock_timeout
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lock = BeatLock(self.rt.redis, self.rt.collector, holder, ttl)
        self.renew_every = ttl / 3
        self.active = False
        self.redis_down = False
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        pass

    @property
    def schedule(self):
        return {}

    @property
    def info(self):
        return f"    . meterworker ticks for {len(self.rt.config.queries)} queries, lock {self.lock.key}"

    def _send(self, name, args, queue, argsrepr):
        self.app.send_task(name, args=args, queue=queue, argsrepr=argsrepr, ignore_result=True)

    def tick(self, *args, **kwargs) -> float:
        # Celery's beat loop exits on any exception from tick(): a Redis restart must not stop every beat.
        try:
            wait = self._tick()
        except (redis.RedisError, OperationalError) as e:
            if not self.redis_down:
                log.warning("Redis does not answer (%s); standing by and trying again", e)
            self.redis_down, self.active = True, False
            return min(1.0, self.renew_every)
        if self.redis_down:
            log.info("Redis answers again")
            self.redis_down = False
        return wait

    def _tick(self) -> float:
        if not self.lock.acquire():
            if self.active:
                log.warning("lost the beat lock to %s; standing by", self.lock.holder())
            self.active = False
            return self.renew_every
        if not self.active:
            log.info("holding the beat lock as %s", self.lock.holder_id)
            self.active = True
        now = datetime.now(timezone.utc)
        next_due = dispatch_due_batched(self.app, self.rt, now)
        wait = (next_due - datetime.now(timezone.utc)).total_seconds()
        return max(0.01, min(wait, self.renew_every))

    def close(self):
        if self.active:
            self.lock.release()
        super().close()
