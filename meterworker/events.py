"""Prometheus query results to CloudEvents: pure mapping, deterministic ids."""

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

ID_NAMESPACE = uuid.UUID("5b0c7f38-2d7e-4a53-9a55-6a8e8f0a6d21")


class MappingOptions(Protocol):
    type: str | None
    source: str
    subject_label: str
    labels: list[str] | None
    event_time: str


class ResultTypeError(ValueError):
    """The query returned a result type that cannot be billed per series."""


@dataclass
class MappedResult:
    events: list[dict[str, Any]] = field(default_factory=list)
    non_finite: list[dict[str, str]] = field(default_factory=list)
    missing_subject: list[dict[str, str]] = field(default_factory=list)


def rfc3339(t: datetime) -> str:
    t = t.astimezone(timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def event_id(collector: str, query: str, start: datetime, end: datetime, labels: dict[str, str]) -> str:
    """The same window of the same series always gets the same id."""
    key = json.dumps(
        [collector, query, rfc3339(start), rfc3339(end), sorted(labels.items())],
        separators=(",", ":"),
    )
    return str(uuid.uuid5(ID_NAMESPACE, key))


def map_result(
    data: dict[str, Any],
    *,
    collector: str,
    query: str,
    mapping: MappingOptions,
    start: datetime,
    end: datetime,
) -> MappedResult:
    """Map the `data` of a Prometheus instant query to one CloudEvent per series."""
    result_type = data.get("resultType")
    if result_type == "vector":
        series = [(s.get("metric") or {}, s["value"][1]) for s in data.get("result") or []]
    elif result_type == "scalar":
        series = [({}, data["result"][1])]
    elif result_type == "matrix":
        raise ResultTypeError(
            "the query returned a range vector (matrix); an instant vector is needed: "
            "wrap the range selector in a function such as increase(...[$__interval])"
        )
    else:
        raise ResultTypeError(
            f"the query returned a {result_type} result; only instant vectors and scalars can be billed"
        )

    out = MappedResult()
    event_type = mapping.type or query
    when = rfc3339(start if mapping.event_time == "start" else end)
    for labels, raw in series:
        value = float(raw)
        if not math.isfinite(value):
            out.non_finite.append(labels)
            continue
        subject = query if result_type == "scalar" else labels.get(mapping.subject_label)
        if not subject:
            out.missing_subject.append(labels)
            continue
        metric = labels if mapping.labels is None else {k: v for k, v in labels.items() if k in mapping.labels}
        out.events.append(
            {
                "specversion": "1.0",
                "id": event_id(collector, query, start, end, labels),
                "type": event_type,
                "source": mapping.source,
                "subject": subject,
                "time": when,
                "data": {"value": value, "metric": metric},
            }
        )
    return out
