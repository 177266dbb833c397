"""meterworker: Prometheus metrics to billable usage events, on Celery and Redis."""

from .app import app

__all__ = ["app"]
__version__ = "0.1.0"
