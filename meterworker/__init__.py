"""meterworker: Prometheus metrics to billable usage events, on Celery and Redis."""

__version__ = "0.1.0"


def __getattr__(name):
    # `celery -A meterworker` looks up `meterworker.app`; pure modules stay importable without Celery.
    if name == "app":
        from meterworker.app import app

        return app
    raise AttributeError(name)
