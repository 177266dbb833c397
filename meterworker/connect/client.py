"""meterworker's own Redis client: one server, or the primary a Sentinel group names now."""

from __future__ import annotations

import redis
from redis.sentinel import Sentinel

from meterworker.connect.options import ConnectionOptions
from meterworker.connect.urls import RedisTarget, redis_url_without_tls

__all__ = ["redis_client"]


def redis_client(options: ConnectionOptions, target: RedisTarget | None = None, **kwargs) -> redis.Redis:
    """A client of `target` (default: meterworker's state Redis); `kwargs` go to every connection.

    Through Sentinel the client asks the Sentinels for the primary on each new connection, and a
    connection that finds a replica where the primary was (after a fail-over) is dropped, so the
    next command goes to the new primary: every process follows a fail-over by itself. The
    command that hit the fail-over raises ConnectionError (or ReadOnlyError); retrying it is the
    caller's business, as for any Redis error."""
    target = target or options.redis
    tls = options.tls_for(target)
    if not target.sentinel:
        return redis.Redis.from_url(redis_url_without_tls(target), **tls, **kwargs)
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=options.sentinel_kwargs(target))
    return sentinel.master_for(
        options.master_name, db=target.db, username=target.username, password=target.password,
        **({"ssl": True, **tls} if tls else {}), **kwargs,
    )
