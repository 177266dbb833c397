"""A PromQL series selector, `name{label op "value", ...}`, parsed: what counter mode accepts and nothing more
(no function, aggregation, range, offset, @ or operator)."""

import re
from dataclasses import dataclass

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


class SelectorError(ValueError):
    """Not a plain series selector; the message says what was found."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def promql(self) -> str:
        return f"{self.label}{self.op}{quote(self.value)}"


@dataclass(frozen=True)
class Selector:
    metric: str | None
    matchers: tuple[Matcher, ...]

    def promql(self) -> str:
        """The selector in a canonical spelling, safe to embed in a larger expression."""
        inner = ",".join(m.promql() for m in self.matchers)
        return f"{self.metric or ''}{{{inner}}}" if inner or not self.metric else self.metric


def quote(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


def _string(text: str, i: int) -> tuple[str, int]:
    quote_char = text[i]
    if quote_char not in "\"'`":
        raise SelectorError(f"expected a quoted label value at position {i + 1}, found {text[i:i + 10]!r}")
    out, i = [], i + 1
    while i < len(text):
        c = text[i]
        if c == quote_char:
            return "".join(out), i + 1
        if c == "\\" and quote_char != "`":
            if i + 1 >= len(text):
                break
            e = text[i + 1]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            if e in "xuU" or e.isdigit():
                size = {"x": 2, "u": 4, "U": 8}.get(e)
                digits = text[i + 2:i + 2 + size] if size else text[i + 1:i + 4]
                try:
                    out.append(chr(int(digits, 16 if size else 8)))
                except ValueError:
                    raise SelectorError(f"bad escape \\{e} in a label value at position {i + 1}") from None
                i += 2 + size if size else 4
                continue
            raise SelectorError(f"unknown escape \\{e} in a label value at position {i + 1}")
        out.append(c)
        i += 1
    raise SelectorError("a label value's quotes are not closed")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


_KEYWORDS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
             "count_values", "group", "by", "without", "offset", "bool", "and", "or", "unless", "on",
             "ignoring", "group_left", "group_right", "atan2"}


def parse_selector(text: str) -> Selector:
    """`text` as a series selector, or SelectorError saying why it is not one."""
    i = _skip_space(text, 0)
    if i == len(text):
        raise SelectorError("empty: give a series selector such as 'http_requests_total{job=\"api\"}'")
    metric = None
    m = _NAME.match(text, i)
    if m:
        metric = m.group(0)
        i = _skip_space(text, m.end())
        if i < len(text) and text[i] == "(":
            kind = "an aggregation" if metric in _KEYWORDS else "a function call"
            raise SelectorError(f"{kind} ({metric}(...)); counter mode takes a plain series selector "
                                f"and computes the growth itself")
        if metric in _KEYWORDS and i < len(text):
            raise SelectorError(f"an aggregation or keyword ({metric}); counter mode takes a plain series selector")
    matchers: list[Matcher] = []
    if i < len(text) and text[i] == "{":
        i = _skip_space(text, i + 1)
        while i < len(text) and text[i] != "}":
            lm = _LABEL.match(text, i)
            if lm:
                label, i = lm.group(0), _skip_space(text, lm.end())
            elif text[i] in "\"'`":
                label, i = _string(text, i)
                i = _skip_space(text, i)
            else:
                raise SelectorError(f"expected a label name at position {i + 1}, found {text[i:i + 10]!r}")
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                raise SelectorError(f"expected one of = != =~ !~ after {label!r} at position {i + 1}")
            i = _skip_space(text, i + len(op))
            if i >= len(text):
                raise SelectorError("the selector ends inside its braces")
            value, i = _string(text, i)
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as e:
                    raise SelectorError(f"the regular expression {value!r} of {label!r} is not valid: {e}") from None
            if label == "__name__" and op == "=" and metric is None:
                metric = value
            else:
                matchers.append(Matcher(label, op, value))
            i = _skip_space(text, i)
            if i < len(text) and text[i] == ",":
                i = _skip_space(text, i + 1)
            elif i < len(text) and text[i] != "}":
                raise SelectorError(f"expected ',' or '}}' at position {i + 1}, found {text[i:i + 10]!r}")
        if i >= len(text):
            raise SelectorError("the selector's braces are not closed")
        i = _skip_space(text, i + 1)
    elif metric is None:
        raise SelectorError(f"expected a metric name or '{{' at position {i + 1}, found {text[i:i + 10]!r}")
    if i < len(text):
        rest = text[i:].lstrip()
        if rest.startswith("["):
            what = "a range selector ([...]); counter mode chooses the range itself from the schedule"
        elif rest.startswith("@") or re.match(r"offset\b", rest):
            what = "an offset or @ modifier; use input.prometheus.query_offset to shift the windows"
        else:
            what = f"an operator or more after the selector ({rest[:20]!r}); counter mode takes one series selector"
        raise SelectorError(what)
    if metric is None and not any(_matches_something(m) for m in matchers):
        raise SelectorError("a selector needs a metric name or a label matcher that does not match the empty string")
    return Selector(metric, tuple(matchers))


def _matches_something(m: Matcher) -> bool:
    if m.op == "=":
        return m.value != ""
    if m.op == "=~":
        return re.fullmatch(m.value, "") is None
    return False
