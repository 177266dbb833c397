"""The query task of evenly spaced ticks (a backfill's stretches, beat's catch-up): a range query per chunk of
them instead of an instant query per tick, and for each tick the bookkeeping of the one-tick task (task.py):
its lease, its events in the outbox under its own (query, tick), its completion, the backfill's report. A tick
the range answers cannot give goes to a one-tick task of its own, which retries it as one-tick tasks do."""

import logging
import os
import threading
import time

import redis

from meterworker import runtime
from meterworker.app import app
from meterworker.connect.replication import ReplicationError
from meterworker.delivery.task import enqueue_events
from meterworker.keys import QUERY_TICKS_TASK
from meterworker.ops import metrics
from meterworker.query.evaluate import chunks
from meterworker.query.prometheus import PrometheusError, RangeMismatch
from meterworker.query.ranged import evaluate_ticks
from meterworker.query.task import HANDOVER
from meterworker.schedule.backfill import drop_pending, report_tick, stopped
from meterworker.schedule.beat import send_query_task
from meterworker.schedule.due import from_epoch

log = logging.getLogger(__name__)

STOP_CHECK = 1.0  # seconds between two looks at the backfill's stop key
# A range answer puts ticks in the outbox far faster than they are delivered, and while these tasks hold the
# worker processes no send task runs: above OUTBOX_HIGH pending events a ticks task delivers batches itself
# (the send task's own code) until OUTBOX_LOW are left, so that Redis holds a bounded backlog whatever the range.
OUTBOX_CHECK = 1.0  # seconds between two looks at the outbox
OUTBOX_HIGH = 100_000
OUTBOX_LOW = 50_000


def ask_tick_by_tick(error: PrometheusError) -> bool:
    """A range request refused for what it asks (an aligned answer, too many points: 4xx) is asked again as
    instant queries; one that failed otherwise (unreachable, timed out, 5xx) goes to one-tick tasks, which
    retry with backoff."""
    return isinstance(error, RangeMismatch) or (error.status is not None and 400 <= error.status < 500)


class _SignsOfLife:
    """Keeps the sign of life of the ticks not handled yet fresh in the pending set, from a thread, so that
    beat does not dispatch them again while the range requests run."""

    def __init__(self, state, query: str, ticks: list[int], every: float):
        self.state, self.query, self.every = state, query, every
        self.left = {str(t) for t in ticks}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meterworker-ticks-alive", daemon=True)

    def done(self, tick: int) -> None:
        with self._lock:
            self.left.discard(str(tick))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                left = dict.fromkeys(self.left, time.time())
            if left:
                try:
                    self.state.r.zadd(self.state.keys.pending(self.query), left, xx=True)
                except redis.RedisError as e:
                    log.warning("query %s: could not refresh its ticks' sign of life: %s", self.query, e)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@app.task(name=QUERY_TICKS_TASK, bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def run_ticks(self, query_name: str, first: int, step: int, count: int, report: str | None = None,
              max_attempts: int | None = None, run: str | None = None) -> int:
    """Evaluate `count` ticks `step` seconds apart from `first` and queue each tick's events for sending."""
    rt = runtime.current()
    query = rt.query(query_name)
    ticks = list(range(first, first + count * step, step))
    holder = self.request.id or f"local-{os.getpid()}"
    ttl = rt.config.meterworker.stall_timeout
    handed: list[int] = []
    queued = done = 0  # events queued; ticks handled, in order
    with _SignsOfLife(rt.state, query_name, ticks, ttl / 4) as alive:
        try:
            if stopped(rt.redis, report, run):
                drop_pending(rt.state, query_name, ticks)
                return 0
            looked = outbox_looked = time.monotonic()
            for outcome in evaluate_ticks(rt.config, rt.prometheus, query, rt.schedule_for(query), ticks,
                                          fall_back=ask_tick_by_tick):
                if time.monotonic() - looked > STOP_CHECK:
                    looked = time.monotonic()
                    if stopped(rt.redis, report, run):
                        drop_pending(rt.state, query_name, ticks[done:])
                        log.info("query %s: backfill stopped, %d of %d ticks left undone", query_name,
                                 count - done, count)
                        return queued
                if outcome.error is not None:
                    handed.append(outcome.tick)
                else:
                    queued += _one_tick(rt, query, outcome, holder, ttl, report)
                done += 1
                alive.done(outcome.tick)
                if time.monotonic() - outbox_looked > OUTBOX_CHECK:
                    _deliver_backlog(rt)
                    outbox_looked = time.monotonic()
        except Exception as e:  # noqa: BLE001 - the ticks not done go to one-tick tasks, which record and retry
            if not isinstance(e, (PrometheusError, ReplicationError, redis.RedisError)):
                log.exception("query %s: %d ticks from %s: %s", query_name, count, from_epoch(first).isoformat(),
                              rt.scrub(f"{type(e).__name__}: {e}"))
            handed += ticks[done:]
        finally:
            if handed:
                _hand_over(query_name, handed, report, max_attempts, run)
    log.info("query %s: %d ticks from %s: %d events queued%s", query_name, count, from_epoch(first).isoformat(),
             queued, f", {len(handed)} ticks handed to one-tick tasks" if handed else "")
    return queued


def _deliver_backlog(rt) -> None:
    """Above OUTBOX_HIGH pending events, deliver batches in this process until OUTBOX_LOW are left (or none is
    ready: the rest waits for a retry, or is being sent by others)."""
    from meterworker.delivery.task import send

    if rt.outbox.counts()["pending"] <= OUTBOX_HIGH:
        return
    while rt.outbox.counts()["pending"] > OUTBOX_LOW:
        if not send():
            return


def _hand_over(query: str, ticks: list[int], report, max_attempts, run) -> None:
    def send(name, args, queue, argsrepr):
        app.send_task(name, args=args, kwargs={"report": report, "max_attempts": max_attempts, "run": run},
                      queue=queue, argsrepr=argsrepr, ignore_result=True)

    for tick in ticks:
        send_query_task(send, query, tick)


def _one_tick(rt, query, outcome, holder: str, ttl: float, report: str | None) -> int:
    """What the one-tick task does with a tick's events, given them: lease, outbox, completion, report."""
    name, tick = query.name, outcome.tick
    other = rt.state.lease(name, tick, holder, ttl)
    if other is not None and other != rt.state.DONE:
        log.info("query %s tick %s is being run by task %s; this task leaves it to that one",
                 name, from_epoch(tick).isoformat(), other)
        return 0
    released = False
    try:
        if other is None:
            mark = rt.replication_mark()
            meta = {"query": name, "tick": tick}
            for part in chunks(outcome.result.events, HANDOVER):
                enqueue_events(rt, part, meta)
            rt.confirm_writes(mark, f"query {name} tick {from_epoch(tick).isoformat()}")
            skipped = outcome.result.skipped
            metrics.events_skipped(name, "non_finite", skipped.non_finite)
            metrics.events_skipped(name, "missing_subject", skipped.no_subject)
            metrics.events_skipped(name, "non_numeric", skipped.non_numeric)
            metrics.events_skipped(name, "duplicate_series", skipped.duplicate)
            rt.state.complete(name, tick, holder)  # and the lease goes, in the same script
            released = True
        if report:
            pipe = rt.redis.pipeline()
            report_tick(pipe, report, name, tick)
            pipe.execute()
    finally:
        if other is None and not released:
            rt.state.release(name, tick, holder)
    return len(outcome.result.events) if other is None else 0
