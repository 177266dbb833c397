"""Operational subcommands (status, backfill, dlq, health), each in a module of its own, added to `meterworker`."""


def register(main) -> None:
    pass
