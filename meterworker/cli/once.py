"""`meterworker once`: every query for one tick in-process, the CloudEvents printed as JSON lines."""

import json
import sys
from datetime import datetime, timezone

import click

from meterworker import runtime
from meterworker.cli.common import (
    TimeParam, command_delivery, config_option, load as _load, setup_logging as _setup_logging,
)
from meterworker.cli.group import main


@main.command()
@config_option
@click.option("--at", type=TimeParam(), default=None, help="Run the tick at or before this time (default: now).")
@click.option("--send", is_flag=True, help="Also deliver the events to the sink.")
@click.option("--loglevel", default="WARNING", show_default=True)
def once(config_path, at, send, loglevel):
    """Run every query for one tick in-process (no Redis); print the CloudEvents as JSON lines."""
    from meterworker.query.evaluate import collect
    from meterworker.query.mapping import ResultTypeError
    from meterworker.query.prometheus import PrometheusClient, PrometheusError

    cfg = _load(config_path)
    rt = runtime.Runtime(cfg)
    _setup_logging(loglevel, rt.scrub)
    at = at or datetime.now(timezone.utc)
    client = PrometheusClient(cfg.input.prometheus)
    failed = 0
    results = []
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
        results.append((q.name, int(tick.timestamp()), got.result.events))
    if send and any(events for _, _, events in results):
        sender = command_delivery(rt, store=False)
        for name, tick, events in results:
            failed += not sender.send(events, name, tick)
        click.echo(sender.summary(), err=True)
    sys.exit(1 if failed else 0)
