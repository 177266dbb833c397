"""The `meterworker` command group; each command lives in a module of its own and registers itself on import."""

import os
import ssl

import click


def cert_env() -> str:
    """The CA settings from the environment that httpx reads, for an error that may come from them."""
    return "".join(f", {v}={os.environ[v]}" for v in ("SSL_CERT_FILE", "SSL_CERT_DIR") if os.environ.get(v))


class _Group(click.Group):
    """Redis (broker and store) not answering, or TLS that cannot be set up (a CA bundle with no certificate),
    ends any command with one line, whichever call found out."""

    def invoke(self, ctx):
        import redis
        from kombu.exceptions import OperationalError

        try:
            return super().invoke(ctx)
        except (redis.RedisError, OperationalError) as e:
            raise click.ClickException(
                f"Redis does not answer ({' '.join(str(e).split())}); it is the broker and the store of every "
                "command but validate and once: check meterworker.redis_url or $METERWORKER_REDIS_URL") from None
        except OSError as e:
            # ssl loading a CA bundle named by the environment raises a FileNotFoundError naming no file
            if not (isinstance(e, ssl.SSLError)
                    or (isinstance(e, FileNotFoundError) and e.filename is None and cert_env())):
                raise
            raise click.ClickException(f"cannot set up TLS ({' '.join(str(e).split())}{cert_env()})") from None


@click.group(cls=_Group)
@click.version_option(package_name="meterworker")
def main():
    """Prometheus metrics to billable usage events (CloudEvents), on Celery and Redis."""
