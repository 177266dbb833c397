"""The `meterworker` command group; each command lives in a module of its own and registers itself on import."""

import click


@click.group()
@click.version_option(package_name="meterworker")
def main():
    """Prometheus metrics to billable usage events (CloudEvents), on Celery and Redis."""
