"""Celery's broker, result backend and queue settings for the connections meterworker uses.

RabbitMQ (an amqp:// broker_url): the queues ``query`` and ``send`` are quorum queues (durable,
replicated, no priorities) on topic exchanges, which Celery (>= 5.5) needs for native delayed
delivery: a retry's countdown then waits in RabbitMQ's delay exchanges instead of in a worker's
memory. The result backend stays meterworker's Redis.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from kombu import Exchange, Queue

from meterworker.connect.options import ConnectionOptions
from meterworker.connect.urls import RedisTarget, redis_url_without_tls

__all__ = ["QUEUES", "celery_settings", "quorum_queues"]

QUEUES = ("query", "send")
_REDIS_ONLY_TRANSPORT_OPTIONS = ("visibility_timeout", "master_name", "sentinel_kwargs", "min_other_sentinels")
_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


def quorum_queues(names: tuple[str, ...] = QUEUES) -> tuple[Queue, ...]:
    return tuple(
        Queue(name, Exchange(name, type="topic", durable=True), routing_key=name, durable=True,
              queue_arguments={"x-queue-type": "quorum"})
        for name in names
    )


def _use_ssl(options: ConnectionOptions, target: RedisTarget) -> dict | None:
    tls = options.tls_for(target)
    if not tls:
        return None
    return {**tls, "ssl_cert_reqs": _CERT_REQS[str(tls["ssl_cert_reqs"])]}


def _redis_transport_options(options: ConnectionOptions, target: RedisTarget, base: Mapping) -> dict:
    if not target.sentinel:
        return dict(base)
    return {**base, "master_name": options.master_name, "sentinel_kwargs": options.sentinel_kwargs(target)}


def celery_settings(options: ConnectionOptions, transport_options: Mapping | None = None,
                    backend_transport_options: Mapping | None = None) -> dict:
    """Settings for ``app.conf.update(...)``: broker_url, result_backend, their transport options and
    TLS, and for RabbitMQ task_queues. `transport_options` are the broker_transport_options to keep
    (celeryconfig's visibility_timeout; dropped for RabbitMQ, which has no such thing)."""
    base = dict(transport_options or {})
    state = options.redis
    conf: dict = {
        "result_backend": redis_url_without_tls(state),
        "result_backend_transport_options": _redis_transport_options(options, state,
                                                                     backend_transport_options or {}),
        "redis_backend_use_ssl": _use_ssl(options, state),
    }
    if options.broker is None:
        conf |= {
            "broker_url": options.broker_url,
            "broker_transport_options": {k: v for k, v in base.items() if k not in _REDIS_ONLY_TRANSPORT_OPTIONS},
            "broker_use_ssl": False,
            "task_queues": quorum_queues(),
            "worker_detect_quorum_queues": True,
            "broker_native_delayed_delivery_queue_type": "quorum",
        }
    else:
        conf |= {
            "broker_url": redis_url_without_tls(options.broker),
            "broker_transport_options": _redis_transport_options(options, options.broker, base),
            "broker_use_ssl": _use_ssl(options, options.broker) or False,
        }
    return conf
