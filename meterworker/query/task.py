"""The query task: evaluates one query at one tick and hands its events to the send side."""

import contextvars
import logging
import os
import uuid
from concurrent import futures

from meterworker.app import app
from meterworker.delivery.backoff import retry_delay
from meterworker.query.evaluate import chunks, evaluate
from meterworker.query.lease import TickLease
from meterworker.schedule.backfill import drop_pending, report_tick, stopped
from meterworker.schedule.due import from_epoch
from meterworker.query.mapping import ResultTypeError
from meterworker.query.prometheus import PrometheusError
from meterworker import runtime
from meterworker.connect.replication import ReplicationError
from meterworker.delivery.task import enqueue_events
from meterworker.keys import QUERY_TASK
from meterworker.ops import metrics

log = logging.getLogger(__name__)

# Events are handed over in slices of this size while the response is read, so that a
# result of a million series is never held whole. A slice goes to the outbox from a thread of
# its own while the next one is read and mapped: the task waits on Redis no longer than that.
HANDOVER = 5000

_handover_pool: tuple[int, futures.ThreadPoolExecutor] | None = None


def _handover() -> futures.ThreadPoolExecutor:
    """This process' handover thread (a new one after a fork)."""
    global _handover_pool
    if _handover_pool is None or _handover_pool[0] != os.getpid():
        _handover_pool = (os.getpid(), futures.ThreadPoolExecutor(1, thread_name_prefix="meterworker-handover"))
    return _handover_pool[1]


@app.task(name=QUERY_TASK, bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def run_query(self, query_name: str, tick: int, report: str | None = None, max_attempts: int | None = None,
              run: str | None = None) -> int | None:
    """Evaluate one query at one tick and queue its events for sending.

    Retries until it succeeds, or (a backfill's ticks) gives up after `max_attempts` failed attempts and says
    so in the backfill's `report`; the tick then stays pending with its failure, as `status` shows. A tick of
    the backfill invocation `run`, stopped (Ctrl-C) before the task starts, is left undone."""
    rt = runtime.current()
    query = rt.query(query_name)
    if stopped(rt.redis, report, run):
        drop_pending(rt.state, query_name, [tick])
        return None
    holder = self.request.id or f"local-{os.getpid()}"
    with TickLease(rt.state, query_name, tick, holder, rt.config.meterworker.stall_timeout) as lease:
        if lease.other == rt.state.DONE:
            log.info("query %s tick %s is done already; this copy has nothing to do",
                     query_name, from_epoch(tick).isoformat())
            return None
        if lease.other is not None:
            log.info("query %s tick %s is being run by task %s; this copy leaves it to that one",
                     query_name, from_epoch(tick).isoformat(), lease.other)
            return None
        return _run(self, rt, query, query_name, tick, report, max_attempts, lease)


def _run(self, rt, query, query_name: str, tick: int, report: str | None, max_attempts: int | None,
         lease: TickLease) -> int | None:
    when = from_epoch(tick)
    meta = {"query": query_name, "tick": tick, "run": uuid.uuid4().hex}  # a run's slices hold different events
    count = 0
    handing = None  # the slice being handed over in the background, while the next one is read
    try:
        mark = rt.replication_mark()
        with evaluate(rt.config, rt.prometheus, query, rt.schedule_for(query), when) as ev:
            for part in chunks(ev.events, HANDOVER):
                if handing is not None:
                    handing.result()
                    handing = None
                if len(part) < HANDOVER:  # the last slice: nothing left to read meanwhile
                    enqueue_events(rt, part, meta)
                else:
                    handing = _handover().submit(contextvars.copy_context().run, enqueue_events, rt, part, meta)
                count += len(part)
            if handing is not None:
                handing.result()
                handing = None
        # The events are in the outbox: they count (and the tick completes) once the replicas have them.
        rt.confirm_writes(mark, f"query {query_name} tick {when.isoformat()}")
        metrics.events_skipped(query_name, "non_finite", ev.skipped.non_finite)
        metrics.events_skipped(query_name, "missing_subject", ev.skipped.no_subject)
        metrics.events_skipped(query_name, "non_numeric", ev.skipped.non_numeric)
        metrics.events_skipped(query_name, "duplicate_series", ev.skipped.duplicate)
        if ev.gaps is not None:
            metrics.counter_series_started(query_name, "new", ev.gaps.new)
            metrics.counter_series_started(query_name, "gap", ev.gaps.gap)
            if ev.gaps.gap:
                rt.state.record_counter_gap(query_name, tick, ev.gaps.gap, query.max_gap, ev.gaps.examples)
    except Exception as e:  # noqa: BLE001 - every failure is recorded, then retried or given up on
        attempt = self.request.retries + 1
        if isinstance(e, (PrometheusError, ResultTypeError, ReplicationError)):
            message = rt.scrub(str(e))
        else:  # a bug or a broken part: shown in `status` like any other failure, with its traceback logged
            message = rt.scrub(f"unexpected error: {type(e).__name__}: {e}")
            log.exception("query %s tick %s: %s", query_name, when.isoformat(), message)
        settings = rt.config.meterworker
        delay = retry_delay(attempt, settings.query_retry_period, settings.query_max_backoff)
        giving_up = max_attempts is not None and attempt >= max_attempts
        rt.state.record_failure(query_name, tick, message, attempt, retry_in=0 if giving_up else delay)
        if giving_up:
            log.error("query %s tick %s failed (attempt %d of %d), giving up: %s",
                      query_name, when.isoformat(), attempt, max_attempts, message)
            if report:
                pipe = rt.redis.pipeline()
                report_tick(pipe, report, query_name, tick, message, attempt)
                pipe.execute()
            return None
        log.error("query %s tick %s failed (attempt %d), retrying in %.0fs: %s",
                  query_name, when.isoformat(), attempt, delay, message)
        raise self.retry(countdown=delay, exc=None)
    finally:
        if handing is not None:  # the task failed while a slice was being handed over: let that finish
            futures.wait([handing])
    lease.complete()
    if report:
        pipe = rt.redis.pipeline()
        report_tick(pipe, report, query_name, tick)
        pipe.execute()
    log.info("query %s tick %s: %d events queued", query_name, when.isoformat(), count)
    return count
