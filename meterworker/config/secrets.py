"""The secret strings of a config (credentials in headers, URLs, auth), for scrubbing them from logs and errors.

A secret is also looked for in the forms it takes on its way: escaped as repr() and JSON write it
(a line break as the two characters `\\n`), URL-encoded, and `user:password` as base64 (basic auth,
URL userinfo), so that an error message, a response body that echoes a header, or a log line
shows none of them. Whitespace around a secret is stripped at load time (`strip_secrets`).
"""

import base64
import collections.abc
import json
from urllib.parse import quote, quote_plus, unquote, urlsplit

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


def _basic(username: str, password: str) -> str:
    """The credential of an `Authorization: Basic` header, as httpx and every client write it."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def _header_secrets(headers: collections.abc.Mapping[str, str]) -> list[str]:
    secrets = []
    for name, value in headers.items():
        if is_sensitive_header(name):
            secrets += [value, split_scheme(value)[1]]
    return secrets


def _derived(secret: str) -> list[str]:
    """The forms a secret takes in text that quoted, escaped or encoded it."""
    return [secret, secret.strip(), repr(secret)[1:-1], json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""), quote_plus(secret)]


def secret_values(config: Config) -> list[str]:
    """Every secret string in the config, as written there; no empty strings, no repeats."""
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


def _basic_credentials(config: Config) -> list[str]:
    """`user:password` as base64, for basic_auth and for every URL with userinfo."""
    pairs = []
    auth = config.input.prometheus.basic_auth
    if auth is not None and auth.password:
        pairs.append((auth.username, auth.password))
    for url in (config.input.prometheus.url, config.http.url, config.meterworker.redis_url):
        try:
            parts = urlsplit(url or "")
        except ValueError:
            continue
        if parts.password:
            pairs.append((unquote(parts.username or ""), unquote(parts.password)))
    return [_basic(user, password) for user, password in pairs]


def secret_forms(config: Config) -> list[str]:
    """Every secret of the config in every form text may show it (escaped, URL-encoded, basic auth's base64),
    for scrubbing; no empty strings, no repeats."""
    forms = [form for s in secret_values(config) for form in _derived(s)] + _basic_credentials(config)
    return list(dict.fromkeys(s for s in forms if s and s.strip()))


_HEADER_SECTIONS = (("input", "prometheus"), ("output", "http_client"), ("output", "output", "http_client"))


def _at(data, path: tuple) -> dict | None:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else None


def _stripped(section: dict, key, path: tuple, warnings: list, chars: str | None = None) -> None:
    value = section.get(key)
    if not isinstance(value, str) or value.strip(chars) == value or not value.strip(chars):
        return
    section[key] = value.strip(chars)
    what = "a line break" if "\n" in value or "\r" in value else "whitespace"
    warnings.append((path + (key,), f"{what} around the value removed (as a value copied from a file or a "
                                    f"Kubernetes Secret has); the value is used without it"))


def strip_secrets(data: dict) -> list[tuple[tuple, str]]:
    """Strip whitespace around header values, bearer_token and a basic_auth password (only line breaks
    there: a space may belong to a password) in a raw config tree; (path, warning) for each one stripped.
    HTTP itself ignores whitespace around a header value, so none of it can be meant."""
    warnings: list[tuple[tuple, str]] = []
    for path in _HEADER_SECTIONS:
        headers = _at(data, path + ("headers",))
        for name in list(headers or ()):
            _stripped(headers, name, path + ("headers",), warnings)
    prometheus = _at(data, ("input", "prometheus"))
    if prometheus is not None:
        _stripped(prometheus, "bearer_token", ("input", "prometheus"), warnings)
        auth = _at(prometheus, ("basic_auth",))
        if auth is not None:
            _stripped(auth, "password", ("input", "prometheus", "basic_auth"), warnings, "\r\n")
            _stripped(auth, "username", ("input", "prometheus", "basic_auth"), warnings)
    return warnings
