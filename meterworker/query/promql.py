"""PromQL text: `$__interval` expansion, and the literal ranges of range selectors (for validate's warning)."""

import re
from collections.abc import Iterator

from meterworker.durations import format_prom_duration
from meterworker.schedule.windows import Window


_INTERVAL = re.compile(r"\$\{__interval\}|\$__interval\b")


def expand_interval(promql: str, window: Window) -> str:
    """Replace `$__interval` and `${__interval}` with the window's length, e.g. '60s'."""
    duration = format_prom_duration(window.seconds)
    return _INTERVAL.sub(lambda _: duration, promql)


_DURATION_LITERAL = re.compile(r"(?:\d+(?:ms|[smhdwy]))+|\d+(?:\.\d+)?")


def range_selectors(promql: str) -> list[str]:
    """The literal durations of range selectors and subqueries, e.g. ['1m', '5m'].

    In `x[5m:1m]` only the range (5m) counts; `[$__interval]` is skipped since it
    always equals the window. Brackets inside strings and comments are ignored.
    """
    found = []
    for inside in _bracket_contents(promql):
        duration = inside.split(":", 1)[0].strip()
        if _DURATION_LITERAL.fullmatch(duration):
            found.append(duration)
    return found


def _bracket_contents(promql: str) -> Iterator[str]:
    i, n = 0, len(promql)
    while i < n:
        c = promql[i]
        if c in "\"'`":
            i = _end_of_string(promql, i)
        elif c == "#":
            newline = promql.find("\n", i)
            i = n if newline < 0 else newline
        elif c == "[":
            close = promql.find("]", i)
            if close < 0:
                return
            yield promql[i + 1 : close]
            i = close
        i += 1


def _end_of_string(promql: str, start: int) -> int:
    """Index of the quote closing the string literal opened at start."""
    quote, i = promql[start], start + 1
    while i < len(promql) and promql[i] != quote:
        i += 2 if promql[i] == "\\" and quote != "`" else 1
    return i
