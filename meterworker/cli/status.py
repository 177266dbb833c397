"""`meterworker status`: per query the last completed tick, pending ticks and lag; the beat lock; queue depths."""

from datetime import datetime, timezone

import json

import click
import redis

from meterworker import runtime
from meterworker.schedule.due import from_epoch
from meterworker.durations import format_go_duration
from meterworker.redact import redact_url
from meterworker.keys import QUEUES, Keys
from meterworker.schedule import beat_lock
from meterworker.cli.common import config_option, load
from meterworker.cli.group import main


def _ago(tick: int | None, now: datetime) -> str:
    if tick is None:
        return "never"
    return f"{from_epoch(tick).isoformat()} ({format_go_duration(round((now - from_epoch(tick)).total_seconds()))} ago)"


@main.command()
@config_option
def status(config_path):
    """Show each query's last completed tick, pending ticks and lag, the beat lock holder and queue depths."""
    cfg = load(config_path)
    rt = runtime.Runtime(cfg)
    try:
        rt.redis.ping()
    except redis.RedisError as e:
        url = runtime.configured_redis_url(cfg) or runtime.DEFAULT_REDIS_URL
        raise click.ClickException(f"Redis at {redact_url(url)} does not answer: {rt.scrub(str(e))}")
    now = datetime.now(timezone.utc)
    holder = beat_lock.holder(rt.redis, rt.collector)
    click.echo(f"beat lock: {holder or 'no holder (no beat is dispatching)'}")
    click.echo("queues: " + ", ".join(f"{q} {rt.redis.llen(q)}" for q in QUEUES))
    box = rt.outbox.counts()
    click.echo(f"outbox: {box['pending']} events pending ({box['queued']} waiting for a batch), "
               f"{box['batches']} batches under way or waiting to retry; "
               f"dead-letter entries: {rt.dead_letters.count()}")
    shortfall = rt.redis.get(Keys(rt.collector).replication_shortfall)
    if shortfall:
        s = json.loads(shortfall)
        at = datetime.fromtimestamp(s["at"], timezone.utc).replace(microsecond=0).isoformat()
        click.echo(f"replication: the last write not confirmed by the replicas in time, at {at} ({s['where']}): "
                   f"{s['error']}")
    click.echo("queries:")
    for q in cfg.queries:
        st = rt.state.query_status(q.name)
        expected = rt.schedule_for(q).latest_at_or_before(now)
        done = st["last_completed"]
        lag = (expected - from_epoch(done)).total_seconds() if done is not None else None
        click.echo(f"  - {q.name}")
        click.echo(f"      last completed: {_ago(done, now)}")
        click.echo(f"      lag: {format_go_duration(lag) if lag is not None else 'unknown'}")
        pending = st["pending"]
        shown = ", ".join(from_epoch(t).isoformat() for t in pending[:5]) + (" …" if len(pending) > 5 else "")
        click.echo(f"      pending: {len(pending)}{' (' + shown + ')' if pending else ''}")
        gap = rt.state.counter_gap(q.name) if q.is_counter else None
        if gap:
            click.echo(f"      COUNTER GAP at tick {from_epoch(gap['tick']).isoformat()}: {gap['series']} series had "
                       f"no sample within max_gap ({format_go_duration(gap['max_gap'])}) before the window; their "
                       f"growth during the gap is not billed; examples: {gap['examples']}")
        if st["failure"]:
            f = st["failure"]
            click.echo(f"      FAILING since attempt {f['attempt']} at tick {from_epoch(f['tick']).isoformat()}: "
                       f"{f['error']}")
