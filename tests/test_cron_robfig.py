"""Cron read as robfig/cron v3 (Redpanda Connect's parser) reads it.

Every expected tick below is a literal, worked out by hand from robfig/cron v3.0.1's
rules (parser.go getRange/getField, spec.go Next/dayMatches, constantdelay.go) or
copied from its own tests (spec_test.go TestNext/TestActivation, parser_test.go); the
comment on each case says which. Go times like 2012-03-11T01:00:00-0500 are written
here as the same instant in UTC.
"""

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from meterworker.schedule import robfig
from meterworker.schedule import parse_schedule

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def chain(expr, tz, after, n):
    """The first n ticks after `after`, each from the previous (as robfig's runner steps)."""
    s, out = parse_schedule(expr, tz), []
    for _ in range(n):
        after = s.next_after(after)
        out.append(after)
    return out


CASES = [
    # --- the day rule: star bit only for * and ? (spec.go dayMatches; parser.go getRange) ---
    # 1-31 is a restriction, not a star, so dom OR dow: every day.
    ("0 0 0 1-31 * MON", "UTC", utc(2012, 7, 1), [utc(2012, 7, 2), utc(2012, 7, 3), utc(2012, 7, 4)]),
    # 0-6 likewise: the 1st OR any weekday, i.e. every day.
    ("0 0 0 1 * 0-6", "UTC", utc(2012, 7, 1), [utc(2012, 7, 2), utc(2012, 7, 3), utc(2012, 7, 4)]),
    # */1 keeps the star bit (getRange clears it only for step > 1): dom AND dow -> 1st, 15th.
    ("0 0 0 1,15 * */1", "UTC", utc(2012, 7, 1), [utc(2012, 7, 15), utc(2012, 8, 1), utc(2012, 8, 15)]),
    # */2 drops the star bit: odd days OR Sundays (TestActivation "* * */2 * Sun"); Jul 8 is a Sunday.
    ("0 0 0 */2 * SUN", "UTC", utc(2012, 7, 1), [utc(2012, 7, 3), utc(2012, 7, 5), utc(2012, 7, 7), utc(2012, 7, 8)]),
    # ? is a star: Sundays only (TestActivation "30 08 ? Jul Sun").
    ("0 0 0 ? * SUN", "UTC", utc(2012, 7, 1), [utc(2012, 7, 8), utc(2012, 7, 15)]),
    # Both restricted: the 13th OR a Friday (TestActivation "* * 1,15 * Sun"); Aug 13 2012 is a Monday.
    ("0 0 0 13 * FRI", "UTC", utc(2012, 7, 27), [utc(2012, 8, 3), utc(2012, 8, 10), utc(2012, 8, 13), utc(2012, 8, 17)]),
    # --- steps (getRange: "N/step" means "N-max/step"; getBits) ---
    ("5/15 * * * * *", "UTC", utc(2012, 7, 9), [utc(2012, 7, 9, 0, 0, 5), utc(2012, 7, 9, 0, 0, 20),
                                                 utc(2012, 7, 9, 0, 0, 35), utc(2012, 7, 9, 0, 0, 50),
                                                 utc(2012, 7, 9, 0, 1, 5)]),
    # TestNext "Wrap around hours".
    ("0 20-35/15 * * * *", "UTC", utc(2012, 7, 9, 15, 45), [utc(2012, 7, 9, 16, 20), utc(2012, 7, 9, 16, 35)]),
    # TestNext "Wrap around days".
    ("15/35 20-35/15 1/2 */2 * *", "UTC", utc(2012, 7, 9, 23, 35, 51), [utc(2012, 7, 11, 1, 20, 15)]),
    # TestNext "Wrap around years": Mon/2 is Mon,Wed,Fri.
    ("0 0 0 * Feb Mon/2", "UTC", utc(2012, 7, 9, 23, 35), [utc(2013, 2, 1)]),
    # A step wider than the range keeps only the start: minute 0.
    ("0 */100 * * * *", "UTC", utc(2012, 7, 9), [utc(2012, 7, 9, 1), utc(2012, 7, 9, 2)]),
    # Names in any case, in a range with a step: Jan and Mar.
    ("0 0 0 1 jan-MAR/2 *", "UTC", utc(2012, 7, 9), [utc(2013, 1, 1), utc(2013, 3, 1), utc(2014, 1, 1)]),
    # ? is accepted in any field (getRange treats it as *): every second.
    ("? * * * * *", "UTC", utc(2012, 7, 9), [utc(2012, 7, 9, 0, 0, 1), utc(2012, 7, 9, 0, 0, 2)]),
    # 5-5/2 is just 5 (parser_test TestRange "5-6/2").
    ("0 0 5-5/2 * * *", "UTC", utc(2012, 7, 9), [utc(2012, 7, 9, 5), utc(2012, 7, 10, 5)]),
    # --- month ends and leap days (Next skips days a month lacks) ---
    ("0 0 31 * *", "UTC", utc(2026, 1, 31), [utc(2026, 3, 31), utc(2026, 5, 31), utc(2026, 7, 31),
                                              utc(2026, 8, 31), utc(2026, 10, 31), utc(2026, 12, 31)]),
    # TestNext "Leap year".
    ("0 0 0 29 Feb ?", "UTC", utc(2012, 7, 9, 23, 35), [utc(2016, 2, 29)]),
    ("0 0 29 2 *", "UTC", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29)]),
    # --- Europe/Berlin: 2026-03-29 01:00 UTC 02:00 CET -> 03:00 CEST; 2026-10-25 01:00 UTC back ---
    # TestNext "2am nightly job (skipped)": 02:30 does not exist on Mar 29, no tick that day.
    ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28), [utc(2026, 3, 28, 1, 30), utc(2026, 3, 30, 0, 30)]),
    # The minute walk adds absolute minutes: 01:45 CET + 15m is 03:00 CEST, which matches.
    ("*/15 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 30), [utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1),
                                                                utc(2026, 3, 29, 1, 15)]),
    # TestNext "1am nightly job (runs twice)": 02:30 CEST, then 02:30 CET.
    ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30),
                                                             utc(2026, 10, 26, 1, 30)]),
    # TestNext "hourly job" at fall-back: 02:00 CEST, 02:00 CET, 03:00 CET.
    ("@hourly", "Europe/Berlin", utc(2026, 10, 24, 23, 30), [utc(2026, 10, 25), utc(2026, 10, 25, 1),
                                                             utc(2026, 10, 25, 2)]),
    # --- America/New_York, robfig's own TestNext cases (2012) ---
    # "hourly job": 01:00 EST -> 03:00 EDT.
    ("0 0 * * * ?", "America/New_York", utc(2012, 3, 11, 6), [utc(2012, 3, 11, 7), utc(2012, 3, 11, 8)]),
    # "2am nightly job (skipped)": 00:00 EST -> 2012-03-12 02:00 EDT.
    ("0 0 2 * * ?", "America/New_York", utc(2012, 3, 11, 5), [utc(2012, 3, 12, 6)]),
    # "Daylight savings time 2am EST (-5) -> 3am EDT (-4)": the next 02:30 on Mar 11 is in 2013.
    ("0 30 2 11 Mar ?", "America/New_York", utc(2012, 3, 11, 5), [utc(2013, 3, 11, 6, 30)]),
    # "1am nightly job (runs twice)": 01:00 EDT, 01:00 EST, next day 01:00 EST.
    ("0 0 1 * * ?", "America/New_York", utc(2012, 11, 4, 4), [utc(2012, 11, 4, 5), utc(2012, 11, 4, 6),
                                                             utc(2012, 11, 5, 6)]),
    # "Daylight savings time 2am EDT (-4) => 1am EST (-5)": from 01:45 EDT to 01:30 EST.
    ("0 30 1 04 Nov ?", "America/New_York", utc(2012, 11, 4, 5, 45), [utc(2012, 11, 4, 6, 30)]),
    # "2am nightly job" at fall-back: 02:00 EST only (02:00 EDT never is).
    ("0 0 2 * * ?", "America/New_York", utc(2012, 11, 4, 4), [utc(2012, 11, 4, 7), utc(2012, 11, 5, 7)]),
    # --- midnight skipped by DST ---
    # TestNext "DST resulting in midnight not being a valid time" (robfig issue 157).
    ("0 0 9 10 * ?", "America/Sao_Paulo", utc(2018, 10, 17, 9), [utc(2018, 11, 10, 11)]),
    ("0 0 9 22 * ?", "America/Sao_Paulo", utc(2018, 2, 14, 10), [utc(2018, 2, 22, 12)]),
    # Santiago 2026-09-06 04:00 UTC: 00:00 -04 -> 01:00 -03, so Sep 6 has no 00:00 and no
    # tick; the hour walk goes 23:00 -04 +1h = 01:00 -03, on to 00:00 -03 on Sep 7.
    ("@daily", "America/Santiago", utc(2026, 9, 5), [utc(2026, 9, 5, 4), utc(2026, 9, 7, 3)]),
]


@pytest.mark.parametrize(("expr", "tz", "after", "expected"), CASES)
def test_ticks_as_robfig_steps_them(expr, tz, after, expected):
    assert chain(expr, tz, after, len(expected)) == expected
    s = parse_schedule(expr, tz)
    for tick in expected:
        assert s.is_tick(tick)
        assert s.latest_at_or_before(tick) == tick
        assert s.latest_at_or_before(tick + timedelta(microseconds=500_000)) == tick
    for before, tick in zip(expected, expected[1:]):
        assert s.prev_before(tick) == before


def test_new_york_2026_spring_forward():
    # 2026-03-07 02:30 EST is 07:30 UTC; Mar 8 02:30 does not exist; Mar 9 02:30 EDT is 06:30 UTC.
    assert chain("30 2 * * *", "America/New_York", utc(2026, 3, 7), 2) == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 9, 6, 30)]
    assert parse_schedule("30 2 * * *", "America/New_York").prev_before(utc(2026, 3, 9, 6, 30)) == utc(2026, 3, 7, 7, 30)


def test_no_tick_within_five_years():
    # spec.go: "If no time is found within five years, return zero." From 2096-03-01 the
    # next Feb 29 is in 2104 (2100 is not a leap year), beyond 2101.
    cron = robfig.parse("0 0 29 2 *")
    assert cron.next_after(utc(2096, 3, 1)) is None
    assert cron.robfig_next(utc(2096, 3, 1)) is None
    with pytest.raises(ValueError, match="matches no time within five years after 2096-03-01"):
        parse_schedule("0 0 29 2 *").next_after(utc(2096, 3, 1))
    assert cron.prev_before(utc(2096, 6, 1)) == utc(2096, 2, 29)
    # TestNext "Unsatisfiable": robfig parses it, Next returns zero; meterworker refuses it.
    assert robfig.parse("0 0 0 30 Feb ?").next_after(utc(2012, 7, 9)) is None
    with pytest.raises(ValueError, match="matches no date"):
        parse_schedule("0 0 0 30 Feb ?")


def test_lord_howe_where_robfigs_walk_depends_on_its_start():
    # Lord Howe 2026-04-04 15:00 UTC: 02:00 +11 -> 01:30 +10:30. robfig's Next from
    # Apr 5 00:00 +11 (13:00 UTC) walks 00:00:01, 01:00 +11 (minute and second loops),
    # then adds whole hours: 01:30 +10:30, ..., 00:30 +10:30 on Apr 6 (hour 0, minute 30:
    # no match), so it reaches 00:00 only on Apr 7 (13:30 UTC). Started after the change it
    # returns Apr 6 00:00 +10:30 (Apr 5 13:30 UTC). meterworker keeps that tick.
    cron = robfig.parse("@daily", "Australia/Lord_Howe")
    assert cron.robfig_next(utc(2026, 4, 4, 13)) == utc(2026, 4, 6, 13, 30)
    assert cron.robfig_next(utc(2026, 4, 5, 12)) == utc(2026, 4, 5, 13, 30)
    assert cron.next_after(utc(2026, 4, 4, 13)) == utc(2026, 4, 5, 13, 30)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        # meterworker aligns @every to the Unix epoch (README); robfig's ConstantDelaySchedule
        # counts from the previous run (t + delay), i.e. from when the process started.
        ("@every 90s", utc(2026, 1, 1, 0, 0, 10), [utc(2026, 1, 1, 0, 1, 30), utc(2026, 1, 1, 0, 3)]),
        # 7m does not divide a day: 2026-01-02 00:00 UTC is 1767312000 s = 4207885 * 420 + 300.
        ("@every 7m", utc(2026, 1, 2), [utc(2026, 1, 2, 0, 2), utc(2026, 1, 2, 0, 9), utc(2026, 1, 2, 0, 16)]),
        ("@every 1h30m", utc(2026, 1, 1, 0, 0, 1), [utc(2026, 1, 1, 1, 30), utc(2026, 1, 1, 3)]),
    ],
)
def test_every_is_aligned_to_the_epoch_unlike_robfig(expr, after, expected):
    assert chain(expr, "UTC", after, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        # constantdelay.go rounds < 1s up to 1s and truncates fractions; meterworker refuses.
        ("@every 500ms", "at least 1s"),
        ("@every 1.5s", "whole number of seconds"),
        # Go's time.ParseDuration has no 'd' (robfig: "failed to parse duration").
        ("@every 1d", "unknown unit 'd'"),
    ],
)
def test_every_periods_robfig_would_round_are_refused(expr, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(expr)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 L * *", "day-of-month field 'L' is not valid: failed to parse int from 'L' .L, W and # are not supported"),
        ("0 0 15W * *", "day-of-month field '15W' is not valid"),
        ("0 0 * * 1#2", "day-of-week field '1#2' is not valid"),
        ("0 0 * * 7", r"day-of-week field '7' is not valid: end of range \(7\) above maximum \(6\)"),
        ("60 * * * * *", r"second field '60' is not valid: end of range \(60\) above maximum \(59\)"),
        ("0 24 * * *", "hour field '24'"),
        ("0 0 0 * *", r"day-of-month field '0' is not valid: beginning of range \(0\) below minimum \(1\)"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 22-1 * * *", r"hour field '22-1' is not valid: beginning of range \(22\) beyond end of range \(1\)"),
        ("5--5 * * * *", "too many hyphens"),  # parser_test TestRange
        ("*//2 * * * *", "too many slashes"),
        ("*/0 * * * *", "step of range should be a positive number"),  # spec_test TestSlash0NoHang
        ("*/-12 * * * *", r"negative number \(-12\) not allowed"),
        ("0 0 * * monday", "failed to parse int from 'monday'"),  # names are three letters
        ("0 0 * * * * 2026", "got 7"),
        ("@fortnightly", "unknown schedule"),  # parser_test "unrecognized descriptor"
    ],
)
def test_what_robfig_refuses_is_refused(expr, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(expr)


def test_what_robfig_accepts_beyond_croniter():
    # getField drops empty list items; Atoi takes a leading +; a leading "*-" ignores the rest.
    assert chain("1,,2 * * * * *", "UTC", utc(2012, 7, 9), 3) == [
        utc(2012, 7, 9, 0, 0, 1), utc(2012, 7, 9, 0, 0, 2), utc(2012, 7, 9, 0, 1, 1)
    ]
    assert chain("+5 * * * * *", "UTC", utc(2012, 7, 9), 1) == [utc(2012, 7, 9, 0, 0, 5)]
    assert chain("*-5 * * * * *", "UTC", utc(2012, 7, 9), 2) == [utc(2012, 7, 9, 0, 0, 1), utc(2012, 7, 9, 0, 0, 2)]


def test_descriptors_are_robfigs_bit_sets():
    # parser.go parseDescriptor: @weekly is Sunday midnight, @yearly Jan 1.
    assert chain("@weekly", "UTC", utc(2012, 7, 9), 1) == [utc(2012, 7, 15)]
    assert chain("@yearly", "UTC", utc(2012, 7, 9), 1) == [utc(2013, 1, 1)]
    assert chain("@monthly", "UTC", utc(2012, 7, 9), 1) == [utc(2012, 8, 1)]
    assert chain("@midnight", "UTC", utc(2012, 7, 9), 1) == [utc(2012, 7, 10)]


def test_the_module_is_pure():
    code = (
        "import sys, meterworker.schedule.robfig; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('celery', 'redis', 'kombu', 'httpx', 'requests', 'croniter')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
