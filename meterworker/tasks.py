"""The Celery tasks: thin shells around collect() and deliver()."""

import logging
import time

from .app import app
from .backoff import retry_delay
from .collect import chunks, collect
from .delivery import deliver
from .dispatch import from_epoch
from .events import ResultTypeError
from .prometheus import PrometheusError
from . import runtime

log = logging.getLogger(__name__)

QUERY_RETRY_PERIOD = 5.0
QUERY_MAX_BACKOFF = 300.0


@app.task(name="meterworker.query", bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def run_query(self, query_name: str, tick: int) -> int:
    """Evaluate one query at one tick and queue its events for sending. Retries until it succeeds."""
    rt = runtime.current()
    query = rt.config.query(query_name)
    when = from_epoch(tick)
    try:
        got = collect(rt.config, rt.prometheus, query, rt.schedule_for(query), when)
    except (PrometheusError, ResultTypeError) as e:
        attempt = self.request.retries + 1
        message = rt.scrub(str(e))
        rt.state.record_failure(query_name, tick, message, attempt)
        delay = retry_delay(attempt, QUERY_RETRY_PERIOD, QUERY_MAX_BACKOFF)
        log.error("query %s tick %s failed (attempt %d), retrying in %.0fs: %s",
                  query_name, when.isoformat(), attempt, delay, message)
        raise self.retry(countdown=delay, exc=None)
    events = got.result.events
    for batch in chunks(events, rt.config.http.batching.count):
        queue_batch(batch, {"query": query_name, "tick": tick, "attempt": 1, "first_failure": None})
    rt.state.complete(query_name, tick)
    log.info("query %s tick %s: %d events queued", query_name, when.isoformat(), len(events))
    return len(events)


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
    todo = rt.state.undelivered(events)
    if not todo:
        return 0
    out = deliver(todo, rt.sender.post, http.drop_on, rt.config.error_patterns)
    rt.state.mark_delivered(out.delivered, rt.config.meterworker.dedup_horizon)
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
