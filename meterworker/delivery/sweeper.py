"""A send worker's housekeeping thread: sends on batches that are due again, flushes events that waited.

Batches are due again when their retry delay is over or when the worker that held them died
(their lease ran out). Events that waited batching.period without filling a batch are flushed.
Every send worker runs one; they share the work through Redis, and what one of them asks for
happens once.
"""

import logging
import threading

import redis
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, outbox, request_batch, resume_batch, interval: float):
        self.outbox = outbox
        self.request_batch = request_batch
        self.resume_batch = resume_batch
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> None:
        for batch_id, gen in self.outbox.claim_due():
            log.info("batch %s is due again; sending it on", batch_id, extra={"batch_id": batch_id})
            self.resume_batch(batch_id, gen)
        if self.outbox.overdue() and self.outbox.request_flush_once():
            self.request_batch()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
                failing = False
            except (redis.RedisError, OperationalError, OSError) as e:
                if not failing:
                    log.warning("sweeper: Redis or the broker does not answer (%s); trying again", e)
                failing = True
            except Exception:
                log.exception("sweeper: unexpected error; trying again")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="meterworker-sweeper", daemon=True)
        self._thread.start()
        log.info("sweeper started: batches due again and events older than the flush period are sent every %.2fs",
                 self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
