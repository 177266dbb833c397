"""A query over many past ticks (backfill): one `query_range` per chunk of an evenly spaced stretch of ticks,
an instant query per tick elsewhere. Each tick's events are those of one instant query at that tick: the
same evaluation time (tick - query_offset), window, `$__interval` and ids."""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from meterworker.query.evaluate import collect, log_skipped
from meterworker.query.mapping import MappedResult, ResultTypeError, Skipped, map_series
from meterworker.query.prometheus import PrometheusError
from meterworker.query.promql import expand_interval
from meterworker.schedule.due import from_epoch
from meterworker.schedule.stretches import Stretch, chunked, stretches, ticks_per_request
from meterworker.schedule.windows import Window, window_for

log = logging.getLogger(__name__)

FIRST_REQUEST_TICKS = 500  # before the number of series is known
MIN_STRETCH = 3  # shorter stretches are asked tick by tick


@dataclass
class TickOutcome:
    tick: int
    result: MappedResult | None = None
    error: str | None = None


@dataclass
class Requests:
    instant: int = 0
    range: int = 0
    fallbacks: list[str] = field(default_factory=list)


def evaluate_ticks(config, prometheus, query, schedule, ticks: Iterable[int],
                   requests: Requests | None = None) -> Iterator[TickOutcome]:
    """The outcome of every tick of `ticks` (ascending Unix seconds), in order."""
    requests = requests if requests is not None else Requests()
    offset = config.input.prometheus.query_offset
    lengths = ((t, round(window_for(schedule, from_epoch(t), offset).seconds)) for t in ticks)
    per_request = FIRST_REQUEST_TICKS
    for stretch in stretches(lengths):
        if stretch.count < MIN_STRETCH:
            yield from _instants(config, prometheus, query, schedule, stretch.ticks(), requests)
            continue
        for part in chunked(stretch, lambda: per_request):
            try:
                steps = _range(config, prometheus, query, part, requests)
            except PrometheusError as e:
                requests.fallbacks.append(f"{from_epoch(part.first).isoformat()}: {e}")
                log.info("query %s: range query for %d ticks from %s not usable (%s); asking tick by tick",
                         query.name, part.count, from_epoch(part.first).isoformat(), e)
                yield from _instants(config, prometheus, query, schedule, part.ticks(), requests)
                continue
            per_request = ticks_per_request(max((len(s) for s in steps), default=0))
            yield from _map_steps(config, query, part, steps)


def _window(tick: int, step: int, offset: float) -> Window:
    shift = timedelta(seconds=offset)
    return Window(from_epoch(tick - step) - shift, from_epoch(tick) - shift)


def _range(config, prometheus, query, part: Stretch, requests: Requests):
    offset = config.input.prometheus.query_offset
    promql = expand_interval(query.promql, _window(part.first, part.step, offset))
    requests.range += 1
    return prometheus.query_range(promql, from_epoch(part.first) - timedelta(seconds=offset), part.step, part.count)


def _map_steps(config, query, part: Stretch, steps) -> Iterator[TickOutcome]:
    offset = config.input.prometheus.query_offset
    mapping = config.mapping_for(query)
    for tick, series in zip(part.ticks(), steps):
        window = _window(tick, part.step, offset)
        skipped = Skipped()
        events = list(map_series(series, scalar=False, collector=config.meterworker.name, query=query.name,
                                 mapping=mapping, start=window.start, end=window.end, skipped=skipped))
        log_skipped(query.name, from_epoch(tick), skipped, mapping.subject_label)
        yield TickOutcome(tick, MappedResult(events, skipped))


def _instants(config, prometheus, query, schedule, ticks, requests: Requests) -> Iterator[TickOutcome]:
    for tick in ticks:
        requests.instant += 1
        try:
            got = collect(config, prometheus, query, schedule, from_epoch(tick))
        except (PrometheusError, ResultTypeError) as e:
            yield TickOutcome(tick, error=str(e))
        else:
            yield TickOutcome(tick, got.result)
