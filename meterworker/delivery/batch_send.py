"""One attempt at a batch: post it, split what the sink refuses, and record each outcome as it comes.

Recording at once means that a worker dying half-way through repeats at most the request it
was making. What fails for a while waits in the outbox for its retry; what cannot be
delivered goes to the dead-letter store, one entry per query and tick.
"""

import logging
import time
from collections import Counter, defaultdict

from meterworker.ops import metrics
from meterworker.delivery.backoff import retry_delay
from meterworker.delivery.sender import Response, attempt, describe, rejection_reason
from meterworker.delivery.outbox import Batch, Item

log = logging.getLogger(__name__)


def _by_query(items: list[Item]) -> dict[tuple, list[Item]]:
    groups = defaultdict(list)
    for item in items:
        groups[(item.query, item.tick)].append(item)
    return groups


def _count(what: str, items: list[Item]) -> None:
    """The one place the delivery counters are kept (openmeter_events_sent and its siblings)."""
    for query, n in Counter(i.query for i in items).items():
        if what == "sent":
            metrics.events_sent(query, n)
        elif what == "dead_lettered":
            metrics.events_dead_lettered(query, n)
        elif what == "already_delivered":
            metrics.events_skipped(query, "already_delivered", n)
        elif what == "retried":
            metrics.retried("send", query)


class BatchSend:
    """One attempt at a batch: post, split what the sink refuses, record each outcome as it comes."""

    def __init__(self, rt, batch: Batch, slot):
        self.rt, self.batch, self.slot = rt, batch, slot
        self.http = rt.config.http
        self.log_extra = {"batch_id": batch.id}
        self.item_of = {id(i.event): i for i in batch.items}

    def run(self) -> int:
        rt, batch, outbox = self.rt, self.batch, self.rt.outbox
        fresh_ids = {id(e) for e in rt.delivered.undelivered([i.event for i in batch.items])}
        done = [i for i in batch.items if id(i.event) not in fresh_ids]
        todo = [i for i in batch.items if id(i.event) in fresh_ids]
        if done:
            outbox.already_delivered(batch, done)
            _count("already_delivered", done)
            log.info("%d events of batch %s were delivered before; not sent again", len(done), batch.id,
                     extra=self.log_extra)
        delivered = 0
        finished = False  # the batch is done and gone (its last events were recorded delivered)
        for step in attempt([i.event for i in todo], self._post, self.http.drop_on, self.rt.config.error_patterns):
            items = [self.item_of[id(e)] for e in step.events]
            if step.verdict == "ok":
                finished = outbox.delivered_now(batch, items, rt.config.meterworker.dedup_horizon)
                _count("sent", items)
                delivered += len(items)
            elif step.verdict == "split":
                log.info("batch %s: %d events refused with %s; splitting to find the bad ones", batch.id,
                         len(items), describe(step.response), extra=self.log_extra)
            elif step.verdict == "drop":
                self._dead_letter(items, rejection_reason(step.response, rt.config.error_patterns), step.response,
                                  batch.first_failure or time.time())
            else:
                self._retry_or_give_up(items, step.response)
                return delivered
        if not finished:
            outbox.finish(batch)
        log.info("batch %s: %d events delivered", batch.id, delivered, extra=self.log_extra)
        return delivered

    def _post(self, events: list[dict]) -> Response:
        self.slot.renew()
        self.rt.outbox.renew(self.batch)
        queries = {self.item_of[id(e)].query for e in events}
        metrics.batch_posted(queries.pop() if len(queries) == 1 else None, len(events))
        resp = self.rt.sender.post(events)
        metrics.http_response(resp.status)
        return resp

    def _retry_or_give_up(self, items: list[Item], resp: Response) -> None:
        batch, http = self.batch, self.http
        first_failure = batch.first_failure or time.time()
        what = describe(resp)
        if batch.attempt > http.retries:
            self._dead_letter(items, f"gave up after {batch.attempt} attempts: {what}", resp, first_failure)
            self.rt.outbox.finish(batch)
            return
        delay = retry_delay(batch.attempt, http.retry_period, http.max_retry_backoff, resp.retry_after)
        self.rt.outbox.finish(batch, retry_in=delay, first_failure=first_failure)
        _count("retried", items)
        log.warning("batch %s: %d events not delivered (%s), attempt %d of %d; retrying in %.1fs",
                    batch.id, len(items), self.rt.scrub(what), batch.attempt, http.retries + 1, delay,
                    extra=self.log_extra)

    def _dead_letter(self, items: list[Item], reason: str, resp: Response, first_failure: float) -> None:
        dl = self.rt.dead_letters
        entries = [
            dl.build([i.event for i in group], reason=reason, status=resp.status, body=resp.body,
                     attempts=self.batch.attempt, first_failure=first_failure, query=query, tick=tick)
            for (query, tick), group in _by_query(items).items()
        ]
        self.rt.outbox.dead_lettered(self.batch, items, entries)
        _count("dead_lettered", items)
        for entry in entries:
            log.error("%d events of query %s dead-lettered as %s: %s: %s", len(entry["events"]), entry["query"],
                      entry["id"], entry["reason"], entry["body"][:300],
                      extra={**self.log_extra, "query": entry["query"], "tick": entry["tick"]})
