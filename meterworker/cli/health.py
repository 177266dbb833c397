"""`meterworker health`: checks for liveness and readiness probes; exit status 0 healthy, 1 not."""

import sys
from datetime import datetime, timezone

import click
import redis

from meterworker.ops import health
from meterworker import runtime
from meterworker.durations import parse_duration
from meterworker.redact import redact_url
from meterworker.schedule.state import State
from meterworker.cli.common import config_option, load
from meterworker.cli.group import main


class Checks(click.ParamType):
    name = "checks"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        names = tuple(n.strip() for n in value.split(",") if n.strip())
        unknown = [n for n in names if n not in health.CHECKS]
        if unknown or not names:
            self.fail(f"{value!r}: name checks from {', '.join(health.CHECKS)}, separated by commas", param, ctx)
        return names


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be longer than 0s", param, ctx)
        return seconds


@main.command("health")
@config_option
@click.option("--check", "checks", type=Checks(), default=",".join(health.CHECKS), show_default=True,
              help="Which checks to run: redis (Redis answers), beat (some beat holds the lock), "
                   "ticks (the newest completed tick is recent).")
@click.option("--max-tick-age", type=Duration(), default=None,
              help="Oldest acceptable newest completed tick, e.g. 5m "
                   "(default: two windows of the most frequent query plus 1m).")
@click.option("--timeout", type=Duration(), default="5s", show_default=True, help="Redis timeout.")
def health_command(config_path, checks, max_tick_age, timeout):
    """Check Redis, the beat lock and recent ticks; exit status 0 when all pass, 1 otherwise.

    Redis is always checked: the other checks read it."""
    cfg = load(config_path)
    rt = runtime.Runtime(cfg)
    url = runtime.configured_redis_url(cfg) or runtime.DEFAULT_REDIS_URL
    r = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    now = datetime.now(timezone.utc)
    results = [health.redis_answers(r, redact_url(url), rt.scrub)]
    if results[0].ok:
        if "beat" in checks:
            results.append(health.beat_holds_lock(r, rt.collector))
        if "ticks" in checks:
            limit = max_tick_age or health.default_max_tick_age(rt, now)
            results.append(health.newest_tick_is_recent(State(r, rt.collector), [q.name for q in cfg.queries],
                                                        now, limit))
    for res in results:
        click.echo(f"{'ok' if res.ok else 'FAIL'} {res.name}: {res.detail}")
    sys.exit(0 if all(res.ok for res in results) else 1)
