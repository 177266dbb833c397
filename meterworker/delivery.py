"""Posting batches of CloudEvents to the metering service and sorting out what happened."""

import json
from http import HTTPStatus
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from .backoff import parse_retry_after
from .redact import redact_headers

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


def _error_text(resp: Response) -> str:
    try:
        phrase = HTTPStatus(resp.status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {resp.status} {phrase}: {resp.body}"


def classify(resp: Response, drop_on: list[int], error_patterns: list[str]) -> str:
    """'ok', 'drop' (never retried) or 'retry'."""
    if resp.status is not None and 200 <= resp.status < 300:
        return "ok"
    if resp.status in drop_on:
        return "drop"
    if resp.status is not None and any(p in _error_text(resp) for p in error_patterns):
        return "drop"
    if resp.status is None or resp.status == 429 or resp.status >= 500 or resp.status in (408, 425):
        return "retry"
    # Any other 4xx will not get better by itself: it waits in the dead-letter store.
    return "drop"


def deliver(
    events: list[dict[str, Any]],
    post: Callable[[list[dict[str, Any]]], Response],
    drop_on: list[int],
    error_patterns: list[str],
) -> Outcome:
    """Post `events`; on a drop status, split the batch to find the bad events and deliver the rest."""
    out = Outcome()
    pending = [events] if events else []
    while pending:
        batch = pending.pop(0)
        resp = post(batch)
        out.last = resp
        verdict = classify(resp, drop_on, error_patterns)
        if verdict == "ok":
            out.delivered.extend(batch)
        elif verdict == "retry":
            out.retry.extend(batch)
        elif len(batch) > 1:
            half = len(batch) // 2
            pending[:0] = [batch[:half], batch[half:]]
        else:
            reason = f"rejected with HTTP {resp.status}" if resp.status else "rejected"
            out.rejected.append(Rejected(batch, resp.status, resp.body, reason))
    return out


class Sender:
    """Posts JSON arrays of events to the sink described by an http_client config."""

    def __init__(self, http_cfg, transport: httpx.BaseTransport | None = None):
        self.cfg = http_cfg
        headers = dict(http_cfg.headers)
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = BATCH_CONTENT_TYPE
        self._headers = headers
        self._dump = bool(http_cfg.dump_request_log_level)
        self._client = httpx.Client(timeout=http_cfg.timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def post(self, events: list[dict[str, Any]]) -> Response:
        body = json.dumps(events, separators=(",", ":"), allow_nan=False)
        if self._dump and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request %s %s headers=%s body=%s",
                self.cfg.verb, self.cfg.url, redact_headers(self._headers), body[:BODY_LIMIT],
            )
        try:
            r = self._client.request(self.cfg.verb, self.cfg.url, content=body, headers=self._headers)
        except httpx.TimeoutException:
            return Response(None, "", error=f"timed out after {self.cfg.timeout:g}s")
        except httpx.HTTPError as e:
            return Response(None, "", error=f"{type(e).__name__}: {e}")
        return Response(r.status_code, r.text[:BODY_LIMIT], parse_retry_after(r.headers.get("Retry-After")))
