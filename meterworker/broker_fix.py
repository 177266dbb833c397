"""A worker must survive a Redis restart: works around a kombu/Celery bug that makes it exit instead.

When the broker connection breaks, Celery's consumer first collects the connection (closing its
channel fails half-way: Redis is down) and detaches the transport, then closes the connection
again; that second close tries to put the worker's unacknowledged messages (tasks under way,
retries waiting for their countdown) back on their queues through the detached transport, and
fails with AttributeError ('NoneType' object has no attribute 'hostname'). Celery treats that
as unrecoverable, and the worker exits. (Seen with celery 5.7 and kombu 5.7.)

With the transport detached nothing can be restored now anyway: the messages stay in Redis'
unacked hash, and a worker puts them back after the broker's visibility timeout, as it does for
a worker that died. So that is what happens here too, and the worker reconnects.
"""

import logging

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

_restore_unacked = kombu_redis.QoS.restore_unacked


def restore_unacked(self, client=None):
    if client is None and getattr(self.channel.connection, "client", None) is None:
        log.warning("lost the broker connection with %d messages unacknowledged; they stay in Redis and are "
                    "delivered again after the visibility timeout", len(self._delivered))
        self._delivered.clear()
        return None
    return _restore_unacked(self, client)


def install() -> None:
    if kombu_redis.QoS.restore_unacked is not restore_unacked:
        kombu_redis.QoS.restore_unacked = restore_unacked
