"""Per-process options (metrics endpoint, log format) that reach Celery processes as environment variables.

`celery worker` and `celery beat` know nothing of them, so `meterworker worker|beat|run` turn
them into variables that meterworker.ops.metrics and meterworker.ops.logs read inside Celery.
"""

import os

import click

METRICS_PORT_ENV = "METERWORKER_METRICS_PORT"
METRICS_ADDR_ENV = "METERWORKER_METRICS_ADDR"
LOG_FORMAT_ENV = "METERWORKER_LOG_FORMAT"
LOG_FORMATS = ("text", "json")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Set by `meterworker run` below --loglevel DEBUG: Celery's, kombu's and httpx' lines only from WARNING on.
QUIET_LIBRARIES_ENV = "METERWORKER_QUIET_LIBRARIES"


def _to_env(name: str):
    def callback(ctx, param, value):
        if value is not None:
            os.environ[name] = str(value)

    return callback


def _options(port_help: str, max_port: int = 65535):
    def decorate(f):
        for opt in reversed((
            click.option("--metrics-port", type=click.IntRange(1, max_port), expose_value=False,
                         callback=_to_env(METRICS_PORT_ENV), help=port_help),
            click.option("--metrics-addr", metavar="ADDRESS", expose_value=False, callback=_to_env(METRICS_ADDR_ENV),
                         help=f"Address the metrics endpoint listens on (default 0.0.0.0; ${METRICS_ADDR_ENV})."),
            click.option("--log-format", type=click.Choice(LOG_FORMATS), expose_value=False,
                         callback=_to_env(LOG_FORMAT_ENV),
                         help=f"Log lines as text or JSON objects (default text; ${LOG_FORMAT_ENV})."),
        )):
            f = opt(f)
        return f

    return decorate


process_options = _options(f"Serve Prometheus metrics on this port at /metrics (${METRICS_PORT_ENV}).")
run_options = _options("Serve Prometheus metrics: the query worker on this port, the send worker on the next, "
                       "beat on the one after.", max_port=65533)


def for_child(env: dict, index: int) -> dict:
    """`run`'s environment for its index-th process: metrics on the base port + index, files of its own."""
    env = dict(env)
    if env.get(METRICS_PORT_ENV):
        env[METRICS_PORT_ENV] = str(int(env[METRICS_PORT_ENV]) + index)
        env.pop(MULTIPROC_ENV, None)
    return env
