"""The commands that run Celery processes: `worker`, `beat`, `flower`, and `run` (all three on one machine)."""

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from meterworker import runtime
from meterworker.cli.common import config_option, load as _load
from meterworker.cli.group import main
from meterworker.durations import format_go_duration
from meterworker.keys import QUERY_QUEUE, SEND_QUEUE
from meterworker.ops.process_env import QUIET_LIBRARIES_ENV, for_child, process_options, run_options
from meterworker.redact import redact_headers, redact_url

# What hides, below --loglevel DEBUG, what Celery says at start-up: its banners (-q) and its warning about
# running as root (a warnings filter on its message; importing celery to name the category would slow start-up).
QUIET_CELERY = ("-q",)
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"


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
@click.option("--loglevel", default="INFO", show_default=True,
              help="INFO: what was started, then a line per completed tick and meterworker's warnings. "
                   "DEBUG adds Celery's banners, start-up and per-task lines and its warning about running as root.")
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
        redis_line = f"an embedded Redis at {redis_url}, keeping its data in {embedded.data_dir}"
    else:
        redis_line = f"Redis at {redact_url(redis_url)}"
    env = _child_env(config_path, redis_url)
    debug = loglevel.upper() == "DEBUG"
    quiet = () if debug else QUIET_CELERY
    if not debug:
        env[QUIET_LIBRARIES_ENV] = "1"
        env["PYTHONWARNINGS"] = ",".join(filter(None, (env.get("PYTHONWARNINGS"), ROOT_WARNING_FILTER)))
    commands = {
        "query worker": _celery(*quiet, "worker", "-Q", QUERY_QUEUE, "-n", "query@%h", "-c", str(query_concurrency),
                                "--loglevel", loglevel),
        "send worker": _celery(*quiet, "worker", "-Q", SEND_QUEUE, "-n", "send@%h", "-c", str(send_concurrency),
                               "--loglevel", loglevel),
        "beat": _celery(*quiet, "beat", "--loglevel", loglevel),
    }
    procs = {name: subprocess.Popen(cmd, env=for_child(env, i)) for i, (name, cmd) in enumerate(commands.items())}
    for line in greeting(cfg, redis_line, query_concurrency, send_concurrency, datetime.now(timezone.utc), debug):
        click.echo(line, err=True)
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


def greeting(cfg, redis_line: str, query_concurrency: int, send_concurrency: int, now: datetime,
             debug: bool) -> list[str]:
    """What `run` started, in a few lines, secrets masked."""
    offset = cfg.input.prometheus.query_offset
    http = cfg.http
    headers = redact_headers(http.headers)
    lines = [
        f"meterworker {cfg.meterworker.name}: started",
        f"  redis: {redis_line}",
        f"  beat: dispatching {len(cfg.queries)} {'query' if len(cfg.queries) == 1 else 'queries'} "
        f"(one beat holds the lock at a time)",
        f"  query worker: {query_concurrency} processes; send worker: {send_concurrency} processes",
        f"  prometheus: {redact_url(str(cfg.input.prometheus.url))}, evaluated {format_go_duration(offset)} "
        f"before each tick",
    ]
    rt = runtime.Runtime(cfg)
    for q in cfg.queries:
        schedule = rt.schedule_for(q)
        lines.append(f"  query {q.name}: {cfg.schedule_for(q)}, next tick {schedule.next_after(now).isoformat()}")
    lines.append(f"  sink: {redact_url(str(http.url))}"
                 + (" with " + ", ".join(f"{k}: {v}" for k, v in headers.items()) if headers else ""))
    lines.append("meterworker: a line per completed tick follows"
                 + ("" if debug else "; --loglevel DEBUG shows Celery's own lines too"))
    return lines


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
