"""`meterworker backfill`: evaluate every tick of a past range, with the same ids as the live run."""

import json
import sys
import time
import uuid

import click

from meterworker import runtime
from meterworker.schedule.backfill import plan, report_key
from meterworker.cli.common import TimeParam, config_option, load
from meterworker.cli.group import main


def _queries(cfg, names):
    if not names:
        return cfg.queries
    known = {q.name for q in cfg.queries}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"unknown query {', '.join(unknown)}; the config has {', '.join(sorted(known))}",
                                 param_hint="--query")
    return [q for q in cfg.queries if q.name in names]


@main.command()
@config_option
@click.option("--from", "start", type=TimeParam(), required=True, help="First tick (inclusive).")
@click.option("--to", "end", type=TimeParam(), required=True, help="Last tick (inclusive).")
@click.option("--query", "names", multiple=True, help="Only this query (repeatable).")
@click.option("--inline", is_flag=True, help="Run in this process, without workers.")
@click.option("--print", "print_only", is_flag=True,
              help="With --inline: print the events as JSON lines instead of sending them.")
def backfill(config_path, start, end, names, inline, print_only):
    """Evaluate every tick in [--from, --to]; overlap with live runs is harmless (same event ids)."""
    cfg = load(config_path)
    if end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    if print_only and not inline:
        raise click.BadParameter("--print needs --inline", param_hint="--print")
    rt = runtime.Runtime(cfg)
    todo = plan(rt, _queries(cfg, names), start, end)
    click.echo(f"backfill: {len(todo)} ticks from {start.isoformat()} to {end.isoformat()}", err=True)
    if not todo:
        return
    if inline:
        failed = _inline(rt, todo, print_only)
    else:
        failed = _dispatch(rt, todo)
    sys.exit(1 if failed else 0)


def _progress(total, label):
    return click.progressbar(length=total, label=label, show_eta=True, show_pos=True, file=sys.stderr)


def _inline(rt, todo, print_only) -> int:
    from meterworker.query.evaluate import collect
    from meterworker.query.mapping import ResultTypeError
    from meterworker.delivery.records import CommandDelivery
    from meterworker.query.prometheus import PrometheusError

    sender = None if print_only else CommandDelivery(rt, store=_redis_answers(rt))
    failed = 0
    with _progress(len(todo), "ticks") as bar:
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
    click.echo(f"backfill: {len(todo) - failed}/{len(todo)} ticks done", err=True)
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


def _dispatch(rt, todo) -> int:
    from meterworker.app import app, use_runtime
    from meterworker.schedule.beat import send_query_task

    use_runtime(rt)
    if not app.control.ping(timeout=1.0):
        click.echo("warning: no worker answers; the ticks wait in the queue until a query worker runs "
                   "(`meterworker worker -Q query,send`), or use --inline", err=True)
    key = report_key(rt, uuid.uuid4().hex[:10])

    def send(name, args, queue, argsrepr):
        app.send_task(name, args=args, kwargs={"report": key}, queue=queue, argsrepr=argsrepr, ignore_result=True)

    for name, tick in todo:
        rt.state.mark_pending(name, tick)
        send_query_task(send, name, tick)
    click.echo(f"backfill: dispatched {len(todo)} ticks to the query workers", err=True)
    done = 0
    with _progress(len(todo), "ticks done") as bar:
        while done < len(todo):
            now_done = rt.redis.scard(key)
            bar.update(now_done - done)
            done = now_done
            time.sleep(0.5)
    rt.redis.delete(key)
    click.echo(f"backfill: {done}/{len(todo)} ticks done", err=True)
    return 0


def _dt(tick):
    from meterworker.schedule.due import from_epoch

    return from_epoch(tick)
