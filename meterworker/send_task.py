"""The send side: query tasks put events in the outbox; `meterworker.send` tasks post them in batches.

A send task takes a new batch from the outbox (when a full batch waits or the oldest event waited
batching.period), or, given a batch id, sends on a batch that is due again: its retry delay is
over, or the worker that held it died. Every request's outcome is recorded at once, so a crash
loses nothing and repeats at most the request under way. See outbox.py for the guarantees.
"""

import logging

from celery import signals

from . import runtime
from .app import app
from .batch_send import BatchSend
from .batching import sweep_interval
from .outbox import Added, LeaseLost
from .sweeper import Sweeper

log = logging.getLogger(__name__)

SEND_TASK = "meterworker.send"


def enqueue_events(events: list[dict], meta: dict) -> Added:
    """Hand events to the send side; meta = {"query": name, "tick": epoch seconds}."""
    rt = runtime.current()
    added = rt.outbox.add(events, meta)
    for _ in range(added.full_batches):
        request_batch()
    if added.skipped:
        log.info("%d of %d events of query %s were already delivered or are on their way; not queued again",
                 added.skipped, len(events), meta.get("query"),
                 extra={"query": meta.get("query"), "tick": meta.get("tick")})
    return added


def request_batch() -> None:
    send.apply_async(argsrepr="(next batch from the outbox)")


def resume_batch(batch_id: str, gen: int) -> None:
    send.apply_async((batch_id, gen), argsrepr=f"(batch {batch_id})")


@app.task(name=SEND_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send(batch_id: str | None = None, gen: int | None = None) -> int:
    """Post one batch (a new one, or `batch_id` at generation `gen`); return how many events were delivered."""
    rt = runtime.current()
    with rt.in_flight.held() as slot:
        batch = rt.outbox.take() if batch_id is None else rt.outbox.resume(batch_id, gen)
        if batch is None:
            return 0
        try:
            delivered = BatchSend(rt, batch, slot).run()
        except LeaseLost:
            log.warning("batch %s was handed to another worker while this one held it; leaving it to that one",
                        batch.id, extra={"batch_id": batch.id})
            return 0
    if batch_id is None and rt.outbox.overdue():
        request_batch()  # the workers lag behind: keep draining
    return delivered


# --- the sweeper runs in every worker that consumes the send queue ---------------------------

_sweeper: Sweeper | None = None


def _send_queue() -> str:
    return (app.conf.task_routes or {}).get(SEND_TASK, {}).get("queue", "send")


@signals.worker_ready.connect
def _start_sweeper(sender=None, **_):
    global _sweeper
    if sender is None or _send_queue() not in sender.app.amqp.queues.consume_from:
        return
    if _sweeper is not None:  # the consumer is ready again after a lost broker connection
        return
    rt = runtime.current()
    _sweeper = Sweeper(rt.outbox, request_batch, resume_batch, sweep_interval(rt.config.http.batching.period))
    _sweeper.start()


@signals.worker_shutdown.connect
def _stop_sweeper(**_):
    if _sweeper is not None:
        _sweeper.stop()
