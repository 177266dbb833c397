import functools
import time
from datetime import datetime, timedelta, timezone
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterworker.durations import format_go_duration
from meterworker.query.promql import expand_interval, range_selectors
from meterworker.schedule import Schedule, Window, evaluation_time, parse_schedule, window_for

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ticks(expr, after, until, tz="UTC"):
    return list(parse_schedule(expr, tz).ticks_between(after, until))


# --- the forms ------------------------------------------------------------------------


def test_six_fields_put_seconds_first():
    assert ticks("0 * * * * *", utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 3)) == [
        utc(2026, 1, 1, 0, 1),
        utc(2026, 1, 1, 0, 2),
        utc(2026, 1, 1, 0, 3),
    ]
    # Seconds last (croniter's default) would read this as "every second of minute 30".
    assert parse_schedule("30 * * * * *").next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 30)
    assert parse_schedule("30 * * * * *").next_after(utc(2026, 1, 1, 0, 0, 30)) == utc(2026, 1, 1, 0, 1, 30)


def test_every_fifteen_seconds_cron():
    assert ticks("*/15 * * * * *", utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 1, 0, 1)) == [
        utc(2026, 1, 1, 0, 0, 15),
        utc(2026, 1, 1, 0, 0, 30),
        utc(2026, 1, 1, 0, 0, 45),
        utc(2026, 1, 1, 0, 1),
    ]


def test_five_fields_tick_at_second_zero():
    assert ticks("*/20 * * * *", utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 1, 1)) == [
        utc(2026, 1, 1, 0, 20),
        utc(2026, 1, 1, 0, 40),
        utc(2026, 1, 1, 1, 0),
    ]
    assert parse_schedule("15 10 * * 1-5").next_after(utc(2026, 1, 2, 11)) == utc(2026, 1, 5, 10, 15)


def test_single_value_ranges_and_no_wrap_around_ranges():
    assert parse_schedule("0 0 * 3-3 *").next_after(utc(2026, 1, 1)) == utc(2026, 3, 1)
    assert parse_schedule("0 5-5/2 * * *").next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 5)
    # robfig/cron (the seed's parser) refuses a range whose start is after its end (parser.go getRange).
    with pytest.raises(ValueError, match="22.*beyond end of range.*1"):
        parse_schedule("0 0 22-1 * * *")


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("@hourly", utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 1, 1)),
        ("@daily", utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 2)),
        ("@midnight", utc(2026, 1, 1, 0, 0, 1), utc(2026, 1, 2)),
        ("@weekly", utc(2026, 1, 1), utc(2026, 1, 4)),  # Sunday
        ("@monthly", utc(2026, 1, 15), utc(2026, 2, 1)),
        ("@yearly", utc(2026, 1, 1), utc(2027, 1, 1)),
        ("@annually", utc(2026, 6, 1), utc(2027, 1, 1)),
    ],
)
def test_keywords(expr, after, expected):
    assert parse_schedule(expr).next_after(after) == expected


def test_every_is_aligned_to_the_epoch():
    s = parse_schedule("@every 15s")
    assert s.next_after(utc(2026, 1, 1, 0, 0, 7)) == utc(2026, 1, 1, 0, 0, 15)
    assert ticks("@every 15s", utc(2026, 1, 1, 0, 0, 7), utc(2026, 1, 1, 0, 1)) == [
        utc(2026, 1, 1, 0, 0, 15),
        utc(2026, 1, 1, 0, 0, 30),
        utc(2026, 1, 1, 0, 0, 45),
        utc(2026, 1, 1, 0, 1),
    ]
    tick = parse_schedule("@every 7s").next_after(utc(2026, 1, 1))
    assert tick.timestamp() % 7 == 0 and tick - utc(2026, 1, 1) <= timedelta(seconds=7)


def test_every_accepts_go_durations():
    assert parse_schedule("@every 1m30s").next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 1, 30)
    assert parse_schedule("@every 2s").prev_before(utc(2026, 1, 1, 0, 0, 1)) == utc(2026, 1, 1)
    assert parse_schedule("@every 1m").is_tick(utc(2026, 5, 17, 13, 42))


def test_every_ignores_the_time_zone():
    india = parse_schedule("@every 1h", "Asia/Kolkata")  # UTC+05:30
    assert india.next_after(utc(2026, 1, 1, 0, 10)) == utc(2026, 1, 1, 1)


def test_prev_before_an_exact_tick_is_strictly_before():
    for expr in ("@hourly", "0 0 * * * *", "@every 1h"):
        s = parse_schedule(expr)
        assert s.prev_before(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 4)
        assert s.next_after(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 6)
        assert s.latest_at_or_before(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 5)


@pytest.mark.parametrize("expr", ["@hourly", "@every 1h"])
def test_fractions_of_a_second(expr):
    s = parse_schedule(expr)
    half = timedelta(microseconds=500_000)
    assert s.next_after(utc(2026, 1, 1, 5) - half) == utc(2026, 1, 1, 5)
    assert s.prev_before(utc(2026, 1, 1, 5) + half) == utc(2026, 1, 1, 5)
    assert s.latest_at_or_before(utc(2026, 1, 1, 5) + half) == utc(2026, 1, 1, 5)
    assert not s.is_tick(utc(2026, 1, 1, 5) + half)


def test_inputs_in_any_zone_outputs_in_utc():
    s = parse_schedule("@hourly")
    tick = s.next_after(datetime(2026, 7, 1, 12, 30, tzinfo=BERLIN))
    assert tick == utc(2026, 7, 1, 11) and tick.tzinfo is UTC
    assert s.is_tick(datetime(2026, 7, 1, 13, 0, tzinfo=BERLIN))


def test_naive_datetimes_are_rejected():
    s, naive = parse_schedule("@hourly"), datetime(2026, 1, 1)
    for call in (s.next_after, s.prev_before, s.latest_at_or_before, s.is_tick):
        with pytest.raises(ValueError, match="naive"):
            call(naive)
    with pytest.raises(ValueError, match="naive"):
        s.ticks_between(naive, utc(2026, 1, 2))
    with pytest.raises(ValueError, match="naive"):
        evaluation_time(naive, 0)


def test_ticks_between_is_lazy_and_half_open():
    s = parse_schedule("@every 1s")
    assert next(s.ticks_between(utc(2000, 1, 1), utc(3000, 1, 1))) == utc(2000, 1, 1, 0, 0, 1)
    assert list(s.ticks_between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 2))) == [
        utc(2026, 1, 1, 0, 0, 1),
        utc(2026, 1, 1, 0, 0, 2),
    ]
    assert list(s.ticks_between(utc(2026, 1, 1), utc(2026, 1, 1))) == []


def test_a_day_of_every_second_is_fast():
    start = time.perf_counter()
    assert sum(1 for _ in parse_schedule("@every 1s").ticks_between(utc(2026, 1, 1), utc(2026, 1, 2))) == 86400
    assert time.perf_counter() - start < 2


# --- time zones and daylight saving -------------------------------------------------


def test_cron_in_a_time_zone_returns_utc():
    # Berlin midnight is 23:00 UTC in winter, 22:00 UTC in summer.
    assert ticks("0 0 * * *", utc(2026, 1, 10), utc(2026, 1, 11), "Europe/Berlin") == [utc(2026, 1, 10, 23)]
    assert ticks("0 0 * * *", utc(2026, 7, 10), utc(2026, 7, 11), "Europe/Berlin") == [utc(2026, 7, 10, 22)]


def test_daily_windows_across_spring_forward_and_fall_back():
    s = parse_schedule("@daily", "Europe/Berlin")
    spring = list(s.ticks_between(utc(2026, 3, 28), utc(2026, 3, 30, 12)))
    assert spring == [utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)]
    assert [window_for(s, t, 0).seconds / 3600 for t in spring] == [24, 23]
    autumn = list(s.ticks_between(utc(2026, 10, 24), utc(2026, 10, 26, 12)))
    assert [window_for(s, t, 0).seconds / 3600 for t in autumn] == [24, 25]


def test_skipped_wall_times_do_not_tick():
    # As robfig/cron does (spec_test.go "2am nightly job (skipped)"): a wall time that the clocks jump over
    # does not happen that day; the next tick's window covers the day without one, so no usage is lost.
    # Berlin 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    assert ticks("30 2 * * *", utc(2026, 3, 28), utc(2026, 3, 31), "Europe/Berlin") == [
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 30, 0, 30),
    ]
    assert ticks("*/15 * * * *", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 20), "Europe/Berlin") == [
        utc(2026, 3, 29, 0, 45),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 1, 15),
    ]
    # Santiago skips midnight itself: 00:00 -04 becomes 01:00 -03 at 04:00 UTC, so 2026-09-06 has no midnight.
    assert ticks("@daily", utc(2026, 9, 5), utc(2026, 9, 8), "America/Santiago") == [
        utc(2026, 9, 5, 4),
        utc(2026, 9, 7, 3),
    ]


def test_repeated_wall_times_tick_in_both_passes():
    # Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC.
    assert ticks("30 2 * * *", utc(2026, 10, 24, 12), utc(2026, 10, 26, 12), "Europe/Berlin") == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 26, 1, 30),
    ]
    hourly = ticks("@hourly", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), "Europe/Berlin")
    assert hourly == [utc(2026, 10, 24, 23) + timedelta(hours=h) for h in range(25)]


def test_half_hour_daylight_saving():
    # Lord Howe Island moves between +11 and +10:30.
    s = parse_schedule("0 */30 * * * *", "Australia/Lord_Howe")
    assert list(s.ticks_between(utc(2026, 4, 4, 14), utc(2026, 4, 4, 15, 30))) == [
        utc(2026, 4, 4, 14, 30),  # 01:30 +11
        utc(2026, 4, 4, 15, 0),  # 01:30 +10:30
        utc(2026, 4, 4, 15, 30),  # 02:00 +10:30
    ]


# --- windows --------------------------------------------------------------------------


def test_monthly_windows_follow_the_calendar():
    s = parse_schedule("@monthly")
    february = window_for(s, utc(2026, 3, 1), 0)
    assert (february.start, february.end) == (utc(2026, 2, 1), utc(2026, 3, 1))
    assert expand_interval("sum(increase(x[$__interval]))", february) == "sum(increase(x[2419200s]))"
    march = window_for(s, utc(2026, 4, 1), 0)
    assert march.seconds == 31 * 86400
    assert expand_interval("increase(x[${__interval}])", march) == "increase(x[2678400s])"


def test_the_offset_shifts_the_window_and_the_evaluation_time():
    s = parse_schedule("0 * * * * *")
    w = window_for(s, utc(2026, 1, 1, 0, 5), 90)
    assert w == Window(utc(2026, 1, 1, 0, 2, 30), utc(2026, 1, 1, 0, 3, 30))
    assert w.seconds == 60
    assert evaluation_time(utc(2026, 1, 1, 0, 5), 90) == utc(2026, 1, 1, 0, 3, 30)
    assert evaluation_time(datetime(2026, 1, 1, 1, 5, tzinfo=BERLIN), 0.5) == utc(2026, 1, 1, 0, 4, 59, 500_000)


def test_window_for_rejects_bad_input():
    s = parse_schedule("@hourly")
    with pytest.raises(ValueError, match="not a tick"):
        window_for(s, utc(2026, 1, 1, 0, 30), 0)
    with pytest.raises(ValueError, match="offset"):
        window_for(s, utc(2026, 1, 1, 1), -1)
    with pytest.raises(ValueError, match="offset"):
        evaluation_time(utc(2026, 1, 1, 1), float("nan"))
    with pytest.raises(ValueError, match="empty window"):
        Window(utc(2026, 1, 1), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        Window(datetime(2026, 1, 1), utc(2026, 1, 2))


def test_expand_interval():
    w = window_for(parse_schedule("@every 1m30s"), utc(2026, 1, 1, 0, 1, 30), 0)
    q = "sum(rate(a[$__interval])) / sum(rate(b[${__interval}])) + c[$__interval]"
    assert expand_interval(q, w) == "sum(rate(a[90s])) / sum(rate(b[90s])) + c[90s]"
    # Other Grafana variables are not this one.
    assert expand_interval("x[$__rate_interval] * $__interval_ms", w) == "x[$__rate_interval] * $__interval_ms"
    assert expand_interval("up", w) == "up"


@pytest.mark.parametrize(
    ("promql", "expected"),
    [
        ("rate(x[1m])", ["1m"]),
        ("sum(increase(http_requests_total{job='api'}[1h30m]))", ["1h30m"]),
        ("max_over_time(rate(x[1m])[5m:1m])", ["1m", "5m"]),
        ("avg_over_time(x[10m:])", ["10m"]),
        ("rate(x[ 5m ]) + rate(y[2h])", ["5m", "2h"]),
        ("increase(x[$__interval])", []),
        ("increase(x[${__interval}]) + rate(y[30s])", ["30s"]),
        ('rate(x{path=~"/v[0-9]+/.*"}[15m])', ["15m"]),
        ("rate(x{path=~'[a]'}[1d])  # [2m] in a comment\n + y[3m]", ["1d", "3m"]),
        ("sum(up)", []),
    ],
)
def test_range_selectors(promql, expected):
    assert range_selectors(promql) == expected


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty schedule"),
        ("   ", "empty schedule"),
        ("* * * *", r"invalid cron expression '\* \* \* \*': expected 6 fields .* got 4"),
        ("* * * * * * *", "got 7"),
        ("61 * * * * *", r"invalid cron expression '61 \* \* \* \* \*': second field '61' is not valid"),
        ("* 25 * * *", "hour field '25'"),
        ("0 0 32 * *", "day-of-month field '32'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("x * * * *", "minute field 'x'"),
        ("*/0 * * * *", "minute field '\\*/0'"),
        ("0 0 30 2 *", "matches no date"),
        ("R * * * *", "R and H are not supported"),
        ("@fortnightly", "unknown schedule '@fortnightly'; expected one of @yearly"),
        ("@every", "missing period"),
        ("@every 0s", "^'@every 0s': the period must be at least 1s$"),
        ("@every 500ms", "at least 1s"),
        ("@every -1m", "at least 1s"),
        ("@every 1.5s", "whole number of seconds"),
        ("@every soon", "invalid duration 'soon'"),
    ],
)
def test_bad_schedules_are_rejected_with_a_reason(expr, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(expr)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../etc/passwd"])
def test_unknown_time_zones_are_rejected(tz):
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_schedule("@daily", tz)


# --- properties -----------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "America/St_Johns"]


@functools.cache
def transitions(tz: str, year: int = 2026) -> list[datetime]:
    """The instants in `year` at which the zone's UTC offset changes."""
    zone, found = ZoneInfo(tz), []
    t = utc(year, 1, 1)
    while t.year == year:
        nxt = t + timedelta(hours=1)
        if nxt.astimezone(zone).utcoffset() != t.astimezone(zone).utcoffset():
            found.append(nxt)
        t = nxt
    return found


def field(lo, hi, *, star=True):
    """(text, allowed values) of one cron field. Day fields leave out '*/n' and full
    ranges, which cron treats as '*' when choosing between day-of-month and day-of-week."""
    single = st.integers(lo, hi).map(lambda v: (str(v), {v}))
    values = st.lists(st.integers(lo, hi), min_size=1, max_size=4, unique=True)
    listed = values.map(lambda vs: (",".join(map(str, vs)), set(vs)))
    ranged = st.tuples(st.integers(lo, hi), st.integers(0, 4), st.integers(1, 3)).map(
        lambda a: (f"{a[0]}-{min(a[0] + a[1], hi)}/{a[2]}", set(range(a[0], min(a[0] + a[1], hi) + 1, a[2])))
    )
    forms = [single, listed, ranged]
    if star:
        every = st.integers(1, max(1, (hi - lo) // 2)).map(lambda n: (f"*/{n}", set(range(lo, hi + 1, n))))
        forms += [st.just(("*", set(range(lo, hi + 1)))), every]
    return st.one_of(*forms)


class Cron:
    """A generated cron expression and an independent check of which times it matches."""

    def __init__(self, second, minute, hour, dom, month, dow, six):
        self.fields = (second, minute, hour, dom, month, dow)
        self.six = six

    @property
    def expr(self):
        texts = [text for text, _ in self.fields]
        return " ".join(texts if self.six else texts[1:])

    def matches(self, wall: datetime) -> bool:
        second, minute, hour, dom, month, dow = (values for _, values in self.fields)
        weekday = (wall.weekday() + 1) % 7
        if self.fields[3][0] == "*" or self.fields[5][0] == "*":
            day = wall.day in dom and weekday in dow
        else:
            day = wall.day in dom or weekday in dow
        return wall.second in second and wall.minute in minute and wall.hour in hour and wall.month in month and day

    def __repr__(self):
        return repr(self.expr)


@st.composite
def crons(draw, six=None):
    six = draw(st.booleans()) if six is None else six
    star_day = st.just(("*", set(range(1, 32))))
    return Cron(
        second=draw(field(0, 59)) if six else ("0", {0}),
        minute=draw(field(0, 59)),
        hour=draw(field(0, 23)),
        dom=draw(st.one_of(star_day, field(1, 28, star=False))),
        month=draw(field(1, 12)),
        dow=draw(st.one_of(st.just(("*", set(range(7)))), field(0, 6, star=False))),
        six=six,
    )


periods = st.one_of(st.integers(1, 120), st.integers(1, 3 * 86400))
every_exprs = periods.map(lambda p: f"@every {format_go_duration(p)}")
keywords = st.sampled_from(["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"])
schedules = st.one_of(
    st.tuples(every_exprs, st.just("UTC")),
    st.tuples(keywords, st.sampled_from(ZONES)),
    st.tuples(crons().map(lambda c: c.expr), st.sampled_from(ZONES)),
)


@st.composite
def instants(draw, tz="UTC"):
    """Any second from 2000 to 2040, or one near a daylight-saving change of tz in 2026."""
    jitter = timedelta(seconds=draw(st.integers(-2 * 86400, 2 * 86400)), microseconds=draw(st.sampled_from([0, 1, 500_000])))
    if transitions(tz) and draw(st.booleans()):
        return draw(st.sampled_from(transitions(tz))) + jitter
    return utc(2000, 1, 1) + timedelta(seconds=draw(st.integers(0, 40 * 365 * 86400))) + jitter


@st.composite
def schedule_and_instant(draw):
    expr, tz = draw(schedules)
    return parse_schedule(expr, tz), draw(instants(tz))


properties = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@properties
@given(schedule_and_instant(), st.sampled_from([0, 30, 90.5]))
def test_consecutive_windows_tile_the_time_line(case, offset):
    s, start = case
    previous = window_for(s, s.latest_at_or_before(start), offset)
    for tick in islice(s.ticks_between(start, start + timedelta(days=3 * 366)), 5):
        assert tick.utcoffset() == timedelta(0) and tick.microsecond == 0
        w = window_for(s, tick, offset)
        assert w.start == previous.end
        assert w.end == evaluation_time(tick, offset) > w.start
        assert w.seconds == (tick - s.prev_before(tick)).total_seconds()
        assert expand_interval("increase(x[$__interval])", w) == f"increase(x[{round(w.seconds)}s])"
        previous = w


@properties
@given(schedule_and_instant())
def test_next_and_previous_ticks_agree(case):
    s, t = case
    before, after, latest = s.prev_before(t), s.next_after(t), s.latest_at_or_before(t)
    assert before < t < after
    assert latest <= t and s.is_tick(latest) and s.is_tick(before) and s.is_tick(after)
    assert latest == (t if s.is_tick(t) else before)
    assert s.next_after(latest) == after
    assert s.prev_before(after) == latest
    assert s.next_after(before) == (t if s.is_tick(t) else after)


@properties
@given(periods, instants())
def test_every_ticks_are_the_multiples_of_the_period(period, t):
    s = parse_schedule(f"@every {format_go_duration(period)}")
    after = s.next_after(t)
    assert after.timestamp() % period == 0
    assert timedelta(0) < after - t <= timedelta(seconds=period)
    assert s.prev_before(after) == after - timedelta(seconds=period)
    window = timedelta(seconds=3 * period)
    assert list(s.ticks_between(t, t + window)) == [after + k * timedelta(seconds=period) for k in range(3)]


@properties
@given(crons(), instants())
def test_cron_ticks_match_their_fields(cron, t):
    s = parse_schedule(cron.expr)
    tick = s.next_after(t)
    assert cron.matches(tick)
    assert cron.matches(s.prev_before(t))


@settings(max_examples=25, deadline=None)
@given(crons(six=False), st.sampled_from(ZONES[1:]), st.data())
def test_around_daylight_saving_no_tick_is_missed_or_invented(cron, tz, data):
    """Minute by minute: a tick is an instant whose wall-clock time matches (as for robfig/cron: a wall
    time the clocks jump over is not a tick)."""
    zone = ZoneInfo(tz)
    change = data.draw(st.sampled_from(transitions(tz)))
    start = change - timedelta(hours=3)
    expected = []
    for m in range(1, 6 * 60 + 1):
        t = start + timedelta(minutes=m)
        if cron.matches(t.astimezone(zone)):
            expected.append(t)
    s = parse_schedule(cron.expr, tz)
    assert list(s.ticks_between(start, start + timedelta(hours=6))) == expected


def test_schedules_compare_by_expression_and_zone():
    assert parse_schedule(" @hourly ") == parse_schedule("@hourly")
    assert parse_schedule("@hourly") != parse_schedule("@hourly", "Europe/Berlin")
    assert isinstance(parse_schedule("@every 1m"), Schedule) and parse_schedule("@every 1m").expr == "@every 1m"
