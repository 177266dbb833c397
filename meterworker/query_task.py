"""The query task: evaluates one query at one tick and hands its events to the send side."""

import logging

from .app import app
from .backoff import retry_delay
from .collect import chunks, evaluate
from .dispatch import from_epoch
from .events import ResultTypeError
from .prometheus import PrometheusError
from . import runtime
from .send_task import enqueue_events

log = logging.getLogger(__name__)

# Events are handed over in slices of this size while the response is read, so that a
# result of a million series is never held whole.
HANDOVER = 5000


@app.task(name="meterworker.query", bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def run_query(self, query_name: str, tick: int, report: str | None = None) -> int:
    """Evaluate one query at one tick and queue its events for sending. Retries until it succeeds."""
    rt = runtime.current()
    query = rt.config.query(query_name)
    when = from_epoch(tick)
    meta = {"query": query_name, "tick": tick}
    count = 0
    try:
        with evaluate(rt.config, rt.prometheus, query, rt.schedule_for(query), when) as ev:
            for part in chunks(ev.events, HANDOVER):
                enqueue_events(part, meta)
                count += len(part)
    except (PrometheusError, ResultTypeError) as e:
        attempt = self.request.retries + 1
        message = rt.scrub(str(e))
        rt.state.record_failure(query_name, tick, message, attempt)
        settings = rt.config.meterworker
        delay = retry_delay(attempt, settings.query_retry_period, settings.query_max_backoff)
        log.error("query %s tick %s failed (attempt %d), retrying in %.0fs: %s",
                  query_name, when.isoformat(), attempt, delay, message)
        raise self.retry(countdown=delay, exc=None)
    rt.state.complete(query_name, tick)
    if report:
        rt.redis.pipeline().sadd(report, f"{query_name}:{tick}").expire(report, 7 * 86400).execute()
    log.info("query %s tick %s: %d events queued", query_name, when.isoformat(), count)
    return count
