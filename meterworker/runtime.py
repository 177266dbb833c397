"""Per-process access to the loaded config and the clients built from it (rebuilt after a fork)."""

import json
import logging
import os
import time
from functools import cached_property

import redis

from meterworker.delivery.batching import lease_seconds
from meterworker.config import Config, load_config
from meterworker.delivery.deadletter import DeadLetters
from meterworker.delivery.dedup import Delivered
from meterworker.delivery.sender import Sender
from meterworker.delivery.inflight import InFlightSlots
from meterworker.delivery.outbox import Outbox
from meterworker.query.prometheus import PrometheusClient
from meterworker.config.secrets import secret_forms
from meterworker.redact import MASK, redact_url
from meterworker.schedule.cron import Schedule, parse_schedule
from meterworker.schedule.state import State

CONFIG_ENV = "METERWORKER_CONFIG"
REDIS_ENV = "METERWORKER_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

log = logging.getLogger(__name__)


def configured_redis_url(config: Config | None) -> str | None:
    """The Redis URL from the environment or the config file, or None when neither gives one."""
    return os.environ.get(REDIS_ENV) or (config.meterworker.redis_url if config else None)


class Runtime:
    def __init__(self, config: Config):
        self.config = config
        self.pid = os.getpid()

    @property
    def collector(self) -> str:
        return self.config.meterworker.name

    @cached_property
    def connections(self):
        """What to connect to: Redis (plain, TLS or Sentinel) and the broker, from the config and environment."""
        from meterworker.connect import connection_options

        return connection_options(self.config.meterworker)

    @cached_property
    def redis(self) -> redis.Redis:
        from meterworker.connect import redis_client

        return redis_client(self.connections)

    def replication_mark(self) -> str | None:
        """With meterworker.redis_min_replicas > 0, the primary's id before a run of writes that
        confirm_writes() confirms later; None (and no round trip) otherwise."""
        if self.connections.min_replicas <= 0:
            return None
        from meterworker.connect import primary_id

        return primary_id(self.redis)

    def confirm_writes(self, since: str | None, where: str) -> None:
        """With meterworker.redis_min_replicas > 0: return once that many replicas have every write this
        process made so far, or raise ReplicationError, recorded (for `status`) as the last shortfall."""
        opts = self.connections
        if opts.min_replicas <= 0:
            return
        from meterworker.connect import ReplicationError, confirm_writes
        from meterworker.keys import Keys

        keys = Keys(self.collector)
        try:
            confirm_writes(self.redis, keys.replication_probe, opts.min_replicas, opts.replica_timeout_ms, since)
        except ReplicationError as e:
            try:
                self.redis.set(keys.replication_shortfall,
                               json.dumps({"error": str(e), "at": time.time(), "where": where}), ex=86400)
            except redis.RedisError:
                pass
            raise

    @cached_property
    def state(self) -> State:
        return State(self.redis, self.collector)

    @cached_property
    def delivered(self) -> Delivered:
        return Delivered(self.redis, self.collector)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self.redis, self.collector, scrub=self.scrub)

    @cached_property
    def outbox(self) -> Outbox:
        http = self.config.http
        return Outbox(self.redis, self.collector, self.delivered, self.dead_letters, count=http.batching.count,
                      period=http.batching.period, lease=lease_seconds(http.timeout))

    @cached_property
    def in_flight(self) -> InFlightSlots:
        http = self.config.http
        return InFlightSlots(self.redis, self.collector, http.max_in_flight, lease_seconds(http.timeout))

    @cached_property
    def prometheus(self) -> PrometheusClient:
        return PrometheusClient(self.config.input.prometheus)

    @cached_property
    def sender(self) -> Sender:
        return Sender(self.config.http)

    @cached_property
    def _secrets(self) -> list[str]:
        return sorted(secret_forms(self.config), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, MASK)
        return text

    @cached_property
    def _queries(self) -> dict:
        return {q.name: q for q in self.config.queries}

    def query(self, name: str):
        """The query named `name` (KeyError when the config has none): a lookup, not a search."""
        return self._queries[name]

    def schedule_for(self, query) -> Schedule:
        return parse_schedule(self.config.schedule_for(query), self.config.input.prometheus.timezone)


_current: Runtime | None = None


def current() -> Runtime:
    """The runtime of this process, loaded from $METERWORKER_CONFIG on first use."""
    global _current
    if _current is None or _current.pid != os.getpid():
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise RuntimeError(f"{CONFIG_ENV} is not set: point it at the collector config file")
        _current = Runtime(load_config(path).config)
    return _current


def install(rt: Runtime) -> None:
    global _current
    _current = rt


class RedactUrls(logging.Filter):
    """Masks credentials in the URLs that HTTP clients log (httpx logs every request line at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(str(a)) if str(a).startswith(("http://", "https://")) else a
                                for a in record.args)
        return True


HTTP_LOGGERS = ("httpx", "httpcore")


def redact_http_logs() -> None:
    """Install RedactUrls on the loggers of the HTTP clients (once per process)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())


class ScrubSecrets(logging.Filter):
    """Replaces every secret of the config in log records, whatever logged them."""

    def __init__(self, scrub):
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self._scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True
