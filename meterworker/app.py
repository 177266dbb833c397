"""The Celery app. Settings come from celeryconfig.py; the broker from the environment or the config."""

import os

from celery import Celery

from meterworker import broker_fix, runtime

broker_fix.install()

# Workers and beat import these when they start; meterworker.signals wires every Celery signal.
app = Celery("meterworker", include=["meterworker.query.task", "meterworker.delivery.task", "meterworker.signals"])
app.config_from_object("celeryconfig")


def _broker_url() -> str:
    url = os.environ.get(runtime.REDIS_ENV)
    if url:
        return url
    if os.environ.get(runtime.CONFIG_ENV):
        try:
            url = runtime.configured_redis_url(runtime.current().config)
        except Exception:  # a bad config is reported by the task that needs it, with its field path
            url = None
    return url or app.conf.broker_url or runtime.DEFAULT_REDIS_URL


app.conf.broker_url = _broker_url()
app.conf.result_backend = app.conf.broker_url


def use_runtime(rt: "runtime.Runtime") -> None:
    """Point the app at the Redis of a config loaded by a command (not from $METERWORKER_CONFIG)."""
    url = runtime.configured_redis_url(rt.config)
    if url:
        app.conf.broker_url = app.conf.result_backend = url
    runtime.install(rt)
