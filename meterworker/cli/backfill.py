"""`meterworker backfill`: evaluate every tick of a past range, with the same ids as the live run."""

import json
import sys
import time
import uuid

import click

from meterworker import runtime
from meterworker.durations import format_go_duration, parse_duration
from meterworker.config.models import PrometheusInput, Settings
from meterworker.schedule.backfill import GUARD_TICKS, longest_tick, plan, read_report, report_key
from meterworker.cli.common import TimeParam, command_delivery, config_option, load
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
@click.option("--range", "ranged", is_flag=True,
              help="With --inline: range queries over evenly spaced ticks (one request per up to 10,000 ticks) "
                   "instead of an instant query per tick; the events are the same.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan (ticks and requests per query, estimated events) and touch nothing: no Redis, "
                   "no task, no request to the sink; one instant query per query estimates its events.")
@click.option("--yes", is_flag=True,
              help=f"Go ahead with more than {GUARD_TICKS:,} ticks without asking (needed when stdin is not a terminal).")
def backfill(config_path, start, end, names, inline, print_only, attempts, timeout, ranged, dry_run, yes):
    """Evaluate every tick in [--from, --to]; overlap with live runs is harmless (same event ids).

    Exits 1 when a tick failed (its attempts, or the wait) and names each such tick."""
    cfg = load(config_path)
    if end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    if print_only and not inline:
        raise click.BadParameter("--print needs --inline", param_hint="--print")
    if ranged and not inline:
        raise click.BadParameter("--range needs --inline", param_hint="--range")
    rt = runtime.Runtime(cfg)
    todo = plan(rt, _queries(cfg, names), start, end)
    if dry_run:
        from meterworker.cli.backfill_dry_run import dry_run as print_plan

        print_plan(rt, todo, ranged and inline, inline)
        return
    size = todo.count(cap=GUARD_TICKS)
    if size > GUARD_TICKS:
        _guard(size if todo.counted_exactly else None, start, end, yes)
        size = todo.count()
    click.echo(f"backfill: {size} ticks from {start.isoformat()} to {end.isoformat()}", err=True)
    if not size:
        return
    if inline:
        failed = _inline_ranged(rt, todo, size, print_only) if ranged else _inline(rt, todo, size, print_only)
    else:
        failed = _dispatch(rt, todo, size, attempts, timeout or default_timeout(cfg, attempts))
    sys.exit(1 if failed else 0)


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


def _progress(total, label):
    return click.progressbar(length=total, label=label, show_eta=True, show_pos=True, file=sys.stderr)


def _inline(rt, todo, size, print_only) -> int:
    from meterworker.query.evaluate import collect
    from meterworker.query.mapping import ResultTypeError
    from meterworker.query.prometheus import PrometheusError

    sender = None if print_only else command_delivery(rt, store=_redis_answers(rt))
    failed = 0
    with _progress(size, "ticks") as bar:
        for name, tick in todo:
            query = rt.config.query(name)
            when = _dt(tick)
            try:
                got = collect(rt.config, rt.prometheus, query, rt.schedule_for(query), when)
            except (PrometheusError, ResultTypeError) as e:
                click.echo(f"\nerror: query {name} tick {when.isoformat()}: {rt.scrub(str(e))}", err=True)
                failed += 1
            else:
                if print_only:
                    for ev in got.result.events:
                        click.echo(json.dumps(ev, separators=(",", ":")))
                else:
                    failed += not sender.send(got.result.events, name, tick)
            bar.update(1)
    click.echo(f"backfill: {size - failed}/{size} ticks done", err=True)
    if sender:
        click.echo(sender.summary(), err=True)
    return failed


def _inline_ranged(rt, todo, size, print_only) -> int:
    """As _inline, query by query, with range queries over the evenly spaced stretches of ticks."""
    from meterworker.query.ranged import Requests, evaluate_ticks

    sender = None if print_only else command_delivery(rt, store=_redis_answers(rt))
    failed = 0
    requests = Requests()
    with _progress(size, "ticks") as bar:
        for name, schedule, ticks in todo.by_query():
            query = rt.config.query(name)
            for got in evaluate_ticks(rt.config, rt.prometheus, query, schedule, ticks, requests):
                if got.error is not None:
                    click.echo(f"\nerror: query {name} tick {_dt(got.tick).isoformat()}: {rt.scrub(got.error)}",
                               err=True)
                    failed += 1
                elif print_only:
                    for ev in got.result.events:
                        click.echo(json.dumps(ev, separators=(",", ":")))
                else:
                    failed += not sender.send(got.result.events, name, got.tick)
                bar.update(1)
    click.echo(f"backfill: {size - failed}/{size} ticks done; Prometheus requests: {requests.range} range, "
               f"{requests.instant} instant", err=True)
    if sender:
        click.echo(sender.summary(), err=True)
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


def _dispatch(rt, todo, size, attempts: int, timeout: float) -> int:
    from meterworker.app import app, use_runtime
    from meterworker.schedule.beat import send_query_task

    use_runtime(rt)
    if not app.control.ping(timeout=1.0):
        click.echo("warning: no worker answers; the ticks wait in the queue until a query worker runs "
                   "(`meterworker worker -Q query,send`), or use --inline", err=True)
    key = report_key(rt, uuid.uuid4().hex[:10])

    def send(name, args, queue, argsrepr):
        app.send_task(name, args=args, kwargs={"report": key, "max_attempts": attempts}, queue=queue,
                      argsrepr=argsrepr, ignore_result=True)

    for name, tick in todo:
        rt.state.mark_pending(name, tick)
        send_query_task(send, name, tick)
    click.echo(f"backfill: dispatched {size} ticks to the query workers, {attempts} attempts each; "
               f"waiting while they complete, at most {format_go_duration(timeout)} without progress", err=True)
    finished = _wait(rt, key, size, timeout)
    rt.redis.delete(key)
    given_up = [(t, finished[t]) for t in todo if finished.get(t)]
    unfinished = [t for t in todo if t not in finished]
    for (name, tick), word in given_up:
        click.echo(f"error: query {name} tick {_dt(tick).isoformat()}: gave up after {word['attempts']} attempts: "
                   f"{word['error']}", err=True)
    failures = {name: rt.state.query_status(name)["failure"] for name in {name for name, _ in unfinished}}
    for name, tick in unfinished:
        click.echo(f"error: query {name} tick {_dt(tick).isoformat()}: not completed, no tick finished for "
                   f"{format_go_duration(timeout)}; {_last_failure(failures[name], tick)}", err=True)
    done = size - len(given_up) - len(unfinished)
    click.echo(f"backfill: {done}/{size} ticks done"
               + (f", {len(given_up)} given up" if given_up else "")
               + (f", {len(unfinished)} not completed" if unfinished else ""), err=True)
    return len(given_up) + len(unfinished)


def _wait(rt, key: str, total: int, timeout: float) -> dict:
    """The report once every tick finished, or once none finished for `timeout` seconds."""
    finished: dict = {}
    last_progress = time.monotonic()
    with _progress(total, "ticks done") as bar:
        while len(finished) < total:
            time.sleep(0.5)
            now_finished = read_report(rt.redis, key)
            if len(now_finished) > len(finished):
                bar.update(len(now_finished) - len(finished))
                finished, last_progress = now_finished, time.monotonic()
            elif time.monotonic() - last_progress > timeout:
                break
    return finished


def _last_failure(failure: dict | None, tick: int) -> str:
    """What the query's failure record (as `status` shows it) says about this tick."""
    if failure is None:
        return "no attempt of the query failed (is a query worker running?)"
    at = "this tick" if failure["tick"] == tick else f"tick {_dt(failure['tick']).isoformat()}"
    return f"last failure of the query: attempt {failure['attempt']} at {at}: {failure['error']}"


def _dt(tick):
    from meterworker.schedule.due import from_epoch

    return from_epoch(tick)
