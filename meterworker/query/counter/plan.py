"""What counter mode asks Prometheus for one window (start, end]: PromQL text only.

When the window is no longer than max_gap, three instant queries, asked at once, settle almost every series:
boundary_query gives each series' last sample at or before the end minus its last one at or before the
start, unbased_query the few series with a sample in the window but none in the window before it, and
flagged_query the few series with a reset from one window before the start to the end. All are instant
queries with `@`: a range query for the two boundary samples would do as
well on Prometheus, but VictoriaMetrics (out of the box, -search.latencyOffset 30s) answers a range query
that ends less than 30s ago without its last points, or with the earlier points repeated, which would bill
a recent window short. Where neither flags a series, no sample between the two is below the one before it, so
the growth is their difference. The rest (a reset, no sample within one window before the start: a new
series, a scrape gap) are resolved per series (resolve_query, history_query), their raw samples fetched
(raw_query) only where the window itself holds a reset. A window longer than max_gap asks main_query,
which settles each series from boundary samples within the window and max_gap instead.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from meterworker.query.counter.selector import Matcher, Selector, quote

PART = "__meterworker_part"
HISTORY = 31 * 86400.0  # how far back a series without a recent baseline is looked for: new, or back after a gap
ESCALATE = -1  # the main query's value for a series it cannot settle from its boundary samples


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _at(t: datetime) -> str:
    return f"{t.timestamp():.3f}"


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    max_gap: float

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _boundaries(sel: str, w: Window) -> tuple[str, str]:
    win = _ms(w.seconds)
    return f"last_over_time({sel}[{win}] @ {_at(w.end)})", f"last_over_time({sel}[{win}] @ {_at(w.start)})"


def boundary_query(sel: str, w: Window) -> str:
    """Evaluated at w.end: each series' last sample in the window minus its last one within one window at or
    before the start (series without either are not in the answer)."""
    last, base = _boundaries(sel, w)
    return f"{last} - {base}"


def unbased_query(sel: str, w: Window) -> str:
    """Evaluated at w.end: the series with a sample in the window but none within one window before it."""
    last, base = _boundaries(sel, w)
    return f"{last} unless {base}"


def flagged_query(sel: str, w: Window) -> str:
    """Evaluated at w.end: the series with a reset from one window before the start to the end."""
    return f"resets({sel}[{_ms(2 * w.seconds)}] @ {_at(w.end)}) > 0"


def main_query(sel: str, w: Window) -> str:
    """Evaluated at w.end: a growth >= 0 per settled series, ESCALATE for the others with samples in the window."""
    rng, at_s, at_e = _ms(min(w.seconds, w.max_gap)), _at(w.start), _at(w.end)
    last = f"last_over_time({sel}[{_ms(w.seconds)}] @ {at_e})"
    base = f"last_over_time({sel}[{rng}] @ {at_s})"
    low = f"min_over_time({sel}[{_ms(w.seconds)}] @ {at_e})"
    resets = f"resets({sel}[{_ms(w.seconds)}] @ {at_e})"
    return (f"(({last} - {base}) and ({low} >= {base}) and ({resets} == 0))"
            f" or (count_over_time({sel}[{_ms(w.seconds)}] @ {at_e}) * 0 + {ESCALATE})")


def series_selector(base: Selector, labels: dict[str, str]) -> str:
    """The selector narrowed to one series (its labels as the functions' results give them, without __name__)."""
    matchers = list(base.matchers) + [Matcher(k, "=", v) for k, v in sorted(labels.items()) if k != "__name__"]
    if base.metric is None and "__name__" in labels:
        matchers.append(Matcher("__name__", "=", labels["__name__"]))
    return Selector(base.metric, tuple(matchers)).promql()


def batch_selector(base: Selector, batch: list[dict[str, str]]) -> str:
    """One selector matching (at least) every series of the batch: the labels they share as = matchers, the
    one with the most distinct values as an =~ alternation; the caller keeps only the batch's own series."""
    keys = set().union(*(labels.keys() for labels in batch)) - {"__name__"}
    shared = {k for k in keys if len({labels.get(k) for labels in batch}) == 1 and batch[0].get(k) is not None}
    matchers = list(base.matchers)
    matchers += [Matcher(k, "=", batch[0][k]) for k in sorted(shared) if Matcher(k, "=", batch[0][k]) not in matchers]
    varying = sorted(keys - shared, key=lambda k: (-len({labels.get(k, "") for labels in batch}), k))
    if varying:
        k = varying[0]
        values = sorted({labels.get(k, "") for labels in batch})
        matchers.append(Matcher(k, "=~", "|".join(re.escape(v) for v in values)))
    names = {labels["__name__"] for labels in batch if "__name__" in labels}
    if base.metric is None and len(names) == 1:
        matchers.append(Matcher("__name__", "=", names.pop()))
    return Selector(base.metric, tuple(matchers)).promql()


def _part(name: str, expr: str) -> str:
    return f'label_replace({expr}, "{PART}", "{name}", "", "")'


def resolve_query(selectors: list[str], w: Window) -> str:
    """For the given series: baseline within max_gap (b), last (a) and smallest (m) sample of the window,
    and the resets in it (r)."""
    win, at_s, at_e = _ms(w.seconds), _at(w.start), _at(w.end)
    parts = []
    for sel in selectors:
        parts += [
            _part("b", f"last_over_time({sel}[{_ms(w.max_gap)}] @ {at_s})"),
            _part("a", f"last_over_time({sel}[{win}] @ {at_e})"),
            _part("m", f"min_over_time({sel}[{win}] @ {at_e})"),
            _part("r", f"resets({sel}[{win}] @ {at_e})"),
        ]
    return " or ".join(parts)


def history_query(selectors: list[str], w: Window) -> str:
    """For series without a baseline: which have a sample older than max_gap before the start (back after
    a gap) rather than none (new)."""
    before = _at_seconds(w.start.timestamp() - w.max_gap)
    return " or ".join(f"count_over_time({sel}[{_ms(HISTORY)}] @ {before})" for sel in selectors)


def _at_seconds(t: float) -> str:
    return f"{t:.3f}"


def raw_query(selector: str, w: Window) -> str:
    """The raw samples of the window (Prometheus 2 includes one exactly at the start: the caller drops it)."""
    return f"{selector}[{_ms(w.seconds)}] @ {_at(w.end)}"


def labels_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in ("__name__", PART)))


__all__ = ["boundary_query", "unbased_query", "flagged_query", "ESCALATE", "HISTORY", "PART", "Window", "history_query", "labels_key", "main_query", "quote",
           "raw_query", "resolve_query", "series_selector", "batch_selector"]
