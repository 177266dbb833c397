"""`backfill --dry-run`: the plan of a backfill (ticks, requests, estimated events), touching nothing: no Redis,
no task, no request to the sink. One instant query per query, at its last tick, counts its series for the
estimate."""

import click

from meterworker.schedule.backfill import window_lengths
from meterworker.schedule.due import from_epoch
from meterworker.schedule.request_plan import plan_query
from meterworker.schedule.stretches import stretches


def _iso(t: int) -> str:
    return from_epoch(t).isoformat()


def _series_at(rt, query, schedule, tick: int) -> tuple[int | None, str]:
    """How many events one instant query at `tick` gives, or None and why not."""
    from meterworker.query.evaluate import collect
    from meterworker.query.mapping import ResultTypeError
    from meterworker.query.prometheus import PrometheusError

    try:
        got = collect(rt.config, rt.prometheus, query, schedule, from_epoch(tick))
    except (PrometheusError, ResultTypeError) as e:
        return None, rt.scrub(str(e))
    return len(got.result.events), ""


def dry_run(rt, todo, ranged: bool, inline: bool) -> None:
    where = "in this process (--inline)" if inline else "through the query workers"
    click.echo(f"backfill --dry-run: the plan, {where}; nothing is written to Redis, queued or sent")
    totals = {"ticks": 0, "range": 0, "instant": 0, "events": 0, "estimates": 0}
    unknown = False
    for name, schedule, ticks in todo.by_query():
        query = rt.config.query(name)
        use_range = ranged and not query.is_counter
        p = plan_query(name, stretches(window_lengths(schedule, ticks)), use_range, inline)
        if not p.ticks:
            click.echo(f"query {name}: no tick in the range")
            continue
        series, why = _series_at(rt, query, schedule, p.last)
        totals["estimates"] += 1
        n_range = p.range_requests(series or 1, inline)
        click.echo(f"query {name}: {p.ticks:,} ticks from {_iso(p.first)} to {_iso(p.last)}")
        if p.ranged_ticks:
            steps = ", ".join(f"{s:g}s" for s in sorted(p.steps))
            units = "" if inline else f" in {len(p.ranged):,} tasks"
            click.echo(f"  range queries: {p.ranged_ticks:,} ticks in {p.stretches:,} evenly spaced "
                       f"stretches (step {steps}){units}: {'at least ' if series is None else ''}"
                       f"{n_range:,} requests")
        if p.instant:
            why_instant = ("counter mode, tick by tick" if query.is_counter and ranged else
                           "tick by tick" if not ranged else "where the spacing changes")
            more = " (counter mode: at least one each)" if query.is_counter else ""
            click.echo(f"  instant queries ({why_instant}): {p.instant:,} ticks, {p.instant:,} requests{more}")
        if series is None:
            unknown = True
            click.echo(f"  estimated events: unknown, the instant query at {_iso(p.last)} failed: {why}")
        else:
            click.echo(f"  estimated events: {series * p.ticks:,} ({series:,} at the last tick, "
                       f"{_iso(p.last)}, times {p.ticks:,} ticks; an estimate: series come and go)")
            totals["events"] += series * p.ticks
        totals["ticks"] += p.ticks
        totals["range"] += n_range
        totals["instant"] += p.instant
    events = f"about {totals['events']:,} events" + (" and more (estimates missing)" if unknown else "")
    click.echo(f"total: {totals['ticks']:,} ticks; {totals['range']:,} range and {totals['instant']:,} instant "
               f"requests to Prometheus; {events} (estimated with {totals['estimates']} instant "
               "queries made now)")
