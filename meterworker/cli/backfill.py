"""`meterworker backfill`: evaluate every tick of a past range, with the same ids as the live run."""

import contextlib
import json
import signal
import sys
import time
import uuid

import click

from meterworker import runtime
from meterworker.durations import format_go_duration, parse_duration
from meterworker.config.models import PrometheusInput, Settings
from meterworker.schedule.backfill import (GUARD_TICKS, longest_tick, plan, read_report, report_key, report_tick,
                                           run_name, sent_counts, stop, window_lengths)
from meterworker.schedule.stretches import Stretch, pieces, stretches, task_parts
from meterworker.cli.common import TimeParam, command_delivery, config_option, load
from meterworker.cli.progress import Progress
from meterworker.cli.group import main

DEFAULT_ATTEMPTS = 5
QUEUE_SLACK = 30.0  # seconds, on top of the longest tick: a worker picking the task up, a slow outbox write


def _queries(cfg, names):
    if not names:
        return cfg.queries
    known = {q.name for q in cfg.queries}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"unknown query {', '.join(unknown)}; the config has {', '.join(sorted(known))}",
                                 param_hint="--query")
    return [q for q in cfg.queries if q.name in names]


class DurationParam(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if seconds <= 0:
            self.fail("must be more than 0s", param, ctx)
        return seconds


def _timeout(attempts: int, retry_period: float, max_backoff: float, prometheus_timeout: float) -> float:
    return QUEUE_SLACK + longest_tick(attempts, retry_period, max_backoff, prometheus_timeout)


def default_timeout(cfg, attempts: int) -> float:
    """The longest a tick takes through its attempts (query_retry_period, query_max_backoff, the Prometheus
    timeout), plus slack."""
    settings = cfg.meterworker
    return _timeout(attempts, settings.query_retry_period, settings.query_max_backoff, cfg.input.prometheus.timeout)


_DEFAULTS_TIMEOUT = _timeout(DEFAULT_ATTEMPTS, Settings.model_fields["query_retry_period"].default,
                             Settings.model_fields["query_max_backoff"].default,
                             PrometheusInput.model_fields["timeout"].default)


@main.command()
@config_option
@click.option("--from", "start", type=TimeParam(), required=True, help="First tick (inclusive).")
@click.option("--to", "end", type=TimeParam(), required=True, help="Last tick (inclusive).")
@click.option("--query", "names", multiple=True, help="Only this query (repeatable).")
@click.option("--inline", is_flag=True, help="Run in this process, without workers.")
@click.option("--print", "print_only", is_flag=True,
              help="With --inline: print the events as JSON lines instead of sending them.")
@click.option("--attempts", type=click.IntRange(min=1), default=DEFAULT_ATTEMPTS, show_default=True,
              help="Through the workers: attempts per tick before it is given up (live ticks retry until "
                   "they succeed). A tick given up stays pending, with its error, in `status`.")
@click.option("--timeout", type=DurationParam(),
              help="Through the workers: stop waiting when no tick has completed for this long (e.g. 90s). "
                   "Default: the longest one tick can take through its attempts, from meterworker."
                   "query_retry_period, meterworker.query_max_backoff and input.prometheus.timeout, plus "
                   f"{QUEUE_SLACK:g}s ({format_go_duration(_DEFAULTS_TIMEOUT)} with the defaults).")
@click.option("--instant", is_flag=True,
              help="An instant query per tick. By default evenly spaced ticks are asked with range queries (one "
                   "request per up to 10,000 ticks); the events are the same.")
@click.option("--range", "ranged", is_flag=True, hidden=True, help="Range queries where ticks are evenly spaced "
                                                                   "(the default).")
@click.option("--dry-run", is_flag=True,
              help="Print the plan (ticks and requests per query, estimated events) and touch nothing: no Redis, "
                   "no task, no request to the sink; one instant query per query estimates its events.")
@click.option("--yes", is_flag=True,
              help=f"Go ahead with more than {GUARD_TICKS:,} ticks without asking (needed when stdin is not a terminal).")
def backfill(config_path, start, end, names, inline, print_only, attempts, timeout, instant, ranged, dry_run, yes):
    """Evaluate every tick in [--from, --to]; overlap with live runs is harmless (same event ids).

    Shows its progress on stderr. Ctrl-C stops it; the same command run again continues where it stopped and
    sends nothing twice. Exits 1 when a tick failed (its attempts, or the wait) and names each such tick."""
    cfg = load(config_path)
    if end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    if print_only and not inline:
        raise click.BadParameter("--print needs --inline", param_hint="--print")
    if instant and ranged:
        raise click.BadParameter("--instant and --range exclude each other", param_hint="--instant")
    rt = runtime.Runtime(cfg)
    queries = _queries(cfg, names)
    todo = plan(rt, queries, start, end)
    if dry_run:
        from meterworker.cli.backfill_dry_run import dry_run as print_plan

        print_plan(rt, todo, not instant, inline)
        return
    size = todo.count(cap=GUARD_TICKS)
    if size > GUARD_TICKS:
        _guard(size if todo.counted_exactly else None, start, end, yes)
        size = todo.count()
    click.echo(f"backfill: {size} ticks from {start.isoformat()} to {end.isoformat()}", err=True)
    if not size:
        return
    name = run_name([q.name for q in queries], start, end)
    with _interruptible() as interrupted:
        if inline:
            failed = _inline(rt, todo, size, print_only, not instant, name, interrupted)
        else:
            failed = _dispatch(rt, todo, size, attempts, timeout or default_timeout(cfg, attempts), not instant,
                               name, interrupted)
    if interrupted():
        sys.exit(130)
    sys.exit(1 if failed else 0)


class _Interrupted:
    def __init__(self):
        self.flag = False

    def __call__(self) -> bool:
        return self.flag


@contextlib.contextmanager
def _interruptible():
    """Ctrl-C (SIGINT) asks the backfill to stop where it can stop cleanly (between two ticks); a second one
    stops it at once."""
    flag = _Interrupted()

    def handler(signum, frame):
        if flag.flag:
            raise KeyboardInterrupt
        flag.flag = True

    before = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, before)


def _continue_line(done: int, size: int) -> str:
    return (f"backfill: stopped (Ctrl-C) with {done:,}/{size:,} ticks done; run the same command again to "
            "continue: ticks done are not run again, and nothing is sent twice")


def _guard(exact: int | None, start, end, yes: bool) -> None:
    """A backfill above GUARD_TICKS goes ahead with --yes, or once confirmed on a terminal; `exact` is its
    number of ticks when known without counting them one by one."""
    span = f"ticks from {start.isoformat()} to {end.isoformat()}"
    what = f"more than {GUARD_TICKS:,} {span}" if exact is None else f"{exact:,} {span}, more than {GUARD_TICKS:,}"
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException(f"backfill of {what}: check --from and --to, "
                                   "or pass --yes to go ahead (stdin is not a terminal to ask on)")
    if not click.confirm(f"backfill: {what}; go ahead?", default=False, err=True):
        raise click.ClickException("backfill not started")


def _done_before(rt, key: str | None) -> set[tuple[str, int]]:
    """The ticks an earlier, interrupted run of the same backfill completed (its report)."""
    if key is None:
        return set()
    return {t for t, word in read_report(rt.redis, key).items() if word is None}


def _inline(rt, todo, size, print_only, ranged, name, interrupted) -> int:
    """Query by query, in this process: range queries over the evenly spaced stretches of ticks (unless
    `ranged` is False), an instant query per tick elsewhere; each tick's events sent (or printed) in turn."""
    from meterworker.query.ranged import Requests, evaluate_ticks

    store = not print_only and _redis_answers(rt)
    sender = None if print_only else command_delivery(rt, store=store)
    key = report_key(rt, name) if store else None
    done_before = _done_before(rt, key)
    if done_before:
        click.echo(f"backfill: continuing: {len(done_before):,} of {size:,} ticks were done by an earlier run "
                   "of this command", err=True)
    failed = 0
    done = len(done_before)
    requests = Requests()
    bar = Progress(size)
    try:
        for query_name, schedule, ticks in todo.by_query():
            if interrupted():
                break
            query = rt.config.query(query_name)
            left = (t for t in ticks if (query_name, t) not in done_before)
            for got in evaluate_ticks(rt.config, rt.prometheus, query, schedule, left, requests, ranged=ranged):
                if got.error is not None:
                    bar.clear()
                    click.echo(f"error: query {query_name} tick {_dt(got.tick).isoformat()}: "
                               f"{rt.scrub(got.error)}", err=True)
                    failed += 1
                elif print_only:
                    for ev in got.result.events:
                        click.echo(json.dumps(ev, separators=(",", ":")))
                elif sender.send(got.result.events, query_name, got.tick):
                    if key is not None:
                        pipe = rt.redis.pipeline()
                        report_tick(pipe, key, query_name, got.tick)
                        pipe.execute()
                else:
                    failed += 1
                done += 1
                bar.update(done, sender.tally.delivered if sender else 0)
                if interrupted():
                    break
    finally:
        bar.finish()
    if interrupted():
        click.echo(_continue_line(done - failed, size), err=True)
        return failed
    click.echo(f"backfill: {size - failed}/{size} ticks done; Prometheus requests: {requests.range} range, "
               f"{requests.instant} instant", err=True)
    if sender:
        click.echo(sender.summary(), err=True)
    if key is not None and not failed:
        rt.redis.delete(key)
    return failed


def _redis_answers(rt) -> bool:
    import redis

    try:
        rt.redis.ping()
        return True
    except redis.RedisError:
        click.echo("warning: no Redis at the configured URL: delivered ids are not recorded nor checked, "
                   "and undeliverable events are reported here instead of the dead-letter store", err=True)
        return False


def _dispatch(rt, todo, size, attempts: int, timeout: float, ranged: bool, name: str, interrupted) -> int:
    from meterworker.app import app, use_runtime
    from meterworker.schedule.beat import send_ticks_task
    from meterworker.schedule.beat import send_query_task

    use_runtime(rt)
    if not app.control.ping(timeout=1.0):
        click.echo("warning: no worker answers; the ticks wait in the queue until a query worker runs "
                   "(`meterworker worker -Q query,send`), or use --inline", err=True)
    key = report_key(rt, name)
    token = uuid.uuid4().hex[:10]
    earlier = read_report(rt.redis, key)
    given_up_before = [f"{q}:{t}" for (q, t), word in earlier.items() if word is not None]
    if given_up_before:  # asked again
        rt.redis.hdel(key, *given_up_before)
    done_before = {t for t, word in earlier.items() if word is None}
    if done_before:
        click.echo(f"backfill: continuing: {len(done_before):,} of {size:,} ticks were done by an earlier run "
                   "of this command", err=True)
    queries = [q for q, _ in todo.schedules]
    sent_before = sent_counts(rt.redis, rt.collector, queries)
    kwargs = {"report": key, "max_attempts": attempts, "run": token}

    def send(task, args, queue, argsrepr, kwargs=kwargs):
        app.send_task(task, args=args, kwargs=kwargs, queue=queue, argsrepr=argsrepr, ignore_result=True)

    tasks = 0
    for query_name, schedule, ticks in todo.by_query():
        left = [t for t in ticks if (query_name, t) not in done_before]
        rt.state.mark_pending_many(query_name, left)
        if ranged and not rt.config.query(query_name).is_counter:
            units = pieces(stretches(window_lengths(schedule, iter(left))))
        else:
            units = (Stretch(t, 0, 1) for t in left)
        for unit in units:
            if unit.count == 1:
                send_query_task(send, query_name, unit.first)
                tasks += 1
                continue
            for part in task_parts(unit):
                send_ticks_task(send, query_name, part.first, part.step, part.count)
                tasks += 1
        if interrupted():
            break
    click.echo(f"backfill: dispatched {size - len(done_before)} ticks to the query workers, {attempts} attempts "
               f"each ({tasks} {'task' if tasks == 1 else 'tasks'}); waiting while they complete, at most "
               f"{format_go_duration(timeout)} without progress", err=True)
    finished = _wait(rt, key, size, timeout, lambda: sent_counts(rt.redis, rt.collector, queries) - sent_before,
                     interrupted)
    if interrupted():
        stop(rt.redis, key, token)
        click.echo(_continue_line(sum(1 for w in finished.values() if w is None), size), err=True)
        return 0
    given_up = [(t, finished[t]) for t in todo if finished.get(t)]
    unfinished = [t for t in todo if t not in finished]
    if not given_up and not unfinished:
        rt.redis.delete(key)
    for (query_name, tick), word in given_up:
        click.echo(f"error: query {query_name} tick {_dt(tick).isoformat()}: gave up after {word['attempts']} "
                   f"attempts: {word['error']}", err=True)
    failures = {q: rt.state.query_status(q)["failure"] for q in {q for q, _ in unfinished}}
    for query_name, tick in unfinished:
        click.echo(f"error: query {query_name} tick {_dt(tick).isoformat()}: not completed, no tick finished for "
                   f"{format_go_duration(timeout)}; {_last_failure(failures[query_name], tick)}", err=True)
    done = size - len(given_up) - len(unfinished)
    click.echo(f"backfill: {done}/{size} ticks done"
               + (f", {len(given_up)} given up" if given_up else "")
               + (f", {len(unfinished)} not completed" if unfinished else ""), err=True)
    return len(given_up) + len(unfinished)


def _wait(rt, key: str, total: int, timeout: float, delivered, interrupted) -> dict:
    """The report once every tick finished, once none finished for `timeout` seconds, or once interrupted."""
    last_progress = time.monotonic()
    bar = Progress(total)
    finished = 0
    try:
        while finished < total and not interrupted():
            time.sleep(0.5)
            now_finished = rt.redis.hlen(key)
            bar.update(now_finished, delivered())
            if now_finished > finished:
                finished, last_progress = now_finished, time.monotonic()
            elif time.monotonic() - last_progress > timeout:
                break
    finally:
        bar.finish()
    return read_report(rt.redis, key)


def _last_failure(failure: dict | None, tick: int) -> str:
    """What the query's failure record (as `status` shows it) says about this tick."""
    if failure is None:
        return "no attempt of the query failed (is a query worker running?)"
    at = "this tick" if failure["tick"] == tick else f"tick {_dt(failure['tick']).isoformat()}"
    return f"last failure of the query: attempt {failure['attempt']} at {at}: {failure['error']}"


def _dt(tick):
    from meterworker.schedule.due import from_epoch

    return from_epoch(tick)
