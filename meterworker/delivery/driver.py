"""The one delivery driver: post, split what the sink refuses, record each outcome as it comes, then
retry with backoff or give up to the dead-letter store.

The send task, `backfill --inline` and `once --send` all deliver through `Driver.deliver`. They differ
in where outcomes are recorded (a `Record`: the outbox in Redis, or memory, see records.py) and in
where a retry waits (in the outbox for a send worker, asleep in the process for the commands).
Recording at once means that a process dying half-way repeats at most the request it was making.
"""

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

from meterworker.delivery.backoff import retry_delay
from meterworker.delivery.verdicts import (
    Response, Verdict, classify, describe, give_up_reason, gives_up, rejection_reason, same_refusal, splits,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pending(Protocol):
    """An event on its way, and the query and tick it belongs to (outbox.Item is one)."""

    event: dict[str, Any]
    query: str | None
    tick: int | None


@dataclass
class Failure:
    """Why events could not be delivered, as the dead-letter store keeps it."""

    reason: str
    response: Response
    attempts: int
    first_failure: float


@dataclass
class DeadLetter:
    """Where the events of one query and tick went when they could not be delivered."""

    query: str | None
    tick: int | None
    events: int
    entry: str | None  # the dead-letter entry's id; None when no store could take them


class Record(Protocol):
    """The state delivery records, outcome by outcome."""

    attempt: int                 # this attempt's number, 1 for the first
    first_failure: float | None  # when the first failed attempt failed

    def already_delivered(self, items: Sequence[Pending]) -> list[Pending]:
        """Those of `items` delivered before (or on their way elsewhere): let go without a request."""

    def before_post(self) -> None:
        """Called before every request (a send worker renews its leases here)."""

    def body(self, items: Sequence[Pending]) -> bytes | None:
        """The request body for `items` when the record holds it already encoded, else None."""

    def delivered(self, items: Sequence[Pending]) -> None: ...

    def dead_lettered(self, items: Sequence[Pending], failure: Failure) -> list[DeadLetter]: ...

    def retry_later(self, items: Sequence[Pending], delay: float) -> bool:
        """`items` are tried again in `delay` seconds. True: the caller tries again at once (the record
        waited the delay and counted the attempt); False: they wait elsewhere, and this attempt ends."""

    def finish(self) -> None:
        """This attempt is over and nothing of it waits for a retry."""


class Observer(Protocol):
    """Counts what delivery does: the workers' Prometheus metrics, a command's summary."""

    def posted(self, query: str | None, events: int) -> None: ...
    def responded(self, status: int | None) -> None: ...
    def sent(self, query: str | None, events: int) -> None: ...
    def dead_lettered(self, query: str | None, events: int) -> None: ...
    def skipped(self, query: str | None, events: int) -> None: ...
    def retried(self, query: str | None) -> None: ...


class Tally:
    """An Observer that adds up the events of each outcome, for a command's summary."""

    def __init__(self):
        self.delivered = self.dead = self.already = self.retries = 0

    def posted(self, query, events): pass
    def responded(self, status): pass
    def sent(self, query, events): self.delivered += events
    def dead_lettered(self, query, events): self.dead += events
    def skipped(self, query, events): self.already += events
    def retried(self, query): self.retries += 1


@dataclass
class Result:
    """What one call of Driver.deliver did with its events."""

    delivered: int = 0
    skipped: int = 0   # delivered before, or on their way elsewhere
    dead: int = 0      # dead-lettered (or reported, where no store could take them)
    waiting: int = 0   # wait elsewhere for their retry

    @property
    def complete(self) -> bool:
        """Every event was delivered, or had been."""
        return self.dead == 0 and self.waiting == 0


@dataclass
class Step:
    """One request and what it means for its events."""

    events: list
    response: Response
    verdict: Verdict


def steps(items: list[T], post: Callable[[list[T]], Response], drop_on: list[int],
          error_patterns: list[str]) -> Iterator[Step]:
    """Post `items` once, yielding each request's outcome as soon as it is known.

    A batch refused with a status that some of its events may cause (verdicts.splits) is split in
    halves until the refused events are alone, so that the others are delivered; when both halves are
    refused for the same reason (verdicts.same_refusal), the events are not what the sink refuses, so
    the batch is not split further and goes to the dead-letter store whole. A retryable failure ends
    the attempt: its step holds every event not yet settled.
    """
    pending: list[tuple[list[T], Response | None]] = [(items, None)] if items else []
    while pending:
        part, resp = pending.pop(0)
        resp = resp or post(part)
        verdict = classify(resp, drop_on, error_patterns)
        if verdict is Verdict.DROP and splits(resp, len(part)):
            yield Step(part, resp, Verdict.SPLIT)
            half = len(part) // 2
            left, right = part[:half], part[half:]
            left_resp = post(left)
            if classify(left_resp, drop_on, error_patterns) is not Verdict.DROP:
                pending[:0] = [(left, left_resp), (right, None)]
                continue
            right_resp = post(right)
            if classify(right_resp, drop_on, error_patterns) is Verdict.DROP and same_refusal(left_resp, right_resp):
                yield Step(part, right_resp, Verdict.DROP)
            else:
                pending[:0] = [(left, left_resp), (right, right_resp)]
            continue
        if verdict is Verdict.RETRY:
            yield Step(part + [e for rest, _ in pending for e in rest], resp, verdict)
            return
        yield Step(part, resp, verdict)


def by_query(items: Sequence[Pending]) -> dict[str | None, int]:
    return Counter(i.query for i in items)


class Driver:
    def __init__(self, config, post: Callable[[list[dict] | bytes], Response], observer: Observer,
                 scrub: Callable[[str], str] = lambda text: text):
        self.http = config.http
        self.error_patterns = config.error_patterns
        self.post, self.observer, self.scrub = post, observer, scrub
        self.label = config.output.label

    def deliver(self, name: str, items: Sequence[Pending], record: Record, extra: dict | None = None) -> Result:
        """Deliver `items` (`name` says what they are in log lines): one attempt, or for a record that
        waits in this process, every attempt until nothing is left to retry."""
        extra = {**({"output": self.label} if self.label else {}), **(extra or {})}
        result = Result()
        done = record.already_delivered(items)
        if done:
            settled = {id(i) for i in done}
            items = [i for i in items if id(i) not in settled]
            result.skipped = len(done)
            self._count(self.observer.skipped, done)
            log.info("%s: %d events were delivered before or are on their way; not sent again", name, len(done),
                     extra=extra)
        todo = list(items)
        while todo:
            todo = self._attempt(name, todo, record, result, extra)
            if todo is None:
                return result
        record.finish()
        log.info("%s: %d events delivered", name, result.delivered, extra=extra)
        return result

    def _attempt(self, name, todo, record, result, extra) -> list | None:
        """One attempt: what to try again now, [] when nothing is, None when the rest waits elsewhere."""

        def post(items):
            record.before_post()
            queries = {i.query for i in items}
            self.observer.posted(queries.pop() if len(queries) == 1 else None, len(items))
            body = record.body(items)
            resp = self.post(body if body is not None else [i.event for i in items])
            self.observer.responded(resp.status)
            return resp

        for step in steps(todo, post, self.http.drop_on, self.error_patterns):
            items, resp = step.events, step.response
            if step.verdict is Verdict.OK:
                record.delivered(items)
                self._count(self.observer.sent, items)
                result.delivered += len(items)
            elif step.verdict is Verdict.SPLIT:
                log.info("%s: %d events refused with %s; splitting to find the bad ones", name, len(items),
                         describe(resp), extra=extra)
            elif step.verdict is Verdict.DROP:
                self._dead_letter(items, rejection_reason(resp, self.error_patterns), resp, record, result, extra)
            else:
                return self._retry_or_give_up(name, items, resp, record, result, extra)
        return []

    def _retry_or_give_up(self, name, items, resp, record, result, extra) -> list | None:
        http = self.http
        record.first_failure = record.first_failure or time.time()
        if gives_up(record.attempt, http.retries):
            self._dead_letter(items, give_up_reason(record.attempt, resp), resp, record, result, extra)
            return []
        delay = retry_delay(record.attempt, http.retry_period, http.max_retry_backoff, resp.retry_after)
        for query in by_query(items):
            self.observer.retried(query)
        log.warning("%s: %d events not delivered (%s), attempt %d of %d; retrying in %.1fs", name, len(items),
                    self.scrub(describe(resp)), record.attempt, http.retries + 1, delay, extra=extra)
        if record.retry_later(items, delay):
            return items
        result.waiting += len(items)
        return None

    def _dead_letter(self, items, reason, resp, record, result, extra) -> None:
        failure = Failure(reason, resp, record.attempt, record.first_failure or time.time())
        for dead in record.dead_lettered(items, failure):
            where = f"dead-lettered as {dead.entry}" if dead.entry else "not delivered"
            log.error("%d events of query %s %s: %s: %s", dead.events, dead.query, where, self.scrub(reason),
                      self.scrub((resp.body or "")[:300]), extra={**extra, "query": dead.query, "tick": dead.tick})
        result.dead += len(items)
        self._count(self.observer.dead_lettered, items)

    @staticmethod
    def _count(count: Callable[[str | None, int], None], items: Sequence[Pending]) -> None:
        for query, n in by_query(items).items():
            count(query, n)
