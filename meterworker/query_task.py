"""The query task: evaluates one query at one tick and hands its events to the send side."""

import logging

from .app import app
from .backoff import retry_delay
from .collect import collect
from .dispatch import from_epoch
from .events import ResultTypeError
from .prometheus import PrometheusError
from . import runtime
from .send_task import enqueue_events

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
    enqueue_events(events, {"query": query_name, "tick": tick})
    rt.state.complete(query_name, tick)
    log.info("query %s tick %s: %d events queued", query_name, when.isoformat(), len(events))
    return len(events)
