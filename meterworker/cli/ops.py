"""Operational subcommands (status, backfill, dlq, health), each in a module of its own, added to `meterworker`."""

from meterworker.cli.common import TimeParam, config_option, load


def register(main) -> None:
    from meterworker.cli import backfill as cli_backfill
    from meterworker.cli import dlq as cli_dlq
    from meterworker.cli import health as cli_health
    from meterworker.cli import status as cli_status

    cli_status.register(main, config_option, load)
    cli_backfill.register(main, config_option, TimeParam, load)
    cli_health.register(main, config_option, load)
    cli_dlq.register(main, config_option, load)
