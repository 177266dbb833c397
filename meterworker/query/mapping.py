"""Prometheus query results to CloudEvents: pure mapping (the ids are ids.py's)."""

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Iterator, Protocol

from meterworker.query.ids import id_prefix, rfc3339, series_id

class MappingOptions(Protocol):
    type: str | None
    source: str
    subject_label: str
    labels: list[str] | None
    event_time: str


class ResultTypeError(ValueError):
    """The query returned a result type that cannot be billed per series."""


EXAMPLES = 3


@dataclass
class Skipped:
    """Series that were not turned into events, counted, with a few examples for the log."""

    non_finite: int = 0
    no_subject: int = 0
    non_numeric: int = 0  # a sample value that is not a number ("abc", null): a broken answer, not usage
    duplicate: int = 0    # a series with the same labels as one before it in the answer: billed once
    examples: list[dict[str, str]] = field(default_factory=list)

    def add(self, kind: str, labels: dict[str, str]) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < EXAMPLES:
            self.examples.append(labels)


@dataclass
class MappedResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: Skipped = field(default_factory=Skipped)


def check_result_type(result_type: str | None) -> None:
    if result_type in ("vector", "scalar"):
        return
    if result_type == "matrix":
        raise ResultTypeError(
            "the query returned a range vector (matrix); an instant vector is needed: "
            "wrap the range selector in a function such as increase(...[$__interval])"
        )
    raise ResultTypeError(f"the query returned a {result_type} result; only instant vectors and scalars can be billed")


def map_series(
    series: Iterable[tuple[dict[str, str], str]],
    *,
    scalar: bool,
    collector: str,
    query: str,
    mapping: MappingOptions,
    start: datetime,
    end: datetime,
    skipped: Skipped,
) -> Iterator[dict[str, Any]]:
    """One CloudEvent per series, lazily; what cannot be billed is counted in `skipped`.

    A series whose labels repeat those of one before it gets the same event id: the first one is billed,
    the others are counted as duplicates (the same on every run of the tick, as the answer is)."""
    event_type = mapping.type or query
    when = rfc3339(start if mapping.event_time == "start" else end)
    keep = None if mapping.labels is None else set(mapping.labels)
    prefix = id_prefix(collector, query, start, end)
    seen: set[int] = set()  # the ids so far, as numbers (a third of the memory of their text)
    for labels, raw in series:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            skipped.add("non_numeric", labels)
            continue
        if not math.isfinite(value):
            skipped.add("non_finite", labels)
            continue
        subject = query if scalar else labels.get(mapping.subject_label)
        if not subject:
            skipped.add("no_subject", labels)
            continue
        event_id = series_id(prefix, labels)
        number = int(event_id.replace("-", ""), 16)
        if number in seen:
            skipped.add("duplicate", labels)
            continue
        seen.add(number)
        yield {
            "specversion": "1.0",
            "id": event_id,
            "type": event_type,
            "source": mapping.source,
            "subject": subject,
            "time": when,
            "data": {"value": value, "metric": labels if keep is None else {k: v for k, v in labels.items() if k in keep}},
        }

