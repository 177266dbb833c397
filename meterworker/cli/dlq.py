"""`meterworker dlq`: list, show, replay and purge the dead-letter store."""

import json
from datetime import datetime, timezone

import click
import redis

from meterworker import runtime
from meterworker.redact import redact_url
from meterworker.cli.common import config_option, load
from meterworker.cli.group import main

REASON_WIDTH = 70


def _iso(seconds) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _runtime(cfg) -> runtime.Runtime:
    rt = runtime.Runtime(cfg)
    url = runtime.configured_redis_url(cfg) or runtime.DEFAULT_REDIS_URL
    try:
        rt.redis.ping()
    except redis.RedisError as e:
        raise click.ClickException(
            f"Redis at {redact_url(url)} does not answer: {rt.scrub(str(e))}. The dead-letter store is in the "
            f"Redis of meterworker.redis_url or $METERWORKER_REDIS_URL (`meterworker run` prints the URL of the "
            f"Redis it starts)")
    return rt


def _entry_or_fail(rt, entry_id: str) -> dict:
    entry = rt.dead_letters.get(entry_id)
    if entry is None:
        raise click.ClickException(f"no dead-letter entry {entry_id!r}; `meterworker dlq list` shows the entries")
    return entry


@main.group()
def dlq():
    """The dead-letter store: events the metering service refused, or that failed for longer than the retries."""

@dlq.command("list")
@config_option
def list_entries(config_path):
    """One line per entry, oldest first."""
    rt = _runtime(load(config_path))
    entries = rt.dead_letters.all()
    if not entries:
        click.echo("the dead-letter store is empty")
        return
    click.echo(f"{'ID':12}  {'LAST FAILURE':20}  {'QUERY':20}  {'TICK':20}  {'EVENTS':>6}  {'ATTEMPTS':>8}  "
               f"{'STATUS':>6}  REASON")
    for e in entries:
        reason = e["reason"] if len(e["reason"]) <= REASON_WIDTH else e["reason"][:REASON_WIDTH - 1] + "…"
        click.echo(f"{e['id']:12}  {_iso(e['last_failure']):20}  {str(e['query'] or '-'):20}  "
                   f"{_iso(e['tick']):20}  {len(e['events']):>6}  {e['attempts']:>8}  "
                   f"{str(e['status'] or '-'):>6}  {reason}")
    click.echo(f"{len(entries)} entries, {sum(len(e['events']) for e in entries)} events")

@dlq.command()
@config_option
@click.argument("entry_id", metavar="ID")
def show(config_path, entry_id):
    """The whole entry as JSON: events, reason, last status and response body, attempts, times, query, tick."""
    entry = _entry_or_fail(_runtime(load(config_path)), entry_id)
    for field in ("first_failure", "last_failure", "tick"):
        entry[field] = _iso(entry[field]) if entry[field] is not None else None
    click.echo(json.dumps(entry, indent=2))

@dlq.command()
@config_option
@click.argument("entry_ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "replay_all", is_flag=True, help="Replay every entry.")
def replay(config_path, entry_ids, replay_all):
    """Send entries again, through the outbox like live events, with their ids unchanged.

    Events delivered meanwhile are not sent twice. An entry leaves the store once its events are
    queued; if they fail again they come back as a new entry.
    """
    if bool(entry_ids) == replay_all:
        raise click.UsageError("give the IDs of the entries to replay, or --all")
    cfg = load(config_path)
    rt = _runtime(cfg)
    runtime.install(rt)
    from meterworker.app import app

    app.conf.broker_url = runtime.configured_redis_url(cfg) or runtime.DEFAULT_REDIS_URL
    from meterworker.delivery.task import enqueue_events

    entries = rt.dead_letters.all() if replay_all else [_entry_or_fail(rt, i) for i in entry_ids]
    if not entries:
        click.echo("the dead-letter store is empty")
    for entry in entries:
        added = enqueue_events(rt, entry["events"], {"query": entry["query"], "tick": entry["tick"]})
        rt.dead_letters.remove(entry["id"])
        note = f"; {added.skipped} were delivered meanwhile or are on their way" if added.skipped else ""
        click.echo(f"{entry['id']}: {added.added} events queued for delivery{note}")

@dlq.command()
@config_option
@click.argument("entry_ids", nargs=-1, metavar="[ID]...")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(config_path, entry_ids, yes):
    """Delete the given entries, or every entry. Their events will not be billed."""
    rt = _runtime(load(config_path))
    dl = rt.dead_letters
    if entry_ids:
        for entry_id in entry_ids:
            _entry_or_fail(rt, entry_id)
        for entry_id in entry_ids:
            dl.remove(entry_id)
        click.echo(f"deleted {len(entry_ids)} entries")
        return
    entries = dl.all()
    if not entries:
        click.echo("the dead-letter store is empty")
        return
    events = sum(len(e["events"]) for e in entries)
    if not yes:
        click.confirm(f"Delete all {len(entries)} entries ({events} events)? They will not be billed", abort=True)
    click.echo(f"deleted {dl.purge()} entries ({events} events)")
