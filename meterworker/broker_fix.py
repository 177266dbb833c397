"""A worker must survive a Redis restart: works around a kombu/Celery bug that makes it exit instead.

When the broker connection breaks, Celery's consumer collects the connection and detaches its
transport, then reconnects with a new one. The old channel stays behind with no transport, and
two things still use it:

- closing the connection again tries to put the worker's unacknowledged messages (query retries
  waiting for their countdown, tasks under way) back on their queues through it;
- a task that was running while the connection broke acknowledges its message through it when
  it finishes.

Both fail with AttributeError (`'NoneType' object has no attribute 'hostname'` or `'client'`),
which Celery does not expect from a broker and treats as unrecoverable: the worker exits. (Seen
with celery 5.7 and kombu 5.7, in bench/chaos.py's redis-restart.)

A channel without a transport now raises redis' ConnectionError instead, which Celery and kombu
handle as the lost connection it is: the close goes on, the acknowledgement is logged as not
done. The messages stay in Redis' unacked hash and are delivered again after the broker's
visibility timeout, as those of a worker that died are; meterworker's tasks are harmless twice
(a query re-run queues nothing already pending or delivered, a stale send finds nothing to do).
"""

from contextlib import contextmanager

import redis
from kombu.transport import redis as kombu_redis

_conn_or_acquire = kombu_redis.Channel.conn_or_acquire


def detached(channel) -> bool:
    """The channel's connection was torn down, and it has no pool of its own left to use."""
    return getattr(channel, "_pool", None) is None and getattr(channel.connection, "client", None) is None


@contextmanager
def conn_or_acquire(self, client=None):
    if client is None and detached(self):
        raise redis.ConnectionError("the broker connection of this channel was lost and closed")
    with _conn_or_acquire(self, client) as c:
        yield c


def install() -> None:
    if kombu_redis.Channel.conn_or_acquire is not conn_or_acquire:
        kombu_redis.Channel.conn_or_acquire = conn_or_acquire
