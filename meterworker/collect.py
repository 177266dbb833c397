"""One query for one tick: window, PromQL, evaluation, events. Shared by workers, `once` and backfill."""

import logging
from dataclasses import dataclass
from datetime import datetime

from .events import MappedResult, map_result
from .schedule import Schedule, Window, evaluation_time, expand_interval, window_for

log = logging.getLogger(__name__)


@dataclass
class Collected:
    query: str
    tick: datetime
    window: Window
    promql: str
    result: MappedResult


def collect(config, prometheus, query, schedule: Schedule, tick: datetime) -> Collected:
    offset = config.input.prometheus.query_offset
    window = window_for(schedule, tick, offset)
    promql = expand_interval(query.promql, window)
    data = prometheus.query(promql, evaluation_time(tick, offset))
    mapping = config.mapping_for(query)
    mapped = map_result(
        data, collector=config.meterworker.name, query=query.name, mapping=mapping, start=window.start, end=window.end
    )
    report_skipped(query.name, tick, mapped, mapping.subject_label)
    return Collected(query.name, tick, window, promql, mapped)


def report_skipped(query: str, tick: datetime, mapped: MappedResult, subject_label: str) -> None:
    if mapped.non_finite:
        log.warning(
            "query %s tick %s: %d series with NaN or Inf values not sent, e.g. %s",
            query, tick.isoformat(), len(mapped.non_finite), mapped.non_finite[0],
        )
    if mapped.missing_subject:
        log.warning(
            "query %s tick %s: %d series without the subject label %r not sent, e.g. %s",
            query, tick.isoformat(), len(mapped.missing_subject), subject_label, mapped.missing_subject[0],
        )


def chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]
