"""What a backfill of one query asks Prometheus: range requests over its evenly spaced stretches of ticks
(through the workers, a task per part of a stretch), an instant request for each other tick."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from meterworker.schedule.stretches import Stretch, pieces, range_requests, task_parts


@dataclass
class QueryPlan:
    query: str
    ticks: int = 0
    first: int | None = None
    last: int | None = None
    steps: set[int] = field(default_factory=set)  # the spacing of the stretches asked with range queries
    ranged: list[int] = field(default_factory=list)  # ticks of each range request's unit: a task, or the query inline
    stretches: int = 0
    instant: int = 0  # ticks asked one by one

    @property
    def ranged_ticks(self) -> int:
        return self.ticks - self.instant

    def range_requests(self, series: int, inline: bool) -> int:
        """With `series` series in each tick's answer (at least one is assumed)."""
        series = max(1, series)
        if inline:
            return range_requests(self.ranged, series)
        return sum(range_requests([n], series) for n in self.ranged)


def plan_query(query: str, stretches: Iterable[Stretch], ranged: bool, inline: bool) -> QueryPlan:
    """The plan of a query's ticks, given as their maximal stretches (stretches.stretches); `ranged`: range
    queries where they apply, else an instant request per tick."""
    p = QueryPlan(query)
    for s in stretches:
        p.first = s.first if p.first is None else p.first
        p.last = s.last
        p.ticks += s.count
        if not ranged:
            p.instant += s.count
            continue
        for piece in pieces([s]):
            if piece.count == 1:
                p.instant += 1
                continue
            p.stretches += 1
            p.steps.add(piece.step)
            if inline:
                p.ranged.append(piece.count)
            else:
                p.ranged += [part.count for part in task_parts(piece)]
    return p
