"""The `meterworker` command group; each command lives in a module of its own and registers itself on import."""

import click


class _Group(click.Group):
    """Redis (broker and store) not answering ends any command with one line, whichever call found out."""

    def invoke(self, ctx):
        import redis
        from kombu.exceptions import OperationalError

        try:
            return super().invoke(ctx)
        except (redis.RedisError, OperationalError) as e:
            raise click.ClickException(
                f"Redis does not answer ({' '.join(str(e).split())}); it is the broker and the store of every "
                "command but validate and once: check meterworker.redis_url or $METERWORKER_REDIS_URL") from None


@click.group(cls=_Group)
@click.version_option(package_name="meterworker")
def main():
    """Prometheus metrics to billable usage events (CloudEvents), on Celery and Redis."""
