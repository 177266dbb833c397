"""Posting batches of CloudEvents to the metering service (what the answers mean: verdicts.py)."""

import logging
from typing import Any

import httpx
import orjson

from meterworker.deadline import deadline
from meterworker.delivery import http11
from meterworker.delivery.backoff import parse_retry_after
from meterworker.delivery.verdicts import Response
from meterworker.redact import redact_headers, redact_url

log = logging.getLogger(__name__)

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
BODY_LIMIT = 2048


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
        # The client builds each request (headers, timeouts); a direct one then goes straight to the
        # transport: the client's cookie jar, auth and redirect steps do nothing for a sink and cost CPU.
        self._send = self._client.send if transport is None else self._send_direct

    def _send_direct(self, request: httpx.Request) -> httpx.Response:
        response = self._transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def close(self) -> None:
        self._client.close()

    def post(self, events: list[dict[str, Any]] | bytes) -> Response:
        """Post the events, or a JSON array of them encoded already (as the outbox holds a batch)."""
        # orjson: compact JSON as json.dumps writes it (non-ASCII as UTF-8, not \u escapes), ten times
        # faster. Values are finite: the mapping sends no NaN or Inf (it counts them as skipped).
        body = events if isinstance(events, bytes) else orjson.dumps(events)
        dump = self._dump_level is not None and log.isEnabledFor(self._dump_level)
        if dump:
            log.log(
                self._dump_level, "request %s %s headers=%s body=%s",
                self.cfg.verb, redact_url(self.cfg.url), redact_headers(self._headers),
                body[:BODY_LIMIT].decode(errors="replace"),
            )
        try:
            with deadline(self.cfg.timeout):
                r = self._send(self._client.build_request(self.cfg.verb, self.cfg.url, content=body,
                                                          headers=self._headers))
        except httpx.TimeoutException:
            return Response(None, "", error=f"timed out after {self.cfg.timeout:g}s")
        except httpx.HTTPError as e:
            return Response(None, "", error=f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - e.g. a header value HTTP cannot carry: retried, then dead-lettered
            return Response(None, "", error=f"cannot send the request: {type(e).__name__}: {e}")
        if dump:
            log.log(self._dump_level, "response %d body=%s", r.status_code, r.text[:BODY_LIMIT])
        return Response(r.status_code, r.text[:BODY_LIMIT], parse_retry_after(r.headers.get("Retry-After")))


def _version() -> str:
    from meterworker import __version__

    return __version__
