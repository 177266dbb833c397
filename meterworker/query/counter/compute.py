"""The growth of every series of a counter selector over one window, from the answers of plan.py's queries.

`instant(promql, at)` gives an instant query's (labels, value) pairs; `matrix(promql, at)` the
(labels, [(t, value), ...]) pairs of an instant query of a range selector (raw samples). Both are the
caller's (HTTP lives outside this package).
"""

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator

from meterworker.query.counter.growth import Start, boundary_growth, growth
from meterworker.query.counter.plan import (
    ESCALATE, PART, Window, boundary_query, flagged_query, history_query, labels_key, main_query, raw_query,
    resolve_query, batch_selector, unbased_query,
)
from meterworker.query.counter.selector import Selector, parse_selector
from meterworker.query.mapping import ResultTypeError

Labels = dict[str, str]
Instant = Callable[[str, datetime], Iterable[tuple[Labels, str]]]
Matrix = Callable[[str, datetime], Iterable[tuple[Labels, list[tuple[float, str]]]]]

BATCH = 200  # series per resolving query


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


class SameLabelsError(ResultTypeError):
    """The selector matched series that differ only by metric name: their growth cannot be told apart."""


def series_growth(plan: Plan, instant: Instant, matrix: Matrix, gaps: Gaps) -> Iterator[tuple[Labels, float]]:
    """(labels without the metric name, growth) for every series with a sample in the window: the ones settled
    by their boundary samples as they come, then the others. last_over_time() keeps the metric name where
    the other functions drop it, so the path a series takes would otherwise show in its labels (and id)."""
    several_names = plan.selector.metric is None
    seen: set[tuple] = set()
    for labels, value in _series_growth(plan, instant, matrix, gaps):
        if "__name__" in labels:
            labels = {k: v for k, v in labels.items() if k != "__name__"}
        if several_names:
            key = labels_key(labels)
            if key in seen:
                raise SameLabelsError(f"counter {plan.selector.promql()}: several series with the labels {labels} "
                                      "differ only by metric name; narrow the selector to one metric name")
            seen.add(key)
        yield labels, value


def _series_growth(plan: Plan, instant: Instant, matrix: Matrix, gaps: Gaps) -> Iterator[tuple[Labels, float]]:
    sel, w = plan.selector.promql(), plan.window
    escalated: list[Labels] = []
    if w.seconds <= w.max_gap:
        with ThreadPoolExecutor(2, thread_name_prefix="meterworker-counter") as pool:
            asked = pool.submit(lambda: {labels_key(labels) for labels, _ in instant(flagged_query(sel, w), w.end)})
            unbased = pool.submit(lambda: [labels for labels, _ in instant(unbased_query(sel, w), w.end)])
            flagged = None
            for labels, raw in instant(boundary_query(sel, w), w.end):
                if flagged is None:
                    flagged = asked.result()
                if labels_key(labels) in flagged:
                    escalated.append(labels)
                else:
                    yield labels, float(raw)
            escalated += unbased.result()
    else:
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
    wanted = {labels_key(labels) for labels in batch}
    selector = batch_selector(plan.selector, batch)
    parts: dict[tuple, dict[str, float]] = {key: {} for key in wanted}
    for labels, raw in instant(resolve_query([selector], w), w.end):
        key = labels_key(labels)
        if key in parts:
            parts[key][labels[PART]] = float(raw)
    without_baseline = [labels for labels in batch if "b" not in parts[labels_key(labels)]]
    older = set()
    if without_baseline:
        query = history_query([batch_selector(plan.selector, without_baseline)], w)
        older = {labels_key(labels) for labels, _ in instant(query, w.end)}
    with_resets = [labels for labels in batch if parts[labels_key(labels)].get("r", 0.0) > 0]
    samples = _raw_samples(batch_selector(plan.selector, with_resets), w, matrix) if with_resets else {}
    for labels in batch:
        key = labels_key(labels)
        p = parts[key]
        if "a" not in p:
            continue  # no sample in the window after all
        start = Start.CONTINUED if "b" in p else Start.GAP if key in older else Start.NEW
        gaps.add(start, labels)
        baseline = p.get("b")
        if p.get("r", 0.0) == 0.0:
            yield labels, boundary_growth(baseline, p["a"], p["m"], start=start, count_new=plan.count_new)
        else:
            yield labels, growth(baseline, samples.get(key, []), start=start, count_new=plan.count_new).value


def _raw_samples(selector: str, w: Window, matrix: Matrix) -> dict[tuple, list[float]]:
    """The window's samples per series. NaN is not a count: VictoriaMetrics answers a range selector with the
    staleness markers its scraper wrote (a failed scrape, a target gone) among the samples; Prometheus leaves
    them out."""
    start = w.start.timestamp()
    out = {}
    for labels, values in matrix(raw_query(selector, w), w.end):
        samples = [float(v) for t, v in values if float(t) > start]
        out[labels_key(labels)] = [v for v in samples if not math.isnan(v)]
    return out


def group(series: Iterable[tuple[Labels, float]], by: list[str] | None) -> Iterator[tuple[Labels, float]]:
    """Each series alone (by None), or the growth summed per the `by` labels' values (exactly rounded)."""
    if by is None:
        yield from series
        return
    sums: dict[tuple, list[float]] = {}
    for labels, value in series:
        key = tuple(labels.get(label, "") for label in by)
        sums.setdefault(key, []).append(value)
    for key in sorted(sums):
        yield {label: v for label, v in zip(by, key) if v != ""}, math.fsum(sums[key])
