"""The growth of one counter series over one window (start, end], from its raw samples.

Starting from the baseline (the last sample at or before the window's start, at most max_gap before it),
each later sample adds v_i - v_{i-1} when v_i >= v_{i-1}, else v_i (the counter restarted from zero).
Without a baseline the series is either new (no sample in the lookback before it: its first value is
counted from zero, or skipped) or back after a gap longer than max_gap (its first sample after the gap
becomes the baseline: what grew during the gap is not billed, and the gap is reported).
"""

from dataclasses import dataclass
from enum import Enum
from typing import Sequence


class Start(str, Enum):
    CONTINUED = "continued"  # a baseline within max_gap before the window
    NEW = "new"              # no sample before: a series that just appeared
    GAP = "gap"              # samples before, but none within max_gap of the window's start


@dataclass(frozen=True)
class Growth:
    value: float
    start: Start
    resets: int = 0


def growth(baseline: float | None, samples: Sequence[float], *, start: Start, count_new: bool = True) -> Growth:
    """`samples`: the series' values in the window, in time order. `start`: how the window begins (a baseline
    is given exactly when it is CONTINUED)."""
    if (baseline is None) == (start is Start.CONTINUED):
        raise ValueError("a baseline is given exactly when the series continues")
    if not samples:
        return Growth(0.0, start)
    if start is Start.CONTINUED:
        prev, rest = baseline, samples
    elif start is Start.NEW and count_new:
        prev, rest = 0.0, samples
    else:
        prev, rest = samples[0], samples[1:]
    total, resets = 0.0, 0
    for v in rest:
        if v >= prev:
            total += v - prev
        else:
            total += v
            resets += 1
        prev = v
    return Growth(total, start, resets)


def boundary_growth(baseline: float | None, last: float, minimum: float, *, start: Start,
                    count_new: bool = True) -> float:
    """The same growth from the window's last and smallest sample when no sample in the window is below the
    one before it, other than the first below the baseline (Prometheus' resets() over the window is 0): the
    samples of the window never decrease, so the first one is the smallest."""
    if start is Start.CONTINUED:
        return last - baseline if minimum >= baseline else last
    if start is Start.NEW and count_new:
        return last
    return last - minimum
