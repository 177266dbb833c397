"""Posting batches of CloudEvents to the metering service and sorting out what happened."""

from http import HTTPStatus
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import httpx
import orjson

from meterworker.delivery import http11
from meterworker.delivery.backoff import parse_retry_after
from meterworker.redact import redact_headers, redact_url

log = logging.getLogger(__name__)

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
BODY_LIMIT = 2048


@dataclass
class Response:
    status: int | None
    body: str
    retry_after: float | None = None
    error: str | None = None


@dataclass
class Rejected:
    events: list[dict[str, Any]]
    status: int | None
    body: str
    reason: str


@dataclass
class Outcome:
    delivered: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    last: Response | None = None

    @property
    def retry_after(self) -> float | None:
        return self.last.retry_after if self.last else None


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


def classify(resp: Response, drop_on: list[int], error_patterns: list[str]) -> str:
    """'ok', 'drop' (never retried) or 'retry'."""
    if resp.status is not None and 200 <= resp.status < 300:
        return "ok"
    if resp.status in drop_on:
        return "drop"
    if _matched_pattern(resp, error_patterns) is not None:
        return "drop"
    if resp.status is None or resp.status == 429 or resp.status >= 500 or resp.status in (408, 425):
        return "retry"
    # Any other 4xx will not get better by itself: it waits in the dead-letter store.
    return "drop"


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


@dataclass
class Step:
    """One request and what it means for its events: 'ok', 'drop', 'retry', or 'split' (posted again in halves)."""

    events: list[dict[str, Any]]
    response: Response
    verdict: str


def attempt(
    events: list[dict[str, Any]],
    post: Callable[[list[dict[str, Any]]], Response],
    drop_on: list[int],
    error_patterns: list[str],
) -> Iterator[Step]:
    """Post `events` once, yielding each request's outcome as soon as it is known.

    A batch refused with a status that some of its events may cause (400, 413, 422) is split in
    halves until the refused events are alone, so that the others are delivered. A retryable
    failure ends the attempt: its step holds every event not yet settled.
    """
    pending = [events] if events else []
    while pending:
        batch = pending.pop(0)
        resp = post(batch)
        verdict = classify(resp, drop_on, error_patterns)
        if verdict == "retry":
            yield Step(batch + [e for rest in pending for e in rest], resp, "retry")
            return
        if verdict == "drop" and len(batch) > 1 and resp.status in SPLIT_ON:
            half = len(batch) // 2
            pending[:0] = [batch[:half], batch[half:]]
            verdict = "split"
        yield Step(batch, resp, verdict)


def deliver(
    events: list[dict[str, Any]],
    post: Callable[[list[dict[str, Any]]], Response],
    drop_on: list[int],
    error_patterns: list[str],
) -> Outcome:
    """Post `events` once and sort them into delivered, rejected and to be retried."""
    out = Outcome()
    for step in attempt(events, post, drop_on, error_patterns):
        out.last = step.response
        if step.verdict == "ok":
            out.delivered.extend(step.events)
        elif step.verdict == "retry":
            out.retry.extend(step.events)
        elif step.verdict == "drop":
            resp = step.response
            out.rejected.append(Rejected(step.events, resp.status, resp.body, rejection_reason(resp, error_patterns)))
    return out


def _log_level(name: str | None) -> int | None:
    """The level of request dumps (`dump_request_log_level`); None: no dumps."""
    if not name or not name.strip():
        return None
    name = name.strip().upper()
    return {"TRACE": logging.DEBUG, "WARN": logging.WARNING}.get(name) or logging.getLevelName(name)


class Sender:
    """Posts JSON arrays of events to the sink described by an http_client config."""

    def __init__(self, http_cfg, transport: httpx.BaseTransport | None = None):
        self.cfg = http_cfg
        headers = dict(http_cfg.headers)
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = BATCH_CONTENT_TYPE
        self._headers = headers
        self._dump_level = _log_level(http_cfg.dump_request_log_level)
        # Direct connections go through http11's transport (a fraction of httpx's own CPU per request, see
        # docs/benchmarks.md); proxies from the environment through httpx's, which is the one that reads them.
        url = str(http_cfg.url)
        if transport is None and http11.direct(url):
            transport = http11.Transport(httpx.create_ssl_context() if url.startswith("https:") else None)
        self._transport = transport
        self._client = httpx.Client(timeout=http_cfg.timeout, transport=transport,
                                    headers={"User-Agent": f"meterworker/{_version()}"})

    def close(self) -> None:
        self._client.close()

    def post(self, events: list[dict[str, Any]]) -> Response:
        # orjson: compact JSON as json.dumps writes it (non-ASCII as UTF-8, not \u escapes), ten times
        # faster. Values are finite: the mapping sends no NaN or Inf (it counts them as skipped).
        body = orjson.dumps(events)
        dump = self._dump_level is not None and log.isEnabledFor(self._dump_level)
        if dump:
            log.log(
                self._dump_level, "request %s %s headers=%s body=%s",
                self.cfg.verb, redact_url(self.cfg.url), redact_headers(self._headers),
                body[:BODY_LIMIT].decode(errors="replace"),
            )
        try:
            r = self._client.request(self.cfg.verb, self.cfg.url, content=body, headers=self._headers)
        except httpx.TimeoutException:
            return Response(None, "", error=f"timed out after {self.cfg.timeout:g}s")
        except httpx.HTTPError as e:
            return Response(None, "", error=f"{type(e).__name__}: {e}")
        if dump:
            log.log(self._dump_level, "response %d body=%s", r.status_code, r.text[:BODY_LIMIT])
        return Response(r.status_code, r.text[:BODY_LIMIT], parse_retry_after(r.headers.get("Retry-After")))


def _version() -> str:
    from meterworker import __version__

    return __version__
