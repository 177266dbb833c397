"""Checks of the seed's (Redpanda Connect) config that pydantic cannot place on a field: duplicate query
names, schedules, the bloblang mapping and the batching processors meterworker can honour."""

from typing import Any, Iterator

from meterworker.config.errors import Path
from meterworker.config.types import timezone_name
from meterworker.schedule.cron import parse_schedule



_MAPPING_HINT = (
    "use meterworker's mapping options instead: mapping.type, mapping.source, mapping.subject_label, "
    "mapping.labels, mapping.event_time (globally, or per query under queries[].query.mapping)"
)
SEED_BLOBLANG = """
root = this.values.map_each(value -> {
  "id": uuid_v4(),
  "specversion": "1.0",
  "type": this.name,
  "source": "prometheus",
  "time": this.timestamp,
  "subject": value.metric.instance,
  "data": {
    "value": value.value,
    "metric": value.metric
  }
})
"""
_JSON_ARRAY = {"format": "json_array"}
_SEED_COUNTER = {"type": "counter", "name": "openmeter_events_sent", "value": 1}
_HTTP_CLIENT_PATHS: list[Path] = [("output", "http_client"), ("output", "output", "http_client")]


def compatibility_problems(data: dict) -> list[tuple[Path, str]]:
    """Checks on the raw tree, so that they run even when pydantic found other problems."""
    return (
        _duplicate_query_names(data)
        + _counter_subject_problems(data)
        + _schedule_problems(data)
        + _pipeline_problems(data)
        + [p for path in _HTTP_CLIENT_PATHS for p in _batching_problems(data, path)]
    )


def _get(node: Any, *keys: str) -> Any:
    """node[k1][k2]..., or None where a level is missing or not a mapping."""
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


_QUERIES: Path = ("input", "prometheus", "queries")


def _queries(data: dict) -> list[tuple[int, Any]]:
    queries = _get(data, *_QUERIES)
    return list(enumerate(queries)) if isinstance(queries, list) else []


def _duplicate_query_names(data: dict) -> list[tuple[Path, str]]:
    first_index: dict[str, int] = {}
    problems = []
    for i, item in _queries(data):
        name = _get(item, "query", "name")
        if not isinstance(name, str):
            continue
        if name in first_index:
            problems.append((_QUERIES + (i, "query", "name"),
                             f"duplicate query name {name!r} (also used by queries[{first_index[name]}])"))
        else:
            first_index[name] = i
    return problems


def _counter_subject_problems(data: dict) -> list[tuple[Path, str]]:
    """A counter query's `by` must keep the subject label: each event's subject is read from it."""
    default = _get(data, "mapping", "subject_label") or "instance"
    problems = []
    for i, item in _queries(data):
        query = _get(item, "query")
        by = _get(query, "by")
        if _get(query, "counter") is None or not isinstance(by, list):
            continue
        subject = _get(query, "mapping", "subject_label") or default
        if isinstance(subject, str) and subject not in by:
            problems.append((_QUERIES + (i, "query", "by"),
                             f"{by} lacks the subject label {subject!r} (mapping.subject_label): each event's "
                             f"subject comes from it; add it to by"))
    return problems


def _schedule_problems(data: dict) -> list[tuple[Path, str]]:
    prometheus = _get(data, "input", "prometheus")
    tz = _get(prometheus, "timezone")
    try:
        tz = timezone_name(tz) if isinstance(tz, str) else "UTC"
    except ValueError:
        tz = "UTC"  # the bad zone is reported on its own field
    schedules = [(("input", "prometheus", "schedule"), _get(prometheus, "schedule"))]
    schedules += [(_QUERIES + (i, "query", "schedule"), _get(item, "query", "schedule")) for i, item in _queries(data)]
    problems = []
    for path, expr in schedules:
        if isinstance(expr, str):
            try:
                parse_schedule(expr, tz)
            except ValueError as e:
                problems.append((path, str(e)))
    return problems


def _squash(text: str) -> str:
    return "".join(text.split())


def _processors(data: dict, path: Path) -> Iterator[tuple[Path, str, dict]]:
    """(path, kind, processor) of each processor in the list at `path`; anything else is pydantic's to report."""
    processors = _get(data, *path)
    if not isinstance(processors, list):
        return
    for i, processor in enumerate(processors):
        if isinstance(processor, dict):
            yield path + (i,), _processor_kind(processor), processor


def _pipeline_problems(data: dict) -> list[tuple[Path, str]]:
    problems = []
    for path, kind, processor in _processors(data, ("pipeline", "processors")):
        if kind in ("mapping", "bloblang"):
            code = processor[kind]
            if not isinstance(code, str) or _squash(code) != _squash(SEED_BLOBLANG):
                problems.append((path + (kind,), f"custom bloblang is not supported; {_MAPPING_HINT}"))
        elif kind == "unarchive":
            if processor[kind] != _JSON_ARRAY:
                problems.append((path + (kind,), "only 'format: json_array' is supported (as in the seed config)"))
        else:
            problems.append((path, f"unsupported processor {kind!r}; {_MAPPING_HINT}"))
    return problems


def _batching_problems(data: dict, http_client: Path) -> list[tuple[Path, str]]:
    problems = []
    for path, kind, processor in _processors(data, http_client + ("batching", "processors")):
        if kind == "metric":
            if not _is_seed_counter(processor[kind]):
                problems.append((path + (kind,), "only the seed's counter is supported "
                                 "(type: counter, name: openmeter_events_sent, value: 1)"))
        elif kind == "archive":
            if processor[kind] != _JSON_ARRAY:
                problems.append((path + (kind,), "only 'format: json_array' is supported (as in the seed config)"))
        else:
            problems.append((path, f"unsupported batching processor {kind!r}; meterworker sends each batch as a "
                                   "JSON array (set its size with batching.count and batching.period)"))
    return problems


def _processor_kind(processor: dict) -> str:
    kinds = [key for key in processor if key != "label"]
    return str(kinds[0]) if len(kinds) == 1 else " + ".join(map(str, kinds)) or "(empty)"


def _is_seed_counter(metric: Any) -> bool:
    if not isinstance(metric, dict):
        return False
    value = metric.get("value")
    return {**metric, "value": 1} == _SEED_COUNTER and str(value) == "1"
