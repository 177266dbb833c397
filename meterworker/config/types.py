"""The value types of config fields: durations, names, URLs, time zones, files, HTTP statuses."""

import math
import os
import re
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator

from meterworker.durations import format_go_duration, parse_duration
from meterworker.config.errors import describe
from meterworker.connect.urls import UrlError, is_amqp_url, parse_redis_url
from meterworker.redact import redact_url




MAX_DURATION = 100 * 365 * 86400.0  # longer than any schedule, offset or horizon; far below datetime's range
MIN_POSITIVE_DURATION = 0.001  # a timeout, period or interval shorter than 1ms is a typo


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30s' or '1m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = parse_duration(value)
    else:
        raise ValueError(f"expected a duration such as '30s' or '1m', got {describe(value)}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    if abs(seconds) > MAX_DURATION:
        raise ValueError(f"{value!r} is too long: a duration here is at most {format_go_duration(MAX_DURATION)} "
                         f"({MAX_DURATION // 86400:.0f} days)")
    return seconds


def _not_negative(seconds: float) -> float:
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    if seconds < MIN_POSITIVE_DURATION:
        raise ValueError(f"must be at least 1ms, got {format_go_duration(seconds)}")
    return seconds


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def _name(text: str) -> str:
    _not_blank(text)
    if not _NAME.fullmatch(text):
        raise ValueError(f"{text!r} may only contain letters, digits, '_', '.', ':' and '-'")
    return text


def _http_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number
    except ValueError as e:
        raise ValueError(f"not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {redact_url(url)!r}")
    return url


def _redis_url(url: str) -> str:
    parse_redis_url(url)  # UrlError is a ValueError with a message naming the problem
    return url


def _broker_url(url: str) -> str:
    if not is_amqp_url(url):
        try:
            parse_redis_url(url)
        except UrlError as e:
            raise ValueError(f"{e}; or an amqp:// URL (RabbitMQ)") from None
    elif not urlsplit(url).hostname:
        raise ValueError(f"the URL has no host: {redact_url(url)!r}")
    return url


def timezone_name(name: str) -> str:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'") from None
    return name


def _existing_file(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"file not found: {path!r}")
    return path


def _http_status(code: int) -> int:
    if not 100 <= code <= 599:
        raise ValueError(f"{code} is not an HTTP status code (100-599)")
    return code


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names and values HTTP can carry; a bad value is described, never shown (it may be a secret)."""
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)")
        bad = next((i for i, c in enumerate(value) if (ord(c) < 0x20 and c != "\t") or ord(c) >= 0x7f), None)
        if bad is not None:
            kind = "a line break" if value[bad] in "\r\n" else (
                "a control character" if ord(value[bad]) < 0x20 or ord(value[bad]) == 0x7f else "a non-ASCII character")
            raise ValueError(f"the value of header {name!r} holds {kind} at position {bad + 1}, "
                             "which HTTP cannot send (the value is not shown: it may be a secret)")
    return headers


def _credential(text: str) -> str:
    bad = next((i for i, c in enumerate(text) if ord(c) < 0x20 or ord(c) >= 0x7f), None)
    if bad is not None:
        raise ValueError(f"holds a line break, control or non-ASCII character at position {bad + 1}, which HTTP "
                         "cannot send in a header (the value is not shown: it may be a secret)")
    return text


Duration = Annotated[float, BeforeValidator(_seconds), AfterValidator(_not_negative)]
PositiveDuration = Annotated[float, BeforeValidator(_seconds), AfterValidator(_positive)]
NonEmptyStr = Annotated[str, AfterValidator(_not_blank)]
Name = Annotated[str, AfterValidator(_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HttpStatus = Annotated[int, AfterValidator(_http_status)]
RedisUrl = Annotated[str, AfterValidator(_redis_url)]
BrokerUrl = Annotated[str, AfterValidator(_broker_url)]
ExistingFile = Annotated[str, AfterValidator(_existing_file)]
TimeZone = Annotated[str, AfterValidator(timezone_name)]
Headers = Annotated[dict[str, str], AfterValidator(_headers)]
Credential = Annotated[str, AfterValidator(_credential)]
