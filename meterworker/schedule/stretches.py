"""Evenly spaced runs of ticks, for range queries: a stretch is ticks whose windows all have one length,
each tick that length after the one before, so one `query_range` (step = the length) evaluates them all."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Stretch:
    """`count` ticks, `step` seconds apart, the first at `first` (Unix seconds)."""

    first: int
    step: int
    count: int

    @property
    def last(self) -> int:
        return self.first + (self.count - 1) * self.step

    def ticks(self) -> range:
        return range(self.first, self.last + 1, self.step)


def stretches(ticks: Iterable[tuple[int, int]]) -> Iterator[Stretch]:
    """Maximal stretches of (tick, window length in seconds) pairs given in ascending tick order."""
    run: Stretch | None = None
    for tick, length in ticks:
        if run is not None and length == run.step and tick == run.last + run.step:
            run = Stretch(run.first, run.step, run.count + 1)
            continue
        if run is not None:
            yield run
        run = Stretch(tick, length, 1)
    if run is not None:
        yield run


def chunked(stretch: Stretch, max_ticks: Callable[[], int]) -> Iterator[Stretch]:
    """The stretch in pieces, in order, each of at most `max_ticks()` ticks as it says when the piece starts
    (the caller learns from each answer how many series the next may hold)."""
    first, left = stretch.first, stretch.count
    while left:
        n = min(max_ticks(), left)
        if n < 1:
            raise ValueError(f"max_ticks must be at least 1, got {n}")
        yield Stretch(first, stretch.step, n)
        first, left = first + n * stretch.step, left - n


# Prometheus refuses a range query of more than 11,000 points per series; the points of one answer (steps
# times series) are held in memory while its ticks are mapped, so an answer is kept to about POINTS_PER_ANSWER.
MAX_STEPS = 10_000
POINTS_PER_ANSWER = 250_000


def ticks_per_request(series: int) -> int:
    """How many ticks one range request asks for, given how many series one tick's answer has."""
    return max(1, min(MAX_STEPS, POINTS_PER_ANSWER // max(1, series)))
