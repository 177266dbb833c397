"""Keeping credentials out of logs, error messages and the dead-letter store."""

import collections.abc
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from meterworker.config import Config

__all__ = ["MASK", "SENSITIVE_HEADERS", "is_sensitive_header", "redact_headers", "redact_url", "secret_values"]

MASK = "****"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"})
_SENSITIVE_WORDS = ("token", "secret", "key", "password", "auth", "cookie")


def is_sensitive_header(name: str) -> bool:
    """Whether a header (or URL parameter) of this name carries a credential."""
    lowered = name.lower()
    return lowered in SENSITIVE_HEADERS or any(word in lowered for word in _SENSITIVE_WORDS)


def _split_scheme(value: str) -> tuple[str, str]:
    """'Bearer abc' -> ('Bearer', 'abc'); a value without a scheme word -> ('', value)."""
    scheme, sep, credential = value.strip().partition(" ")
    if sep and scheme.isalpha() and credential.strip():
        return scheme, credential.strip()
    return "", value


def _mask(value: str) -> str:
    if not value:
        return value
    scheme, _ = _split_scheme(value)
    return f"{scheme} {MASK}" if scheme else MASK


def redact_headers(headers: collections.abc.Mapping[str, str]) -> dict[str, str]:
    """A copy of the headers with credential values masked, e.g. 'Bearer ****'."""
    return {name: _mask(value) if is_sensitive_header(name) else value for name, value in headers.items()}


def redact_url(url: str) -> str:
    """The URL with its userinfo password and credential-like query parameters masked.

    A kombu-style list (``sentinel://:pw@h1:26379;sentinel://:pw@h2:26379/0``) has every part masked.
    A password with characters a URL cannot hold unquoted ('/', '#', '?') is masked whole."""
    if ";" in url and "://" in url.split(";", 1)[1]:
        return ";".join(_redact_one(part) for part in url.split(";"))
    return _redact_one(url)


def _redact_one(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, after = rest.rpartition("@")
    if sep and at and ":" in userinfo and not any(c in userinfo.split(":", 1)[0] for c in "/?#"):
        url = f"{scheme}://{userinfo.split(':', 1)[0]}:{MASK}@{after}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # cannot tell what in it is secret
    query = "&".join(_redact_param(param) for param in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _redact_param(param: str) -> str:
    name, eq, value = param.partition("=")
    if eq and value and is_sensitive_header(unquote(name)):
        return f"{name}={MASK}"
    return param


def _url_secrets(url: str | None) -> list[str]:
    if not url:
        return []
    if ";" in url and "://" in url.split(";", 1)[1]:
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
            secrets += [value, _split_scheme(value)[1]]
    return secrets


def secret_values(config: "Config") -> list[str]:
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
