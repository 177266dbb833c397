"""The secret strings of a config (credentials in headers, URLs, auth), for scrubbing them from logs and errors."""

import collections.abc
from urllib.parse import unquote, urlsplit

from meterworker.config.models import Config
from meterworker.redact import is_sensitive_header, split_scheme


def _url_secrets(url: str | None) -> list[str]:
    if not url:
        return []
    if ";" in url and "://" in url.split(";", 1)[1]:  # a list of Sentinel URLs
        return [secret for part in url.split(";") for secret in _url_secrets(part)]
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    secrets = [parts.password or "", unquote(parts.password or "")]
    for param in parts.query.split("&"):
        name, _, value = param.partition("=")
        if is_sensitive_header(unquote(name)):
            secrets += [value, unquote(value)]
    return secrets


def _header_secrets(headers: collections.abc.Mapping[str, str]) -> list[str]:
    secrets = []
    for name, value in headers.items():
        if is_sensitive_header(name):
            secrets += [value, split_scheme(value)[1]]
    return secrets


def secret_values(config: Config) -> list[str]:
    """Every secret string in the config, for scrubbing logs; no empty strings, no repeats."""
    prometheus = config.input.prometheus
    http = config.http
    candidates = (
        _header_secrets(prometheus.headers)
        + _header_secrets(http.headers)
        + [prometheus.bearer_token or "", prometheus.basic_auth.password if prometheus.basic_auth else ""]
        + _url_secrets(prometheus.url)
        + _url_secrets(http.url)
        + _url_secrets(config.meterworker.redis_url)
        + _url_secrets(config.meterworker.broker_url)
        + [config.meterworker.redis_sentinel.password or ""]
    )
    return list(dict.fromkeys(s for s in candidates if s and s.strip()))
