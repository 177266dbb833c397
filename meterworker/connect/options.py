"""What meterworker connects to, resolved once from the config and the environment.

``$METERWORKER_REDIS_URL`` wins over ``meterworker.redis_url`` and ``$METERWORKER_BROKER_URL`` over
``meterworker.broker_url``; the broker defaults to the Redis URL. TLS options come from a rediss://
URL's ssl_* parameters, else from ``meterworker.redis_tls``; a rediss:// URL that names no
``ssl_cert_reqs`` verifies the server (``required``, redis-py's default; kombu alone would not).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from meterworker.connect.urls import RedisTarget, UrlError, is_amqp_url, parse_redis_url

if TYPE_CHECKING:
    from meterworker.config import Settings

__all__ = ["BROKER_ENV", "DEFAULT_REDIS_URL", "REDIS_ENV", "ConnectionOptions", "connection_options"]

REDIS_ENV = "METERWORKER_REDIS_URL"
BROKER_ENV = "METERWORKER_BROKER_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_TLS_FIELDS = (("ca_file", "ssl_ca_certs"), ("cert_file", "ssl_certfile"), ("key_file", "ssl_keyfile"),
               ("cert_reqs", "ssl_cert_reqs"), ("check_hostname", "ssl_check_hostname"))


@dataclass(frozen=True)
class ConnectionOptions:
    redis: RedisTarget
    broker_url: str
    broker: RedisTarget | None  # None: the broker is RabbitMQ (broker_url is amqp://)
    master_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    sentinel_tls: bool = False
    tls_defaults: dict[str, str | bool] = field(default_factory=dict)  # from meterworker.redis_tls
    min_replicas: int = 0
    replica_timeout_ms: int = 1000

    def tls_for(self, target: RedisTarget) -> dict[str, str | bool]:
        """redis-py's ssl_* keyword arguments for the data nodes of `target`; {} without TLS."""
        if not (target.uses_tls or (target.sentinel and self.tls_defaults)):
            return {}
        return {"ssl_cert_reqs": "required", **self.tls_defaults, **target.tls}

    def sentinel_kwargs(self, target: RedisTarget) -> dict:
        """Keyword arguments of the connections to the Sentinels themselves."""
        kw: dict = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
        if self.sentinel_username:
            kw["username"] = self.sentinel_username
        if self.sentinel_password:
            kw["password"] = self.sentinel_password
        if self.sentinel_tls:
            kw |= {"ssl": True, "ssl_cert_reqs": "required", **self.tls_defaults, **target.tls}
        return kw


def connection_options(settings: "Settings | None", environ: Mapping[str, str] = os.environ,
                       default_redis_url: str = DEFAULT_REDIS_URL) -> ConnectionOptions:
    """The connections `settings` (``config.meterworker``; None: defaults) and `environ` describe;
    `default_redis_url` when neither names a Redis (app.py: celeryconfig's broker_url).

    Raises UrlError for an unusable URL from the environment (the config's are checked when it loads)."""
    redis_url = environ.get(REDIS_ENV) or (settings.redis_url if settings else None) or default_redis_url
    broker_url = environ.get(BROKER_ENV) or (settings.broker_url if settings else None) or redis_url
    redis_target = parse_redis_url(redis_url)
    if is_amqp_url(redis_url):
        raise UrlError("the Redis URL cannot be amqp://: meterworker's state lives in Redis; "
                       "give amqp:// as meterworker.broker_url")
    broker_target = None if is_amqp_url(broker_url) else parse_redis_url(broker_url)
    sentinel = settings.redis_sentinel if settings else None
    master_name = sentinel.master_name if sentinel else None
    if (redis_target.sentinel or (broker_target and broker_target.sentinel)) and not master_name:
        raise UrlError("a sentinel:// URL needs meterworker.redis_sentinel.master_name")
    tls = settings.redis_tls if settings else None
    tls_defaults = {} if tls is None else {
        name: getattr(tls, attr) for attr, name in _TLS_FIELDS if getattr(tls, attr) is not None
    }
    return ConnectionOptions(
        redis=redis_target,
        broker_url=broker_url,
        broker=broker_target,
        master_name=master_name,
        sentinel_username=sentinel.username if sentinel else None,
        sentinel_password=sentinel.password if sentinel else None,
        sentinel_tls=sentinel.tls if sentinel else False,
        tls_defaults=tls_defaults,
        min_replicas=settings.redis_min_replicas if settings else 0,
        replica_timeout_ms=round(settings.redis_replica_timeout * 1000) if settings else 1000,
    )
