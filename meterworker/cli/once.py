"""`meterworker once`: every query for one tick in-process, the CloudEvents printed as JSON lines."""

import json
import sys
from datetime import datetime, timezone

import click

from meterworker import runtime
from meterworker.cli.common import TimeParam, config_option, load as _load, setup_logging as _setup_logging
from meterworker.cli.group import main


@main.command()
@config_option
@click.option("--at", type=TimeParam(), default=None, help="Run the tick at or before this time (default: now).")
@click.option("--send", is_flag=True, help="Also deliver the events to the sink.")
@click.option("--loglevel", default="WARNING", show_default=True)
def once(config_path, at, send, loglevel):
    """Run every query for one tick in-process (no Redis); print the CloudEvents as JSON lines."""
    from meterworker.query.evaluate import collect
    from meterworker.delivery.sender import Sender, deliver
    from meterworker.query.mapping import ResultTypeError
    from meterworker.query.prometheus import PrometheusClient, PrometheusError

    _setup_logging(loglevel)
    cfg = _load(config_path)
    rt = runtime.Runtime(cfg)
    at = at or datetime.now(timezone.utc)
    client = PrometheusClient(cfg.input.prometheus)
    failed = 0
    all_events = []
    for q in cfg.queries:
        sched = rt.schedule_for(q)
        tick = sched.latest_at_or_before(at)
        try:
            got = collect(cfg, client, q, sched, tick)
        except (PrometheusError, ResultTypeError) as e:
            click.echo(f"error: query {q.name} tick {tick.isoformat()}: {rt.scrub(str(e))}", err=True)
            failed += 1
            continue
        for ev in got.result.events:
            click.echo(json.dumps(ev, separators=(",", ":")))
        all_events.extend(got.result.events)
    if send and all_events:
        sender = Sender(cfg.http)
        from meterworker.query.evaluate import chunks

        delivered = rejected = retry = 0
        for batch in chunks(all_events, cfg.http.batching.count):
            out = deliver(batch, sender.post, cfg.http.drop_on, cfg.error_patterns)
            delivered += len(out.delivered)
            retry += len(out.retry)
            for rej in out.rejected:
                rejected += len(rej.events)
                click.echo(f"error: {len(rej.events)} events {rej.reason}: {rt.scrub(rej.body[:300])}", err=True)
            if out.retry:
                last = out.last
                click.echo(f"error: {len(out.retry)} events not delivered: "
                           f"{rt.scrub(last.error or f'HTTP {last.status} {last.body[:300]}')}", err=True)
        click.echo(f"sent: {delivered} delivered, {rejected} rejected, {retry} not delivered", err=True)
        failed += bool(rejected or retry)
    sys.exit(1 if failed else 0)
