"""Cron expressions on which croniter and robfig/cron v3 agree give meterworker's ticks exactly as croniter
computes them: an independent implementation as the oracle, over many generated expressions.

They agree in UTC (no DST) where at most one day field is restricted and no day field spans its whole range
(croniter reads `1-31` or `0-6` as `*`, robfig as a restriction: tests/test_cron_robfig.py covers those)."""

from datetime import datetime, timedelta, timezone

from croniter import croniter
from hypothesis import given, settings, strategies as st

from meterworker.schedule import parse_schedule

UTC = timezone.utc


def field(lo: int, hi: int, full: bool = True):
    """A cron field over [lo, hi]: `*`, a number, a range, a step, a list of those; `full=False` leaves out
    what spans the whole range."""
    number = st.integers(lo, hi).map(str)
    span = st.tuples(st.integers(lo, hi), st.integers(lo, hi)).filter(lambda ab: ab[0] < ab[1]).filter(
        lambda ab: full or (ab[0], ab[1]) != (lo, hi)).map(lambda ab: f"{ab[0]}-{ab[1]}")
    step = st.tuples(st.sampled_from(["*", str(lo)]), st.integers(2, max(2, hi - lo))).map(lambda p: f"{p[0]}/{p[1]}")
    part = st.one_of(number, span, step) if full else st.one_of(number, span)
    listed = st.lists(part, min_size=2, max_size=3).map(",".join)
    return st.one_of(st.just("*"), part, listed) if full else st.one_of(part, listed)


@st.composite
def expressions(draw) -> str:
    seconds, minutes, hours = draw(field(0, 59)), draw(field(0, 59)), draw(field(0, 23))
    months = draw(field(1, 12))
    which = draw(st.sampled_from(["none", "dom", "dow"]))
    dom = draw(field(1, 28, full=False)) if which == "dom" else "*"
    dow = draw(field(0, 6, full=False)) if which == "dow" else "*"
    return f"{seconds} {minutes} {hours} {dom} {months} {dow}"


@settings(max_examples=300, deadline=None)
@given(expressions(), st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)))
def test_next_ticks_are_croniters(expr, start):
    start = start.replace(microsecond=0, tzinfo=UTC)
    oracle = croniter(expr, start, second_at_beginning=True)
    expected = [oracle.get_next(datetime) for _ in range(5)]
    schedule, got, t = parse_schedule(expr, "UTC"), [], start
    for _ in range(5):
        t = schedule.next_after(t)
        got.append(t)
    assert got == expected, expr
    for tick in expected:
        assert schedule.is_tick(tick), (expr, tick)
        assert schedule.latest_at_or_before(tick + timedelta(milliseconds=500)) == tick, (expr, tick)
