"""What every meterworker subcommand shares: the -c option, loading the config, time arguments."""

import logging
import sys
from datetime import datetime

import click

from meterworker import runtime
from meterworker.config import ConfigError, load_config
from meterworker.cli.timeparse import parse_time

EXIT_CONFIG = 2


def load(path: str):
    """The config, with warnings on stderr; a bad config ends the command with status 2."""
    try:
        loaded = load_config(path)
    except ConfigError as e:
        for line in e.problems:
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_CONFIG)
    for w in loaded.warnings:
        click.echo(f"warning: {w}", err=True)
    return loaded.config


config_option = click.option(
    "-c", "--config", "config_path", envvar=runtime.CONFIG_ENV, required=True,
    type=click.Path(dir_okay=False), help="Collector config YAML (or $METERWORKER_CONFIG).",
)


class TimeParam(click.ParamType):
    name = "time"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def setup_logging(level: str, scrub=None) -> None:
    """Log lines on stderr, with the config's secrets (`scrub`) and credentials in logged URLs masked."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    runtime.redact_http_logs()
    if scrub is not None:
        for h in logging.getLogger().handlers:
            h.addFilter(runtime.ScrubSecrets(scrub))


def command_delivery(rt, store: bool):
    """Delivery in this process; a sink connection that cannot be set up (e.g. SSL_CERT_FILE naming a file with
    no certificate) ends the command with one line."""
    from meterworker.cli.group import cert_env
    from meterworker.delivery.records import CommandDelivery

    try:
        return CommandDelivery(rt, store=store)
    except OSError as e:
        raise click.ClickException(f"cannot set up requests to the sink ({type(e).__name__}: "
                                   f"{rt.scrub(' '.join(str(e).split()))}{cert_env()})") from None
