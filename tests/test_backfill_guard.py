"""A backfill above 10,000 ticks asks before it starts (issue 13, class 5): through the real CLI, with stdin a
pipe (refused without --yes) and a terminal (a pty: asked), and the plan built as it is consumed."""

import os
import pty
import select
import subprocess
import time
from datetime import datetime, timedelta, timezone

from meterworker.schedule.backfill import Plan
from meterworker.schedule.cron import parse_schedule
from tests.support.mwproc import meterworker, write_config

DEAD_REDIS = "redis://127.0.0.1:1/0"  # the guard answers before anything touches Redis
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def cfg(tmp_path, schedule):
    return str(write_config(tmp_path / "c.yaml", "http://127.0.0.1:9", "http://127.0.0.1:9",
                            [{"name": "q", "promql": "up"}], schedule=schedule, redis_url=DEAD_REDIS))


def run(*args, stdin=subprocess.DEVNULL):
    return subprocess.run(meterworker(*args), capture_output=True, text=True, timeout=120, stdin=stdin)


def lines(r):
    return [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]


# --- the plan ----------------------------------------------------------------------------------------


def test_the_plan_interleaves_queries_oldest_first_and_counts_every_exactly_by_arithmetic():
    every = parse_schedule("@every 20s")
    minutely = parse_schedule("* * * * *")
    plan = Plan([("b", every), ("a", minutely)], T0, T0 + timedelta(minutes=2))
    start = int(T0.timestamp())
    expected = sorted([(start + 20 * k, "b") for k in range(7)] + [(start + 60 * k, "a") for k in range(3)])
    assert list(plan) == [(name, tick) for tick, name in expected]
    assert list(plan) == list(plan)  # iterable again
    assert plan.count() == 10

    ten_years = Plan([("q", parse_schedule("@every 10s"))], T0 - timedelta(days=3650), T0)
    assert ten_years.counted_exactly and ten_years.count(cap=10_000) == 3650 * 8640 + 1
    first = next(iter(ten_years))
    assert first == ("q", int((T0 - timedelta(days=3650)).timestamp()))

    crons = Plan([("q", minutely)], T0 - timedelta(days=3650), T0)
    assert not crons.counted_exactly and crons.count(cap=10_000) == 10_001  # counting stopped past the cap


def test_an_every_count_matches_the_ticks_for_ranges_that_start_and_end_off_and_on_ticks():
    every = parse_schedule("@every 7s")
    for a, b in [(0, 0), (0, 6), (1, 7), (3, 50), (7, 7), (-20, 13), (5, 4)]:
        start, end = T0 + timedelta(seconds=a), T0 + timedelta(seconds=b)
        plan = Plan([("q", every)], start, end)
        base = int(T0.timestamp())
        oracle = [t for t in range(base + a, base + b + 1) if t % 7 == 0]
        assert [t for _, t in plan] == oracle and plan.count() == len(oracle), (a, b)


# --- the CLI -----------------------------------------------------------------------------------------


def test_ten_years_at_every_10s_is_refused_in_one_line_without_yes_when_stdin_is_not_a_terminal(tmp_path):
    started = time.monotonic()
    r = run("backfill", "-c", cfg(tmp_path, "@every 10s"), "--from", "now-87600h", "--to", "now")
    took = time.monotonic() - started
    assert r.returncode == 1, r.stderr
    assert len(lines(r)) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "backfill of 31,536,001 ticks from " in r.stderr or "backfill of 31,536,000 ticks from " in r.stderr
    assert "more than 10,000: check --from and --to, or pass --yes to go ahead" in r.stderr
    assert took < 60, took  # a plan of 31M ticks takes minutes and 5.7 GB; refused, the command ends


def test_a_minutely_cron_of_ten_years_is_refused_without_counting_it_all(tmp_path):
    r = run("backfill", "-c", cfg(tmp_path, "* * * * *"), "--from", "now-87600h", "--to", "now")
    assert r.returncode == 1, r.stderr
    assert len(lines(r)) == 1 and "backfill of more than 10,000 ticks from " in r.stderr, r.stderr


def test_yes_goes_ahead_and_a_backfill_under_the_guard_never_asks(tmp_path):
    c = cfg(tmp_path, "@every 10s")
    for args in (["--from", "now-87600h", "--to", "now", "--yes"], ["--from", "now-1h", "--to", "now"]):
        r = run("backfill", "-c", c, *args)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr and "pass --yes" not in r.stderr, r.stderr
        # past the guard, the next thing that fails is the dead Redis, in one line
        assert lines(r)[-1].startswith("Error: Redis does not answer"), r.stderr
    assert lines(r)[0].split(" ticks from ")[0] in ("backfill: 360", "backfill: 361"), r.stderr


def _on_a_terminal(args, answer: bytes):
    """Runs the command with stdin, stdout and stderr on a pty; types `answer` once it asks."""
    master, slave = pty.openpty()
    p = subprocess.Popen(meterworker(*args), stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the command ended, the pty closed
                break
            if not chunk:
                break
            out += chunk
        if not answered and b"go ahead?" in out:
            os.write(master, answer)
            answered = True
        if p.poll() is not None and not ready:
            break
    p.wait(timeout=30)
    os.close(master)
    return p.returncode, out.decode(errors="replace")


def test_on_a_terminal_it_asks_and_no_stops_it_yes_goes_ahead(tmp_path):
    args = ["backfill", "-c", cfg(tmp_path, "@every 10s"), "--from", "now-87600h", "--to", "now"]
    code, out = _on_a_terminal(args, b"n\n")
    assert code == 1, out
    assert "ticks from " in out and "more than 10,000; go ahead? [y/N]" in out, out
    assert "backfill not started" in out and "Traceback" not in out and "Redis" not in out, out

    code, out = _on_a_terminal(args, b"y\n")
    assert code == 1, out
    assert "go ahead? [y/N]" in out and "backfill not started" not in out, out
    assert "Redis does not answer" in out and "Traceback" not in out, out
