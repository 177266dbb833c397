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


FIRST_REQUEST_TICKS = 500  # ticks of a query's first range request, before its number of series is known
MIN_STRETCH = 3  # shorter stretches are asked tick by tick
TASK_TICKS = 10_000  # through the workers, a stretch goes out in tasks of at most this many ticks


def pieces(stretches_: Iterable[Stretch]) -> Iterator[Stretch]:
    """The stretches long enough for range queries, and every tick of the others as a stretch of one."""
    for s in stretches_:
        if s.count >= MIN_STRETCH:
            yield s
        else:
            yield from (Stretch(t, s.step, 1) for t in s.ticks())


def task_parts(stretch: Stretch, max_ticks: int = TASK_TICKS) -> list[Stretch]:
    """The stretch in as few tasks as `max_ticks` allows, of about equal size."""
    n = -(-stretch.count // max_ticks)
    size, extra = divmod(stretch.count, n)
    out, first = [], stretch.first
    for i in range(n):
        count = size + (i < extra)
        out.append(Stretch(first, stretch.step, count))
        first += count * stretch.step
    return out


def range_requests(counts: Iterable[int], series: int) -> int:
    """How many range requests the stretches of `counts` ticks take, asked one after the other as
    query.ranged.evaluate_ticks asks them, when every tick's answer has `series` series."""
    per_request, n = FIRST_REQUEST_TICKS, 0
    for count in counts:
        for _ in chunked(Stretch(0, 1, count), lambda: per_request):
            n += 1
            per_request = ticks_per_request(series)
    return n
