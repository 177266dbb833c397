"""Keeping credentials out of logs, error messages and the dead-letter store."""

import collections.abc
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["MASK", "SENSITIVE_HEADERS", "is_sensitive_header", "redact_headers", "redact_url", "split_scheme"]

MASK = "****"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"})
_SENSITIVE_WORDS = ("token", "secret", "key", "password", "auth", "cookie")


def is_sensitive_header(name: str) -> bool:
    """Whether a header (or URL parameter) of this name carries a credential."""
    lowered = name.lower()
    return lowered in SENSITIVE_HEADERS or any(word in lowered for word in _SENSITIVE_WORDS)


def split_scheme(value: str) -> tuple[str, str]:
    """'Bearer abc' -> ('Bearer', 'abc'); a value without a scheme word -> ('', value)."""
    scheme, sep, credential = value.strip().partition(" ")
    if sep and scheme.isalpha() and credential.strip():
        return scheme, credential.strip()
    return "", value


def _mask(value: str) -> str:
    if not value:
        return value
    scheme, _ = split_scheme(value)
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
