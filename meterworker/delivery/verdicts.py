"""What a response of the metering service means for the events it answered: plain data, no HTTP."""

from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus


@dataclass
class Response:
    status: int | None
    body: str
    retry_after: float | None = None
    error: str | None = None


class Verdict(StrEnum):
    OK = "ok"        # delivered
    DROP = "drop"    # never retried: dead-lettered with the reason
    RETRY = "retry"  # may get better: tried again later, or given up on after `retries`
    SPLIT = "split"  # refused for what some of the events may hold: posted again in halves


# Statuses that can be caused by some events of a batch: splitting the batch finds them.
SPLIT_ON = (400, 413, 422)


def _error_text(resp: Response) -> str:
    try:
        phrase = HTTPStatus(resp.status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {resp.status} {phrase}: {resp.body}"


def _matched_pattern(resp: Response, error_patterns: list[str]) -> str | None:
    if resp.status is None:
        return None
    text = _error_text(resp)
    return next((p for p in error_patterns if p in text), None)


def classify(resp: Response, drop_on: list[int], error_patterns: list[str]) -> Verdict:
    """OK, DROP (never retried) or RETRY."""
    if resp.status is not None and 200 <= resp.status < 300:
        return Verdict.OK
    if resp.status in drop_on:
        return Verdict.DROP
    if _matched_pattern(resp, error_patterns) is not None:
        return Verdict.DROP
    if resp.status is None or resp.status == 429 or resp.status >= 500 or resp.status in (408, 425):
        return Verdict.RETRY
    # Any other 4xx will not get better by itself: it waits in the dead-letter store.
    return Verdict.DROP


def splits(resp: Response, events: int) -> bool:
    """Whether a refusal of `events` events is posted again in halves: some of them may cause it."""
    return events > 1 and resp.status in SPLIT_ON


def same_refusal(a: Response, b: Response) -> bool:
    """Whether two refusals give the same reason (status and body): then no event of either part is what
    the sink refuses, or all of them are, and splitting further would not tell them apart."""
    return a.status == b.status and a.body == b.body


def describe(resp: Response) -> str:
    """What went wrong, in a few words: 'HTTP 503 Service Unavailable' or the connection error."""
    if resp.status is None:
        return resp.error or "no response"
    try:
        return f"HTTP {resp.status} {HTTPStatus(resp.status).phrase}"
    except ValueError:
        return f"HTTP {resp.status}"


def rejection_reason(resp: Response, error_patterns: list[str]) -> str:
    pattern = _matched_pattern(resp, error_patterns)
    if pattern is not None:
        return f"rejected: the response ({describe(resp)}) matches error pattern {pattern!r}"
    return f"rejected with {describe(resp)}"


def gives_up(attempt: int, retries: int) -> bool:
    """Whether attempt number `attempt` (1 for the first) that failed is the last: `retries` retries were made."""
    return attempt > retries


def give_up_reason(attempts: int, resp: Response) -> str:
    return f"gave up after {attempts} attempts: {describe(resp)}"
