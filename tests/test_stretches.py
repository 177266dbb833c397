"""Stretches of evenly spaced ticks and their chunks (pure), and how a range answer maps onto ticks."""

import pytest

from meterworker.query.prometheus import PrometheusError, RangeMismatch, steps_of
from meterworker.schedule.stretches import MAX_STEPS, Stretch, chunked, stretches, ticks_per_request


def test_stretches_break_where_the_spacing_or_the_window_changes():
    pairs = [(60, 60), (120, 60), (180, 60), (300, 120), (420, 120), (480, 60), (540, 60)]
    assert list(stretches(pairs)) == [Stretch(60, 60, 3), Stretch(300, 120, 2), Stretch(480, 60, 2)]
    # a window of the stretch's length but a gap before the tick (a skipped tick) starts a new stretch
    assert list(stretches([(0, 10), (10, 10), (30, 10)])) == [Stretch(0, 10, 2), Stretch(30, 10, 1)]
    assert list(stretches([])) == []
    assert list(Stretch(60, 60, 3).ticks()) == [60, 120, 180]


def test_chunks_cover_the_stretch_in_order_with_the_size_asked_for_each():
    sizes = iter([2, 5, 5])
    parts = list(chunked(Stretch(0, 10, 9), lambda: next(sizes)))
    assert parts == [Stretch(0, 10, 2), Stretch(20, 10, 5), Stretch(70, 10, 2)]
    assert [t for p in parts for t in p.ticks()] == list(range(0, 90, 10))
    with pytest.raises(ValueError):
        list(chunked(Stretch(0, 10, 3), lambda: 0))


def test_a_request_stays_under_the_points_limits():
    assert ticks_per_request(0) == ticks_per_request(1) == MAX_STEPS < 11_000
    assert ticks_per_request(100) == 2_500 and ticks_per_request(10**7) == 1


def _matrix(*series, **extra):
    return {"status": "success", **extra, "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": values} for labels, values in series]}}


def test_a_range_answer_is_split_into_the_instants_asked_for():
    body = _matrix(({"instance": "a"}, [[1000, "1"], [1060, "2"]]), ({"instance": "b"}, [[1060.0, "5"]]))
    assert steps_of(body, 1000.0, 60, 3) == [[({"instance": "a"}, "1")],
                                             [({"instance": "a"}, "2"), ({"instance": "b"}, "5")], []]


@pytest.mark.parametrize("body, error", [
    (_matrix(({"instance": "a"}, [[1030, "1"]])), RangeMismatch),  # aligned to other instants
    (_matrix(({"instance": "a"}, [[1180, "1"]])), RangeMismatch),  # beyond the last instant
    (_matrix(({}, [[1000, "1"]])), RangeMismatch),                 # a scalar's answer looks like this
    ({"status": "success", "data": {"resultType": "vector", "result": []}}, RangeMismatch),
    (_matrix(isPartial=True), PrometheusError),
    ({"status": "error", "errorType": "bad_data", "error": "nope"}, PrometheusError),
])
def test_answers_that_do_not_map_onto_the_ticks_are_refused(body, error):
    with pytest.raises(error):
        steps_of(body, 1000.0, 60, 3)
