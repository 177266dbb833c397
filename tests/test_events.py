import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import pytest

from meterworker.query.ids import event_id, rfc3339
from meterworker.query.mapping import MappedResult, ResultTypeError, map_series
from meterworker.query.prometheus import parse_stream

START = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
END = datetime(2026, 11, 27, 10, 1, tzinfo=timezone.utc)


@dataclass
class M:
    type: str | None = None
    source: str = "prometheus"
    subject_label: str = "instance"
    labels: list[str] | None = None
    event_time: str = "start"


def vector(*series):
    return {"resultType": "vector", "result": [{"metric": m, "value": [END.timestamp(), v]} for m, v in series]}


def run(data, mapping=M(), query="api_calls"):
    """`data` as Prometheus sends it, read and mapped as the query task does."""
    got = parse_stream([orjson.dumps({"status": "success", "data": data})])
    out = MappedResult()
    out.events = list(map_series(got.series, scalar=got.result_type == "scalar", collector="mw", query=query,
                                 mapping=mapping, start=START, end=END, skipped=out.skipped))
    return out


def test_one_cloudevent_per_series_with_the_seed_mapping():
    out = run(vector(({"instance": "a", "job": "x"}, "1.5"), ({"instance": "b"}, "3")))
    assert [e["subject"] for e in out.events] == ["a", "b"]
    ev = out.events[0]
    assert ev["specversion"] == "1.0"
    assert ev["type"] == "api_calls"
    assert ev["source"] == "prometheus"
    assert ev["time"] == "2026-11-27T10:00:00Z"
    assert ev["data"] == {"value": 1.5, "metric": {"instance": "a", "job": "x"}}
    assert json.loads(json.dumps(out.events[1]))["data"]["value"] == 3


def test_ids_are_deterministic_per_window_and_series():
    a = run(vector(({"instance": "a"}, "1"))).events[0]["id"]
    again = run(vector(({"instance": "a"}, "2"))).events[0]["id"]
    other_series = run(vector(({"instance": "a", "x": "1"}, "1"))).events[0]["id"]
    other_query = run(vector(({"instance": "a"}, "1")), query="other").events[0]["id"]
    later = event_id("mw", "api_calls", END, END.replace(minute=2), {"instance": "a"})
    assert a == again
    assert len({a, other_series, other_query, later}) == 4


def test_ids_are_uuid5_of_the_window_and_sorted_labels_as_ever():
    """Ids must not change across versions (a changed id bills a re-run window twice)."""
    import uuid

    from hypothesis import given, strategies as st

    from meterworker.query.ids import ID_NAMESPACE

    tricky = st.text(alphabet=st.sampled_from(list('ab"\\/\x00\x1f\x7f\n\té\u2028\U0001f600')) | st.characters(),
                     max_size=12)

    @given(st.dictionaries(st.text(min_size=1, max_size=8) | tricky, st.text(max_size=12) | tricky, max_size=5),
           st.text(max_size=10) | tricky)
    def check(labels, query):
        key = json.dumps(["mw", query, rfc3339(START), rfc3339(END), sorted(labels.items())], separators=(",", ":"))
        assert event_id("mw", query, START, END, labels) == str(uuid.uuid5(ID_NAMESPACE, key))

    check()
    # pinned: the id of this series and window as meterworker 0.1.0 computed it
    assert event_id("c", "q", START, END, {"instance": "é\"x"}) == "1a238dd7-09a6-5a44-873e-f15387e99d6a"


def test_label_order_does_not_change_the_id():
    assert event_id("c", "q", START, END, {"a": "1", "b": "2"}) == event_id("c", "q", START, END, {"b": "2", "a": "1"})


def test_non_finite_values_are_counted_not_sent():
    out = run(vector(({"instance": "a"}, "NaN"), ({"instance": "b"}, "+Inf"), ({"instance": "c"}, "-Inf"),
                     ({"instance": "d"}, "2")))
    assert [e["subject"] for e in out.events] == ["d"]
    assert out.skipped.non_finite == 3 and out.skipped.no_subject == 0
    assert all(math.isfinite(e["data"]["value"]) for e in out.events)


def test_series_without_subject_label_is_reported_not_sent_empty():
    out = run(vector(({"job": "x"}, "1"), ({"instance": ""}, "1"), ({"instance": "a"}, "1")))
    assert [e["subject"] for e in out.events] == ["a"]
    assert out.skipped.no_subject == 2 and out.skipped.examples == [{"job": "x"}, {"instance": ""}]


def test_mapping_options():
    out = run(vector(({"customer": "acme", "instance": "i", "job": "j"}, "4")),
              M(type="api_requests", source="billing", subject_label="customer", labels=["job"], event_time="end"))
    ev = out.events[0]
    assert (ev["type"], ev["source"], ev["subject"], ev["time"]) == ("api_requests", "billing", "acme", rfc3339(END))
    assert ev["data"]["metric"] == {"job": "j"}


def test_scalar_gives_one_event():
    out = run({"resultType": "scalar", "result": [END.timestamp(), "7"]})
    assert len(out.events) == 1
    assert out.events[0]["data"]["value"] == 7
    assert out.events[0]["subject"] == "api_calls"


@pytest.mark.parametrize("kind,words", [("matrix", "range vector"), ("string", "string result")])
def test_matrix_and_string_are_errors_saying_why(kind, words):
    with pytest.raises(ResultTypeError, match=words):
        run({"resultType": kind, "result": []})


def test_rfc3339():
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)) == "2026-01-02T03:04:05.5Z"
