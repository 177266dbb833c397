"""The send side: query tasks put events in the outbox; `meterworker.send` tasks post them in batches.

A send task takes a new batch from the outbox (when a full batch waits or the oldest event waited
batching.period), or, given a batch id, sends on a batch that is due again: its retry delay is
over, or the worker that held it died. Every request's outcome is recorded at once, so a crash
loses nothing and repeats at most the request under way. See outbox.py for the guarantees.
"""

import logging
import time

import redis

from meterworker import runtime
from meterworker.app import app
from meterworker.delivery.batching import sweep_interval
from meterworker.delivery.backoff import retry_delay
from meterworker.delivery.driver import Driver, Failure
from meterworker.connect.replication import ReplicationError
from meterworker.delivery.outbox import NONE_READY, Added, Batch, LeaseLost
from meterworker.delivery.records import OutboxRecord
from meterworker.delivery.sweeper import Sweeper
from meterworker.delivery.verdicts import Response, give_up_reason, gives_up
from meterworker.ops import metrics
from meterworker.keys import SEND_QUEUE, SEND_TASK
from meterworker.runtime import Runtime

log = logging.getLogger(__name__)


class Metrics:
    """The delivery driver's Observer in a worker: meterworker's Prometheus metrics, and the count of events
    delivered per query in Redis (what `backfill` shows as it runs)."""

    def __init__(self, rt: Runtime | None = None):
        self.rt = rt

    def posted(self, query, events):
        metrics.batch_posted(query, events)

    def responded(self, status):
        metrics.http_response(status)

    def sent(self, query, events):
        metrics.events_sent(query, events)
        if self.rt is not None and query is not None and events:
            try:
                self.rt.redis.hincrby(self.rt.outbox.keys.sent, query, events)
            except redis.RedisError as e:  # a progress figure: the delivery is recorded already
                log.warning("could not count %d delivered events of query %s: %s", events, query, e)

    def dead_lettered(self, query, events):
        metrics.events_dead_lettered(query, events)

    def skipped(self, query, events):
        metrics.events_skipped(query, "already_delivered", events)

    def retried(self, query):
        metrics.retried("send", query)


def enqueue_events(rt: Runtime, events: list[dict], meta: dict) -> Added:
    """Hand events to the send side; meta = {"query": name, "tick": epoch seconds}."""
    added = rt.outbox.add(events, meta)
    if added.full_batches:
        request_batches(rt, added.full_batches)
    if added.skipped:
        log.info("%d of %d events of query %s were already delivered or are on their way; not queued again",
                 added.skipped, len(events), meta.get("query"),
                 extra={"query": meta.get("query"), "tick": meta.get("tick")})
    return added


def request_batch() -> None:
    send.apply_async(argsrepr="(next batch from the outbox)")


SPAWN = 2  # send tasks asked for at most at once


def request_batches(rt: Runtime, n: int) -> None:
    """Ask for send tasks for `n` new full batches, only when none waits in the send queue: a send task
    takes batches for as long as they are ready (see DRAIN_SECONDS), so one that waits, or one that runs,
    takes these too; a Celery message per batch would cost more than its request. At most SPAWN at once:
    an empty queue may mean idle workers, which pick them up and drain side by side."""
    if rt.redis.llen(_send_queue()) == 0:
        for _ in range(min(n, SPAWN, rt.config.http.max_in_flight)):
            request_batch()


def resume_batch(batch_id: str, gen: int) -> None:
    send.apply_async((batch_id, gen), argsrepr=f"(batch {batch_id})")


# A task that took a new batch takes the next one as long as one is ready (a full batch waits, or
# events waited batching.period), for up to this long: a Celery message per batch costs more than
# the request itself. The bound keeps a worker that also runs queries free for them.
DRAIN_SECONDS = 2.0


@app.task(name=SEND_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send(batch_id: str | None = None, gen: int | None = None) -> int:
    """Post `batch_id` at generation `gen`, or new batches while they are ready; return how many events
    were delivered."""
    rt = runtime.current()
    driver = None  # built under the catch-all below: a sender that cannot be built fails the batch with its reason
    delivered = 0
    deadline = time.monotonic() + DRAIN_SECONDS
    with rt.in_flight.held() as slot:
        batch = rt.outbox.take() if batch_id is None else rt.outbox.resume(batch_id, gen)
        while batch is not None:
            # A new batch's last delivery takes the next ready one in the same script (its successor).
            draining = batch_id is None and time.monotonic() < deadline
            try:
                driver = driver or Driver(rt.config, rt.sender.post, Metrics(rt), rt.scrub)
                mark = rt.replication_mark()
                record = OutboxRecord(rt.outbox, batch, slot, rt.config.meterworker.dedup_horizon,
                                      lambda: rt.confirm_writes(mark, f"batch {batch.id}"), take_next=draining)
                delivered += driver.deliver(f"batch {batch.id}", batch.items, record, {"batch_id": batch.id}).delivered
            except LeaseLost:
                log.warning("batch %s was handed to another worker while this one held it; leaving it to that one",
                            batch.id, extra={"batch_id": batch.id})
            except ReplicationError as e:
                # What is left of the batch goes again when its lease runs out; what was recorded delivered
                # stays so (it may go again after a fail-over that drops the record: the sink dedups by id).
                # So does a successor already taken.
                log.warning("batch %s: %s; leaving it to be sent on when its lease runs out", batch.id, e,
                            extra={"batch_id": batch.id})
                metrics.retried("send", None)
                break
            except Exception as e:  # noqa: BLE001 - never a batch stuck without a reason
                _unexpected(rt, batch, slot, e)
            successor, batch.successor = batch.successor, None
            if isinstance(successor, Batch):
                batch = successor
            elif successor is NONE_READY or not draining:
                break
            else:
                batch = rt.outbox.take()
    if rt.outbox.ready():
        request_batch()  # the workers lag behind: keep draining
    return delivered


def _unexpected(rt: Runtime, batch, slot, e: Exception) -> None:
    """An error no verdict foresaw: the batch's attempt counts as failed, retried with backoff like a
    refused request, and dead-lettered with the error as its reason after `retries` retries."""
    http = rt.config.http
    reason = rt.scrub(f"unexpected error: {type(e).__name__}: {e}")
    record = OutboxRecord(rt.outbox, batch, slot, rt.config.meterworker.dedup_horizon)
    record.first_failure = record.first_failure or time.time()
    extra = {"batch_id": batch.id}
    if gives_up(record.attempt, http.retries):
        log.exception("batch %s: %s; attempt %d of %d, dead-lettering it", batch.id, reason, record.attempt,
                      http.retries + 1, extra=extra)
        failure = Failure(give_up_reason(record.attempt, Response(None, "", error=reason)),
                          Response(None, "", error=reason), record.attempt, record.first_failure)
        record.dead_lettered(batch.items, failure)
        return
    delay = retry_delay(record.attempt, http.retry_period, http.max_retry_backoff)
    log.exception("batch %s: %s; attempt %d of %d, retrying in %.1fs", batch.id, reason, record.attempt,
                  http.retries + 1, delay, extra=extra)
    record.retry_later(batch.items, delay)


# --- the sweeper runs in every worker that consumes the send queue ---------------------------

_sweeper: Sweeper | None = None


def _send_queue() -> str:
    return (app.conf.task_routes or {}).get(SEND_TASK, {}).get("queue", SEND_QUEUE)


def consumes_sends(queues) -> bool:
    """Whether a worker consuming `queues` takes send tasks (and so runs a sweeper)."""
    return _send_queue() in queues


def start_sweeper(rt: Runtime) -> None:
    global _sweeper
    if _sweeper is not None:  # the consumer is ready again after a lost broker connection
        return
    _sweeper = Sweeper(rt.outbox, request_batch, resume_batch, sweep_interval(rt.config.http.batching.period))
    _sweeper.start()


def stop_sweeper(**_):
    if _sweeper is not None:
        _sweeper.stop()
