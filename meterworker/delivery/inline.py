"""Delivery in the calling process (backfill --inline): the same dedup, retries and dead letters, no workers.

Events that live workers hold in the outbox are left to them.
"""

import logging
import time

import redis

from meterworker.delivery.backoff import retry_delay
from meterworker.query.evaluate import chunks
from meterworker.delivery.sender import deliver

log = logging.getLogger(__name__)


class InlineSender:
    def __init__(self, rt, sleep=time.sleep):
        self.rt = rt
        self.sleep = sleep
        self.delivered = self.skipped = self.dead = 0
        try:
            rt.redis.ping()
            self.remember = True
        except redis.RedisError:
            log.warning("no Redis at the configured URL: delivered ids are not recorded nor checked, "
                        "and undeliverable events are reported here instead of the dead-letter store")
            self.remember = False

    def send(self, events: list[dict], meta: dict) -> bool:
        """True when every event was delivered (or had been already)."""
        ok = True
        for batch in chunks(events, self.rt.config.http.batching.count):
            ok &= self._send_batch(batch, meta)
        return ok

    def _send_batch(self, batch, meta) -> bool:
        rt, http = self.rt, self.rt.config.http
        todo = rt.outbox.not_pending(rt.delivered.undelivered(batch)) if self.remember else batch
        self.skipped += len(batch) - len(todo)
        first_failure, attempt = None, 1
        while todo:
            out = deliver(todo, rt.sender.post, http.drop_on, rt.config.error_patterns)
            if self.remember:
                rt.delivered.mark(out.delivered, rt.config.meterworker.dedup_horizon)
            self.delivered += len(out.delivered)
            failures = [(r.events, r.reason, r.status, r.body) for r in out.rejected]
            todo = out.retry
            if todo:
                first_failure = first_failure or time.time()
                last = out.last
                if attempt > http.retries:
                    what = f"HTTP {last.status}" if last.status else (last.error or "no response")
                    failures.append((todo, f"gave up after {attempt} attempts: {what}", last.status, last.body))
                    todo = []
                else:
                    self.sleep(retry_delay(attempt, http.retry_period, http.max_retry_backoff, out.retry_after))
                    attempt += 1
            for events, reason, status, body in failures:
                self._fail(events, reason, status, body, attempt, first_failure or time.time(), meta)
        return self.dead == 0

    def _fail(self, events, reason, status, body, attempts, first_failure, meta):
        self.dead += len(events)
        where = "not delivered"
        if self.remember:
            entry = self.rt.dead_letters.add(events, reason=reason, status=status, body=body, attempts=attempts,
                                             first_failure=first_failure, query=meta["query"], tick=meta["tick"])
            where = f"dead-lettered as {entry}"
        log.error("%d events of query %s %s: %s %s", len(events), meta["query"], where, reason,
                  self.rt.scrub((body or "")[:300]))

    def summary(self) -> str:
        return (f"sent: {self.delivered} delivered, {self.skipped} already delivered or on their way, "
                f"{self.dead} not delivered")
