"""A small client for Prometheus' instant query API."""

import ssl
from datetime import datetime
from typing import Any

import httpx

from .redact import redact_url


class PrometheusError(Exception):
    """A query that did not give a result; the message is Prometheus' own where it gave one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _auth(cfg) -> httpx.Auth | None:
    if cfg.basic_auth is not None:
        return httpx.BasicAuth(cfg.basic_auth.username, cfg.basic_auth.password)
    return None


def _headers(cfg) -> dict[str, str]:
    headers = dict(cfg.headers)
    if cfg.bearer_token:
        headers["Authorization"] = f"Bearer {cfg.bearer_token}"
    return headers


def _verify(cfg) -> bool | ssl.SSLContext:
    if cfg.tls.skip_cert_verify:
        return False
    if cfg.tls.root_cas_file:
        return ssl.create_default_context(cafile=cfg.tls.root_cas_file)
    return True


class PrometheusClient:
    def __init__(self, cfg, transport: httpx.BaseTransport | None = None):
        self._url = cfg.url.rstrip("/")
        self._timeout = cfg.timeout
        self._client = httpx.Client(
            headers=_headers(cfg),
            auth=_auth(cfg),
            verify=_verify(cfg),
            timeout=cfg.timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def query(self, promql: str, at: datetime) -> dict[str, Any]:
        """The `data` of POST /api/v1/query evaluated at `at`."""
        endpoint = f"{self._url}/api/v1/query"
        form = {"query": promql, "time": f"{at.timestamp():.3f}", "timeout": f"{self._timeout:g}s"}
        try:
            resp = self._client.post(endpoint, data=form)
        except httpx.TimeoutException:
            raise PrometheusError(f"timed out after {self._timeout:g}s querying {redact_url(self._url)}") from None
        except httpx.HTTPError as e:
            raise PrometheusError(f"cannot reach {redact_url(self._url)}: {e}") from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(
                f"HTTP {resp.status_code} from {redact_url(endpoint)}, not a Prometheus API response: "
                f"{resp.text[:200]!r}",
                resp.status_code,
            )
        if body.get("status") != "success":
            kind = body.get("errorType", "error")
            raise PrometheusError(f"Prometheus {kind} (HTTP {resp.status_code}): {body.get('error')}", resp.status_code)
        return body["data"]
