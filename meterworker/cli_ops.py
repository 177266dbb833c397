"""Operational subcommands (status, backfill, dlq, health), each in a module of its own, added to `meterworker`."""

from .cli_common import TimeParam, config_option, load


def register(main) -> None:
    from . import cli_backfill, cli_dlq, cli_health, cli_status

    cli_status.register(main, config_option, load)
    cli_backfill.register(main, config_option, TimeParam, load)
    cli_health.register(main, config_option, load)
    cli_dlq.register(main, config_option, load)
