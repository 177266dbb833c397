"""The `meterworker` command."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from meterworker import runtime
from meterworker.cli.common import TimeParam, config_option, load as _load
from meterworker.ops.process_env import for_child, process_options, run_options
from meterworker.config.durations import format_go_duration, parse_duration
from meterworker.redact import redact_headers, redact_url

def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@click.group()
@click.version_option(package_name="meterworker")
def main():
    """Prometheus metrics to billable usage events (CloudEvents), on Celery and Redis."""


# validate ------------------------------------------------------------------

@main.command()
@config_option
def validate(config_path):
    """Check the config; print the queries, their next ticks and the sink, secrets masked."""
    from meterworker.schedule.cron import parse_schedule, range_selectors, window_for

    cfg = _load(config_path)
    prom = cfg.input.prometheus
    now = datetime.now(timezone.utc)
    click.echo(f"config: {config_path}: OK")
    click.echo(f"prometheus: {redact_url(prom.url)}  timeout {format_go_duration(prom.timeout)}")
    if prom.headers:
        click.echo(f"  headers: {redact_headers(prom.headers)}")
    click.echo(f"query_offset: {format_go_duration(prom.query_offset)}")
    click.echo("queries:")
    for q in cfg.queries:
        expr = cfg.schedule_for(q)
        sched = parse_schedule(expr, prom.timezone)
        ticks, t = [], now
        for _ in range(3):
            t = sched.next_after(t)
            ticks.append(t)
        window = window_for(sched, ticks[0], prom.query_offset)
        click.echo(f"  - {q.name}")
        click.echo(f"      promql:   {q.promql.strip()}")
        click.echo(f"      schedule: {expr} ({prom.timezone})")
        click.echo(f"      next ticks: {', '.join(x.isoformat() for x in ticks)}")
        for rng in range_selectors(q.promql):
            try:
                seconds = parse_duration(rng)
            except ValueError:  # PromQL's own units (w, y)
                seconds = None
            if seconds != window.seconds:
                click.echo(
                    f"warning: input.prometheus.queries: query {q.name}: range [{rng}] differs from the "
                    f"schedule's window ({format_go_duration(window.seconds)}); windows will overlap or leave "
                    f"gaps; write [$__interval] to match the window exactly", err=True,
                )
    http = cfg.http
    click.echo(f"sink: {http.verb} {redact_url(http.url)}")
    if http.headers:
        click.echo(f"  headers: {redact_headers(http.headers)}")
    click.echo(
        f"  batching {http.batching.count} events / {format_go_duration(http.batching.period)}, "
        f"retries {http.retries}, retry_period {format_go_duration(http.retry_period)}, "
        f"max_retry_backoff {format_go_duration(http.max_retry_backoff)}, drop_on {http.drop_on}"
    )


# once ----------------------------------------------------------------------

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


# processes -----------------------------------------------------------------

def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "meterworker", *args]


def _child_env(config_path: str, redis_url: str | None) -> dict:
    env = dict(os.environ)
    env[runtime.CONFIG_ENV] = str(Path(config_path).resolve())
    if redis_url:
        env[runtime.REDIS_ENV] = redis_url
    return env


@main.command()
@config_option
@click.option("--query-concurrency", default=2, show_default=True, help="Processes running queries.")
@click.option("--send-concurrency", default=2, show_default=True, help="Processes sending batches.")
@click.option("--loglevel", default="INFO", show_default=True)
@run_options
def run(config_path, query_concurrency, send_concurrency, loglevel):
    """Beat, a query worker and a send worker on this machine (with an embedded Redis when none is configured)."""
    from meterworker.ops.embedded_redis import EmbeddedRedis

    cfg = _load(config_path)
    redis_url = runtime.configured_redis_url(cfg)
    embedded = None
    if redis_url is None:
        embedded = EmbeddedRedis(cfg.meterworker.data_dir).start()
        redis_url = embedded.url
        click.echo(f"meterworker: no Redis configured; started an embedded Redis at {redis_url} "
                   f"keeping its data in {embedded.data_dir}", err=True)
    else:
        click.echo(f"meterworker: using Redis at {redact_url(redis_url)}", err=True)
    env = _child_env(config_path, redis_url)
    commands = {
        "query worker": _celery("worker", "-Q", "query", "-n", "query@%h", "-c", str(query_concurrency),
                                "--loglevel", loglevel),
        "send worker": _celery("worker", "-Q", "send", "-n", "send@%h", "-c", str(send_concurrency),
                               "--loglevel", loglevel),
        "beat": _celery("beat", "--loglevel", loglevel),
    }
    procs = {name: subprocess.Popen(cmd, env=for_child(env, i)) for i, (name, cmd) in enumerate(commands.items())}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    try:
        while not stopping:
            for name, p in procs.items():
                if p.poll() is not None:
                    click.echo(f"meterworker: {name} exited with status {p.returncode}; stopping", err=True)
                    status = 1
                    stopping = True
            time.sleep(0.2)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded:
            embedded.stop()
    sys.exit(status)


def _exec_celery(config_path, args):
    cfg = _load(config_path)
    env = _child_env(config_path, runtime.configured_redis_url(cfg))
    os.execvpe(sys.executable, _celery(*args), env)


@main.command(context_settings={"ignore_unknown_options": True})
@config_option
@click.option("-Q", "--queues", default="query,send", show_default=True)
@process_options
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(config_path, queues, celery_args):
    """A Celery worker for the query and/or send queue (extra arguments go to celery worker)."""
    _exec_celery(config_path, ["worker", "-Q", queues, *celery_args])


@main.command(context_settings={"ignore_unknown_options": True})
@config_option
@process_options
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(config_path, celery_args):
    """The scheduler (any number may run; one holds the lock and dispatches)."""
    _exec_celery(config_path, ["beat", *celery_args])


@main.command(context_settings={"ignore_unknown_options": True})
@config_option
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def flower(config_path, celery_args):
    """Flower, the Celery web monitor, for this collector's broker."""
    _exec_celery(config_path, ["flower", *celery_args])


def _register_subcommands() -> None:
    from meterworker.cli.ops import register

    register(main)


_register_subcommands()

if __name__ == "__main__":
    main()
