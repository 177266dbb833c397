"""One query for one tick: window, PromQL, evaluation, events. Shared by workers, `once` and backfill."""

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, Iterator

from meterworker.query.mapping import MappedResult, Skipped, map_series
from meterworker.query.promql import expand_interval
from meterworker.schedule.cron import Schedule
from meterworker.schedule.windows import Window, evaluation_time, window_for

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    query: str
    tick: datetime
    window: Window
    promql: str
    events: Iterator[dict[str, Any]] = iter(())
    skipped: Skipped = field(default_factory=Skipped)
    gaps: Any = None  # counter mode: the series of the window without a baseline (counter.compute.Gaps)


@contextmanager
def evaluate(config, prometheus, query, schedule: Schedule, tick: datetime) -> Iterator[Evaluation]:
    """The tick's events as a stream, valid inside the `with` block (the response is read as they are);
    afterwards `skipped` counts the series not sent (logged here, counted in metrics by the query task)."""
    offset = config.input.prometheus.query_offset
    window = window_for(schedule, tick, offset)
    mapping = config.mapping_for(query)
    if query.is_counter:
        with _evaluate_counter(config, prometheus, query, window, tick, mapping) as ev:
            yield ev
        return
    promql = expand_interval(query.promql, window)
    ev = Evaluation(query.name, tick, window, promql)
    with prometheus.stream(promql, evaluation_time(tick, offset)) as result:
        ev.events = map_series(
            result.series, scalar=result.result_type == "scalar", collector=config.meterworker.name,
            query=query.name, mapping=mapping, start=window.start, end=window.end, skipped=ev.skipped,
        )
        yield ev
    log_skipped(query.name, tick, ev.skipped, mapping.subject_label)


@contextmanager
def _evaluate_counter(config, prometheus, query, window: Window, tick: datetime, mapping) -> Iterator[Evaluation]:
    from meterworker.query import raw_samples
    from meterworker.query.counter.compute import Gaps, Plan, group, series_growth

    plan = Plan.of(query.counter, window.start, window.end, query.max_gap, query.new_series)
    ev = Evaluation(query.name, tick, window, f"counter {plan.selector.promql()}", gaps=Gaps())
    growths = series_growth(plan, lambda q, at: raw_samples.instant(prometheus, q, at),
                            lambda q, at: raw_samples.matrix(prometheus, q, at), ev.gaps)
    ev.events = map_series(
        group(growths, query.by), scalar=False, collector=config.meterworker.name, query=query.name,
        mapping=mapping, start=window.start, end=window.end, skipped=ev.skipped,
    )
    yield ev
    log_skipped(query.name, tick, ev.skipped, mapping.subject_label)
    log_gaps(query, tick, ev.gaps)


def log_gaps(query, tick: datetime, gaps) -> None:
    if gaps is not None and gaps.gap:
        log.warning("query %s tick %s: %d series had no sample within max_gap (%gs) before the window: what they "
                    "grew during the gap is not billed; examples: %s", query.name, tick.isoformat(), gaps.gap,
                    query.max_gap, gaps.examples)


@dataclass
class Collected:
    query: str
    tick: datetime
    window: Window
    promql: str
    result: MappedResult


def collect(config, prometheus, query, schedule: Schedule, tick: datetime) -> Collected:
    """The tick's events, all in a list: for commands that work on one tick at a time."""
    with evaluate(config, prometheus, query, schedule, tick) as ev:
        events = list(ev.events)
    return Collected(query.name, tick, ev.window, ev.promql, MappedResult(events, ev.skipped))


def log_skipped(query: str, tick: datetime, skipped: Skipped, subject_label: str) -> None:
    if skipped.non_finite:
        log.warning("query %s tick %s: %d series with NaN or Inf values not sent; examples: %s",
                    query, tick.isoformat(), skipped.non_finite, skipped.examples)
    if skipped.non_numeric:
        log.warning("query %s tick %s: %d series with a value that is not a number not sent; examples: %s",
                    query, tick.isoformat(), skipped.non_numeric, skipped.examples)
    if skipped.duplicate:
        log.warning("query %s tick %s: %d series repeat the labels of another series of the answer; the first "
                    "of each is sent, the others not; examples: %s",
                    query, tick.isoformat(), skipped.duplicate, skipped.examples)
    if skipped.no_subject:
        log.warning("query %s tick %s: %d series without the subject label %r not sent; examples: %s",
                    query, tick.isoformat(), skipped.no_subject, subject_label, skipped.examples)


def chunks(items, size: int):
    """Lists of at most `size` items, from any iterable, without materialising it."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
