"""The Celery app. Settings come from celeryconfig.py; the broker from the environment or the config."""

import os

from celery import Celery

from meterworker import broker_fix, runtime
from meterworker.connect import celery_settings, connection_options

broker_fix.install()

# Workers and beat import these when they start; meterworker.signals wires every Celery signal.
app = Celery("meterworker", include=["meterworker.query.task", "meterworker.query.ticks_task", "meterworker.delivery.task", "meterworker.signals"])
app.config_from_object("celeryconfig")


def _connection_settings() -> dict:
    """Broker, result backend and their transport options, from the config and the environment."""
    settings = None
    if os.environ.get(runtime.CONFIG_ENV):
        try:
            settings = runtime.current().config.meterworker
        except Exception:  # a bad config is reported by the task that needs it, with its field path
            pass
    options = connection_options(settings, default_redis_url=app.conf.broker_url or runtime.DEFAULT_REDIS_URL)
    return celery_settings(options, app.conf.broker_transport_options)


app.conf.update(_connection_settings())


def use_runtime(rt: "runtime.Runtime") -> None:
    """Point the app at the Redis and broker of a config loaded by a command (not from $METERWORKER_CONFIG)."""
    app.conf.update(celery_settings(rt.connections, app.conf.broker_transport_options))
    runtime.install(rt)
