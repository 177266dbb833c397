"""What a backfill asks Prometheus, worked out without it: tasks of evenly spaced ticks, range requests per task,
instant requests where the spacing changes."""

from meterworker.schedule.request_plan import plan_query
from meterworker.schedule.stretches import Stretch, range_requests, task_parts


def test_a_stretch_goes_out_in_tasks_of_at_most_10000_ticks_of_about_equal_size():
    parts = task_parts(Stretch(0, 60, 10_080))
    assert [p.count for p in parts] == [5_040, 5_040]
    assert parts[1].first == 5_040 * 60 and parts[-1].last == 10_079 * 60
    assert [p.count for p in task_parts(Stretch(0, 60, 20_001))] == [6_667, 6_667, 6_667]
    assert [p.count for p in task_parts(Stretch(0, 60, 7))] == [7]


def test_range_requests_ask_500_ticks_first_then_as_many_as_250000_points_allow():
    assert range_requests([5_040], series=100) == 3  # 500, 2,500, 2,040
    assert range_requests([10_080], series=100) == 5  # 500, then 4 x 2,500 (the last 1,580)
    assert range_requests([10_080], series=1) == 2  # 500, then the 9,580 left (at most 10,000 steps)
    assert range_requests([400, 400], series=1_000_000) == 1 + 400  # one tick per request once the series are known


def test_the_plan_of_a_week_per_minute_through_the_workers_and_inline():
    week = [Stretch(60, 60, 10_080)]
    workers, inline = plan_query("q", week, ranged=True, inline=False), plan_query("q", week, ranged=True, inline=True)
    assert workers.ranged == [5_040, 5_040] and workers.range_requests(100, inline=False) == 6
    assert inline.ranged == [10_080] and inline.range_requests(100, inline=True) == 5
    assert workers.instant == 0 and workers.ticks == 10_080 and workers.steps == {60}


def test_short_stretches_and_instant_mode_are_asked_tick_by_tick():
    months = [Stretch(0, 31, 1), Stretch(31, 28, 1), Stretch(59, 31, 2)]  # no three equal windows in a row
    p = plan_query("m", months, ranged=True, inline=True)
    assert p.instant == 4 and p.ranged == [] and p.range_requests(5, inline=True) == 0
    assert plan_query("q", [Stretch(0, 60, 100)], ranged=False, inline=False).instant == 100
