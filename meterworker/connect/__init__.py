"""Connections to Redis and the broker: URLs (urls.py), what the config and environment ask for
(options.py), meterworker's own Redis client (client.py), Celery's settings (celery_conf.py) and
confirming writes on replicas (replication.py).

The names load on first use, so that config/ (which checks URLs with urls.py) imports neither
redis-py nor kombu."""

from importlib import import_module

_EXPORTS = {
    # what to connect to
    "RedisTarget": "urls", "UrlError": "urls", "is_amqp_url": "urls", "parse_redis_url": "urls",
    "BROKER_ENV": "options", "DEFAULT_REDIS_URL": "options", "REDIS_ENV": "options",
    "ConnectionOptions": "options", "connection_options": "options",
    # clients and settings
    "redis_client": "client",
    "QUEUES": "celery_conf", "celery_settings": "celery_conf", "quorum_queues": "celery_conf",
    # replication
    "ReplicationError": "replication", "confirm_replicated": "replication", "pinned": "replication",
    "confirm_writes": "replication", "primary_id": "replication",
    "require_replicas": "replication",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
