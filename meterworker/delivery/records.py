"""Where the delivery driver records outcomes: a send worker's batch in the outbox, or a command's memory."""

import time
from collections import defaultdict
from typing import Any, Callable, Sequence

from meterworker.delivery.deadletter import DeadLetters
from meterworker.delivery.dedup import Delivered
from meterworker.delivery.driver import DeadLetter, Driver, Failure, Pending, Tally
from meterworker.delivery.batch_format import Item
from meterworker.delivery.outbox import Batch, Outbox, event_key


def by_tick(items: Sequence[Pending]) -> dict[tuple, list[Pending]]:
    groups = defaultdict(list)
    for item in items:
        groups[(item.query, item.tick)].append(item)
    return groups


def _entries(dead_letters: DeadLetters, items: Sequence[Pending], failure: Failure) -> list[dict[str, Any]]:
    """One dead-letter entry per query and tick."""
    resp = failure.response
    return [dead_letters.build([i.event for i in group], reason=failure.reason, status=resp.status, body=resp.body,
                               attempts=failure.attempts, first_failure=failure.first_failure, query=query, tick=tick)
            for (query, tick), group in by_tick(items).items()]


def _dead(entries: list[dict[str, Any]]) -> list[DeadLetter]:
    return [DeadLetter(e["query"], e["tick"], len(e["events"]), e["id"]) for e in entries]


class OutboxRecord:
    """A send worker's batch: every outcome is written to the outbox in Redis at once, and a retry waits
    there (the sweeper hands the batch out again when its delay is over)."""

    def __init__(self, outbox: Outbox, batch: Batch, slot, dedup_horizon: float,
                 confirm: Callable[[], None] | None = None, take_next: bool = False):
        self.outbox, self.batch, self.slot, self.ttl = outbox, batch, slot, dedup_horizon
        self.take_next = take_next  # when the batch is done, take the next ready one in the same script
        self.confirm = confirm  # raises when the replicas did not confirm what was just written
        self.attempt = batch.attempt
        self.first_failure = batch.first_failure
        self.gone = False  # the batch is done and gone: its last events were recorded delivered

    def already_delivered(self, items: Sequence[Item]) -> list[Item]:
        """None: a batch holds only pending events, and no pending event has been delivered (the outbox
        checks the marks when it adds an event, and lets it go when it marks it)."""
        return []

    def before_post(self) -> None:
        self.slot.renew()
        self.outbox.renew(self.batch)

    def body(self, items: Sequence[Item]) -> bytes | None:
        return self.batch.body(items)

    def delivered(self, items: Sequence[Item]) -> None:
        self.gone = self.outbox.delivered_now(self.batch, items, self.ttl, take_next=self.take_next)
        if self.confirm is not None:
            self.confirm()

    def dead_lettered(self, items: Sequence[Item], failure: Failure) -> list[DeadLetter]:
        entries = _entries(self.outbox.dead_letters, items, failure)
        self.outbox.dead_lettered(self.batch, items, entries)
        if self.confirm is not None:
            self.confirm()
        return _dead(entries)

    def retry_later(self, items: Sequence[Item], delay: float) -> bool:
        self.outbox.finish(self.batch, retry_in=delay, first_failure=self.first_failure)
        return False

    def finish(self) -> None:
        if not self.gone:
            self.outbox.finish(self.batch)


class InProcessRecord:
    """A command's delivery (`once --send`, `backfill --inline`): retries wait asleep in this process.

    With a store (Redis answers): events delivered before, or held by the outbox for the workers, are
    not sent; what is delivered is remembered for dedup_horizon, and what cannot be delivered goes to
    the dead-letter store. Without one, outcomes are only counted and reported.
    """

    def __init__(self, *, delivered: Delivered | None = None, outbox: Outbox | None = None,
                 dead_letters: DeadLetters | None = None, dedup_horizon: float = 0.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.dedup, self.outbox, self.dead_letters = delivered, outbox, dead_letters
        self.ttl, self.sleep = dedup_horizon, sleep
        self.attempt = 1
        self.first_failure: float | None = None

    @staticmethod
    def items(events: list[dict[str, Any]], query: str | None, tick: int | None) -> list[Item]:
        return [Item(event_key(e), e, query, tick) for e in events]

    def already_delivered(self, items: Sequence[Item]) -> list[Item]:
        fresh: set[int] = set()
        for (query, tick), group in by_tick(items).items():
            events = [i.event for i in group]
            if self.dedup is not None:
                events = self.dedup.undelivered(events, query, tick)
            if self.outbox is not None:
                events = self.outbox.not_pending(events, query, tick)
            fresh |= {id(e) for e in events}
        return [i for i in items if id(i.event) not in fresh]

    def before_post(self) -> None:
        pass

    def body(self, items: Sequence[Item]) -> bytes | None:
        return None

    def delivered(self, items: Sequence[Item]) -> None:
        if self.dedup is not None:
            for (query, tick), group in by_tick(items).items():
                self.dedup.mark([i.event for i in group], self.ttl, query, tick)

    def dead_lettered(self, items: Sequence[Item], failure: Failure) -> list[DeadLetter]:
        if self.dead_letters is None:
            return [DeadLetter(query, tick, len(group), None) for (query, tick), group in by_tick(items).items()]
        entries = _entries(self.dead_letters, items, failure)
        pipe = self.dead_letters.r.pipeline()
        for entry in entries:
            self.dead_letters.stage(pipe, entry)
        pipe.execute()
        return _dead(entries)

    def retry_later(self, items: Sequence[Item], delay: float) -> bool:
        self.sleep(delay)
        self.attempt += 1
        return True

    def finish(self) -> None:
        pass


class CommandDelivery:
    """Delivery in a command's own process, in requests of batching.count events, each delivered to the
    end (its retries asleep); `store`: Redis' dedup marks, outbox and dead-letter store are used."""

    def __init__(self, rt, store: bool, sleep: Callable[[float], None] = time.sleep):
        self.rt, self.store, self.sleep = rt, store, sleep
        self.tally = Tally()
        self.driver = Driver(rt.config, rt.sender.post, self.tally, rt.scrub)

    def _record(self) -> InProcessRecord:
        rt = self.rt
        if not self.store:
            return InProcessRecord(sleep=self.sleep)
        return InProcessRecord(delivered=rt.delivered, outbox=rt.outbox, dead_letters=rt.dead_letters,
                               dedup_horizon=rt.config.meterworker.dedup_horizon, sleep=self.sleep)

    def send(self, events: list[dict[str, Any]], query: str | None, tick: int | None) -> bool:
        """True when every event was delivered (or had been already)."""
        size = self.rt.config.http.batching.count
        complete = True
        for i in range(0, len(events), size):
            part = InProcessRecord.items(events[i:i + size], query, tick)
            result = self.driver.deliver(f"query {query} tick {tick}", part, self._record(),
                                         {"query": query, "tick": tick})
            complete &= result.complete
        return complete

    def summary(self) -> str:
        t = self.tally
        return (f"sent: {t.delivered} delivered, {t.already} already delivered or on their way, "
                f"{t.dead} not delivered")
