"""The growth of every series of a counter selector over one window, from the answers of plan.py's queries.

`instant(promql, at)` gives an instant query's (labels, value) pairs; `matrix(promql, at)` a range query's
(labels, [(t, value), ...]) pairs. Both are the caller's (HTTP lives outside this package).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator

from meterworker.query.counter.growth import Start, boundary_growth, growth
from meterworker.query.counter.plan import (
    ESCALATE, PART, Window, history_query, labels_key, main_query, raw_query, resolve_query, series_selector,
)
from meterworker.query.counter.selector import Selector, parse_selector

Labels = dict[str, str]
Instant = Callable[[str, datetime], Iterable[tuple[Labels, str]]]
Matrix = Callable[[str, datetime], Iterable[tuple[Labels, list[tuple[float, str]]]]]

BATCH = 50  # series per resolving query


@dataclass
class Gaps:
    """Series of the window without a baseline within max_gap: new ones, and ones back after a longer gap."""

    new: int = 0
    gap: int = 0
    examples: list[Labels] = field(default_factory=list)

    def add(self, start: Start, labels: Labels) -> None:
        if start is Start.NEW:
            self.new += 1
        elif start is Start.GAP:
            self.gap += 1
            if len(self.examples) < 3:
                self.examples.append(labels)


@dataclass
class Plan:
    selector: Selector
    window: Window
    count_new: bool = True

    @classmethod
    def of(cls, counter: str, start: datetime, end: datetime, max_gap: float, new_series: str = "count") -> "Plan":
        return cls(parse_selector(counter), Window(start, end, max_gap), new_series == "count")


def series_growth(plan: Plan, instant: Instant, matrix: Matrix, gaps: Gaps) -> Iterator[tuple[Labels, float]]:
    """(labels, growth) for every series with a sample in the window: the settled ones as the main query gives
    them, then the escalated ones."""
    sel, w = plan.selector.promql(), plan.window
    escalated: list[Labels] = []
    for labels, raw in instant(main_query(sel, w), w.end):
        value = float(raw)
        if value == ESCALATE:
            escalated.append(labels)
        else:
            yield labels, value
    for i in range(0, len(escalated), BATCH):
        yield from _resolve(plan, escalated[i:i + BATCH], instant, matrix, gaps)


def _resolve(plan: Plan, batch: list[Labels], instant: Instant, matrix: Matrix, gaps: Gaps):
    w = plan.window
    selectors = {labels_key(labels): series_selector(plan.selector, labels) for labels in batch}
    parts: dict[tuple, dict[str, float]] = {key: {} for key in selectors}
    for labels, raw in instant(resolve_query(list(selectors.values()), w), w.end):
        key = labels_key(labels)
        if key in parts:
            parts[key][labels[PART]] = float(raw)
    without_baseline = [key for key, p in parts.items() if "b" not in p and "a" in p]
    older = set()
    if without_baseline:
        query = history_query([selectors[key] for key in without_baseline], w)
        older = {labels_key(labels) for labels, _ in instant(query, w.end)}
    for labels in batch:
        key = labels_key(labels)
        p = parts[key]
        if "a" not in p:
            continue  # no sample in the window after all (the data changed between the queries)
        start = Start.CONTINUED if "b" in p else Start.GAP if key in older else Start.NEW
        gaps.add(start, labels)
        baseline = p.get("b")
        if p.get("r", 0.0) == 0.0:
            yield labels, boundary_growth(baseline, p["a"], p["m"], start=start, count_new=plan.count_new)
            continue
        samples = _raw_samples(selectors[key], key, w, matrix)
        yield labels, growth(baseline, samples, start=start, count_new=plan.count_new).value


def _raw_samples(selector: str, key: tuple, w: Window, matrix: Matrix) -> list[float]:
    start = w.start.timestamp()
    for labels, values in matrix(raw_query(selector, w), w.end):
        if labels_key(labels) == key:
            return [float(v) for t, v in values if float(t) > start]
    return []


def group(series: Iterable[tuple[Labels, float]], by: list[str] | None) -> Iterator[tuple[Labels, float]]:
    """Each series alone (by None), or the growth summed per the `by` labels' values (exactly rounded)."""
    if by is None:
        yield from series
        return
    import math
    sums: dict[tuple, list[float]] = {}
    for labels, value in series:
        key = tuple(labels.get(label, "") for label in by)
        sums.setdefault(key, []).append(value)
    for key in sorted(sums):
        yield {label: v for label, v in zip(by, key) if v != ""}, math.fsum(sums[key])
