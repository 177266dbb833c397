"""`meterworker validate`: check the config; print the queries, their next ticks and the sink, secrets masked."""

from datetime import datetime, timezone

import click

from meterworker.cli.common import config_option, load as _load
from meterworker.cli.group import main
from meterworker.durations import format_go_duration, parse_duration
from meterworker.redact import redact_headers, redact_url


@main.command()
@config_option
def validate(config_path):
    """Check the config; print the queries, their next ticks and the sink, secrets masked."""
    from meterworker.query.promql import range_selectors
    from meterworker.schedule.cron import parse_schedule
    from meterworker.schedule.windows import window_for

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
        if q.is_counter:
            _explain_counter(q, cfg.mapping_for(q).subject_label)
        else:
            click.echo(f"      promql:   {q.promql.strip()}")
        click.echo(f"      schedule: {expr} ({prom.timezone})")
        click.echo(f"      next ticks: {', '.join(x.isoformat() for x in ticks)}")
        for rng in ([] if q.is_counter else range_selectors(q.promql)):
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


def _explain_counter(q, subject_label: str) -> None:
    from meterworker.query.counter.selector import parse_selector

    sel = parse_selector(q.counter)
    matchers = ", ".join(m.promql() for m in sel.matchers) or "none"
    click.echo(f"      counter:  {sel.promql()}  (metric {sel.metric or 'any'}; matchers: {matchers})")
    click.echo("      billed:   each window's exact growth from the raw samples (a reset counts from zero), "
               "no extrapolation")
    if q.by is None:
        click.echo(f"      by:       each series alone (subject from label {subject_label!r})")
    else:
        click.echo(f"      by:       {', '.join(q.by)} (the growth of the series summed per these labels)")
    new = "counted from zero" if q.new_series == "count" else "skipped (billed from its second sample)"
    click.echo(f"      max_gap:  {format_go_duration(q.max_gap)} (a longer gap before a window is reported and "
               f"not billed across; a new series' first value is {new})")
