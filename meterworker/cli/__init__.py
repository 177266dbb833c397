"""The `meterworker` command: a module per command (or group of commands), each registering itself on `main`."""

from meterworker.cli.group import main
from meterworker.cli import backfill, dlq, health, once, processes, status, validate  # noqa: F401  (they register)

__all__ = ["main"]
