"""The send task: posts one batch, retries with backoff, dead-letters what cannot be delivered."""

import logging
import time

from . import runtime
from .app import app
from .backoff import retry_delay
from .collect import chunks
from .delivery import deliver

log = logging.getLogger(__name__)


def enqueue_events(events: list[dict], meta: dict) -> None:
    """Hand a tick's events to the send side, in batches of at most batching.count."""
    for batch in chunks(events, runtime.current().config.http.batching.count):
        queue_batch(batch, {**meta, "attempt": 1, "first_failure": None})


def queue_batch(events: list[dict], meta: dict, countdown: float | None = None) -> None:
    send_batch.apply_async(
        (events, meta),
        countdown=countdown,
        argsrepr=f"({len(events)} events, query={meta.get('query')}, tick={meta.get('tick')})",
    )


@app.task(name="meterworker.send", bind=True, acks_late=True, reject_on_worker_lost=True)
def send_batch(self, events: list[dict], meta: dict) -> int:
    """POST one batch; what fails for a while is queued again with backoff, then dead-lettered."""
    rt = runtime.current()
    http = rt.config.http
    todo = rt.delivered.undelivered(events)
    if not todo:
        return 0
    out = deliver(todo, rt.sender.post, http.drop_on, rt.config.error_patterns)
    rt.delivered.mark(out.delivered, rt.config.meterworker.dedup_horizon)
    attempt = meta.get("attempt", 1)
    first_failure = meta.get("first_failure") or time.time()
    for rej in out.rejected:
        entry = rt.dead_letters.add(
            rej.events, reason=rej.reason, status=rej.status, body=rej.body, attempts=attempt,
            first_failure=first_failure, query=meta.get("query"), tick=meta.get("tick"),
        )
        log.error("batch of %d events dead-lettered as %s: %s: %s",
                  len(rej.events), entry, rej.reason, rt.scrub(rej.body[:200]))
    if out.retry:
        last = out.last
        what = f"HTTP {last.status}" if last.status else (last.error or "no response")
        if attempt > http.retries:
            entry = rt.dead_letters.add(
                out.retry, reason=f"gave up after {attempt} attempts: {what}", status=last.status,
                body=last.body, attempts=attempt, first_failure=first_failure,
                query=meta.get("query"), tick=meta.get("tick"),
            )
            log.error("batch of %d events dead-lettered as %s after %d attempts: %s",
                      len(out.retry), entry, attempt, rt.scrub(what))
        else:
            delay = retry_delay(attempt, http.retry_period, http.max_retry_backoff, out.retry_after)
            log.warning("batch of %d events not delivered (%s), attempt %d, retrying in %.1fs",
                        len(out.retry), rt.scrub(what), attempt, delay)
            queue_batch(out.retry, {**meta, "attempt": attempt + 1, "first_failure": first_failure}, delay)
    return len(out.delivered)
