"""A query over many past ticks (backfill): one `query_range` per chunk of an evenly spaced stretch of ticks,
an instant query per tick elsewhere. Each tick's events are those of one instant query at that tick: the
same evaluation time (tick - query_offset), window, `$__interval` and ids."""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from meterworker.query.evaluate import collect, log_skipped
from meterworker.query.mapping import MappedResult, ResultTypeError, Skipped, map_series
from meterworker.query.prometheus import PrometheusError
from meterworker.query.promql import expand_interval
from meterworker.schedule.due import from_epoch
from meterworker.schedule.stretches import FIRST_REQUEST_TICKS, MIN_STRETCH, Stretch, chunked, stretches, ticks_per_request
from meterworker.schedule.backfill import window_lengths
from meterworker.schedule.windows import Window

log = logging.getLogger(__name__)

# Range queries only where the evaluation time is at least this old: a store may answer the newest points of
# a range short or late (VictoriaMetrics out of the box leaves out or repeats points of its last 30s, its
# -search.latencyOffset, whatever nocache says), where an instant query is evaluated at the time asked.
SETTLED = 300.0


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


def evaluate_ticks(config, prometheus, query, schedule, ticks: Iterable[int], requests: Requests | None = None,
                   fall_back: Callable[[PrometheusError], bool] = lambda e: True,
                   ranged: bool = True, now: float | None = None) -> Iterator[TickOutcome]:
    """The outcome of every tick of `ticks` (ascending Unix seconds), in order. A range request that fails is
    asked again tick by tick when `fall_back(error)` says so; otherwise its ticks are outcomes with the error.
    Ticks evaluated less than SETTLED before `now`, and all of them with `ranged=False`: an instant query each."""
    requests = requests if requests is not None else Requests()
    if query.is_counter or not ranged:  # counter mode asks its own queries, tick by tick
        yield from _instants(config, prometheus, query, schedule, ticks, requests)
        return
    ticks, recent = iter(ticks), []
    cutoff = (time.time() if now is None else now) - SETTLED + config.input.prometheus.query_offset

    def settled():
        for tick in ticks:  # ascending: the first recent tick ends the settled ones
            if tick > cutoff:
                recent.append(tick)
                return
            yield tick

    yield from _ranged(config, prometheus, query, schedule, settled(), requests, fall_back)
    if recent:
        yield from _instants(config, prometheus, query, schedule, [*recent, *ticks], requests)


def _ranged(config, prometheus, query, schedule, ticks, requests: Requests, fall_back) -> Iterator[TickOutcome]:
    per_request = FIRST_REQUEST_TICKS
    for stretch in stretches(window_lengths(schedule, ticks)):
        if stretch.count < MIN_STRETCH:
            yield from _instants(config, prometheus, query, schedule, stretch.ticks(), requests)
            continue
        for part in chunked(stretch, lambda: per_request):
            try:
                steps = _range(config, prometheus, query, part, requests)
            except PrometheusError as e:
                if not fall_back(e):
                    yield from (TickOutcome(t, error=str(e)) for t in part.ticks())
                    continue
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
