"""Confirming that a write reached the replicas before it counts (Redis WAIT).

Redis replicates asynchronously: a primary that dies can take its last writes with it, and the
replica the Sentinels promote never saw them. WAIT blocks until `replicas` replicas acknowledged
every earlier write *of the same connection*, so the write and the WAIT must share one: write
through ``pinned(client)`` (or a pipeline ending in WAIT, whose count goes to
``require_replicas``). A write that is not confirmed is not lost yet, but not safe either: the
caller must not report it done (nor acknowledge the message that asked for it) and retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

__all__ = ["ReplicationError", "confirm_replicated", "confirm_writes", "pinned", "primary_id", "require_replicas"]


class ReplicationError(redis.RedisError):
    """Fewer replicas than required confirmed a write in time: retry it."""

    def __init__(self, confirmed: int, required: int, timeout_ms: int, message: str | None = None):
        self.confirmed, self.required, self.timeout_ms = confirmed, required, timeout_ms
        super().__init__(message or (
            f"write confirmed by {confirmed} of the {required} Redis replica(s) required within {timeout_ms} ms "
            "(meterworker.redis_min_replicas); it does not count as done, retry it"))


def require_replicas(confirmed: int, replicas: int, timeout_ms: int) -> int:
    """`confirmed` (WAIT's answer), or ReplicationError when it is below `replicas`."""
    if confirmed < replicas:
        raise ReplicationError(confirmed, replicas, timeout_ms)
    return confirmed


def confirm_replicated(client: redis.Redis, replicas: int, timeout_ms: int) -> int:
    """WAIT until `replicas` replicas have the writes made so far on `client`'s connection; return
    how many confirmed. `replicas` 0 (the default config) is off: no round trip, returns 0.

    `client` must be bound to one connection (``pinned(...)``): on a pooled client WAIT could run
    on another connection than the write and confirm nothing (TypeError)."""
    if replicas <= 0:
        return 0
    if isinstance(client, redis.client.Pipeline) or getattr(client, "connection", None) is None:
        raise TypeError("confirm_replicated needs a client on one connection (meterworker.connect.pinned): "
                        "WAIT only counts the writes of its own connection")
    confirmed = int(client.execute_command("WAIT", replicas, timeout_ms))
    if confirmed < replicas:
        # Maybe a primary the Sentinels replaced, which still takes writes until they demote it
        # (up to ~10 s): the connection's next command asks the Sentinels again.
        client.connection.disconnect()
    return require_replicas(confirmed, replicas, timeout_ms)


@contextmanager
def pinned(client: redis.Redis) -> Iterator[redis.Redis]:
    """A client on one connection of `client`'s pool (given back on leaving), for write + WAIT."""
    one = redis.Redis(connection_pool=client.connection_pool, single_connection_client=True)
    try:
        yield one
    finally:
        one.close()


def primary_id(client: redis.Redis) -> str:
    """The primary's replication id: a replica promoted by a fail-over (or a restarted Redis) has a new one."""
    return str(client.info("replication")["master_replid"])


def confirm_writes(client: redis.Redis, probe_key: str, replicas: int, timeout_ms: int,
                   since: str | None = None) -> int:
    """Confirm on `replicas` replicas every write made so far through any connection of `client`'s pool
    (and answered): a probe write on one connection, then WAIT there. The replication stream is one
    ordered stream, so a replica that has the probe has every write before it. `since`: primary_id()
    taken before those writes; a different primary now (a fail-over in between, which may have dropped
    them), or behind Sentinels a server they no longer name, is a ReplicationError too. `replicas` 0 is
    off: no round trip."""
    if replicas <= 0:
        return 0
    with pinned(client) as one:
        if since is not None and primary_id(one) != since:
            raise ReplicationError(0, replicas, timeout_ms,
                                   "the Redis primary changed (a fail-over) since these writes, which it may not "
                                   "have: they do not count as done, retry them")
        one.set(probe_key, "1", px=60_000)
        confirmed = confirm_replicated(one, replicas, timeout_ms)
        _still_the_primary(one, replicas, timeout_ms)
        return confirmed


def _still_the_primary(one: redis.Redis, replicas: int, timeout_ms: int) -> None:
    """Behind Sentinels: the server that confirmed is the one they name. After a fail-over the old primary
    takes writes (and its replicas confirm them) until the Sentinels demote it, then drops them."""
    pool = one.connection_pool
    if not hasattr(pool, "get_master_address"):
        return
    named = pool.get_master_address()
    here = (one.connection.host, int(one.connection.port))
    if (named[0], int(named[1])) != here:
        one.connection.disconnect()
        raise ReplicationError(0, replicas, timeout_ms,
                               f"the Sentinels name another Redis primary now (a fail-over): the writes confirmed "
                               f"on {here[0]}:{here[1]} may be dropped, they do not count as done, retry them")
