"""meterworker's own Prometheus metrics, and the endpoint a worker or beat serves them on.

Recording is always on and cheap; serving starts when $METERWORKER_METRICS_PORT is set
(`meterworker worker|beat --metrics-port N` sets it). A Celery worker counts in its pool's
child processes and serves from its main process, so values go through
prometheus_client's multiprocess files ($PROMETHEUS_MULTIPROC_DIR, a fresh temporary
directory unless given: `setup`, when the worker or beat starts). The Celery signals that
call the handlers below are wired in meterworker.signals.
"""

import atexit
import glob
import logging
import os
import shutil
import tempfile
import time

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, start_http_server
from prometheus_client import multiprocess, values
from prometheus_client.core import GaugeMetricFamily

from meterworker.keys import QUERY_TASK, QUEUES
from meterworker.delivery.deadletter import DeadLetters
from meterworker.ops.process_env import METRICS_ADDR_ENV as ADDR_ENV, METRICS_PORT_ENV as PORT_ENV, MULTIPROC_ENV
from meterworker.schedule import beat_lock
from meterworker.schedule.state import State

DEFAULT_ADDR = "0.0.0.0"

log = logging.getLogger(__name__)

disable_created_metrics()

EVENTS_PRODUCED = Counter("meterworker_events_produced", "CloudEvents made from query results", ["query"])
EVENTS_SENT = Counter("openmeter_events_sent", "CloudEvents accepted by the metering service", ["query"])
EVENTS_DEAD_LETTERED = Counter("meterworker_events_dead_lettered", "CloudEvents put in the dead-letter store",
                               ["query"])
EVENTS_SKIPPED = Counter(
    "meterworker_events_skipped",
    "Series or events not sent: non_finite (NaN/Inf value), missing_subject (no subject label), "
    "already_delivered (sent before, within dedup_horizon)",
    ["query", "reason"],
)
QUERY_DURATION = Histogram(
    "meterworker_query_duration_seconds", "Time a query task took (PromQL evaluation and hand-over), per attempt",
    ["query"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
QUERY_ERRORS = Counter("meterworker_query_errors", "Failed query attempts (each is retried)", ["query"])
TICK_LAG = Histogram(
    "meterworker_tick_lag_seconds",
    "How long after its tick a query was dispatched by beat (stage=dispatch) or started on a worker (stage=run)",
    ["query", "stage"], buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400),
)
BATCH_SIZE = Histogram("meterworker_batch_size", "Events per batch posted to the metering service", ["query"],
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000))
HTTP_RESPONSES = Counter("meterworker_http_responses", "Responses of the metering service by status "
                         "(status=error: no response)", ["status"])
COUNTER_SERIES_STARTED = Counter(
    "meterworker_counter_series_started",
    "Counter-mode series without a sample within max_gap before a window: kind=new (no sample before: counted "
    "from zero or skipped per new_series), kind=gap (back after a longer gap: the gap's growth is not billed)",
    ["query", "kind"],
)
RETRIES = Counter("meterworker_retries", "Query attempts and batches scheduled for another try", ["task", "query"])


# --- recording: cheap, called by the tasks --------------------------------------------------


def events_produced(query: str, n: int) -> None:
    EVENTS_PRODUCED.labels(query).inc(n)


def events_sent(query: str | None, n: int) -> None:
    EVENTS_SENT.labels(query or "").inc(n)


def events_dead_lettered(query: str | None, n: int) -> None:
    EVENTS_DEAD_LETTERED.labels(query or "").inc(n)


def events_skipped(query: str | None, reason: str, n: int) -> None:
    if n:
        EVENTS_SKIPPED.labels(query or "", reason).inc(n)


def counter_series_started(query: str, kind: str, n: int) -> None:
    if n:
        COUNTER_SERIES_STARTED.labels(query, kind).inc(n)


def query_failed(query: str) -> None:
    QUERY_ERRORS.labels(query).inc()


def tick_lag(query: str, stage: str, tick: float, now: float | None = None) -> None:
    TICK_LAG.labels(query, stage).observe(max(0.0, (time.time() if now is None else now) - tick))


def batch_posted(query: str | None, size: int) -> None:
    BATCH_SIZE.labels(query or "").observe(size)


def http_response(status: int | None) -> None:
    HTTP_RESPONSES.labels(str(status) if status else "error").inc()


def retried(task: str, query: str | None) -> None:
    RETRIES.labels(task, query or "").inc()


# --- what Redis knows, read at scrape time -------------------------------------------------


class StateCollector:
    """Pending ticks, newest completed tick, dead-letter entries, beat lock and queue lengths, from Redis."""

    def __init__(self, redis_url: str, collector: str, queries: list[str]):
        self.collector, self.queries = collector, queries
        # Its own client with short timeouts: a slow Redis must not hang the scrape.
        self.r = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)

    def collect(self):
        collector = self.collector
        up = GaugeMetricFamily("meterworker_redis_up", "1 when Redis answered this scrape", labels=["collector"])
        pending = GaugeMetricFamily("meterworker_pending_ticks", "Ticks dispatched and not yet completed",
                                    labels=["collector", "query"])
        completed = GaugeMetricFamily("meterworker_last_completed_tick_timestamp_seconds",
                                      "The newest tick completed, Unix time", labels=["collector", "query"])
        dlq = GaugeMetricFamily("meterworker_dead_letter_entries", "Batches in the dead-letter store",
                                labels=["collector"])
        lock = GaugeMetricFamily("meterworker_beat_lock_held", "1 when some beat holds the beat lock",
                                 labels=["collector"])
        queues = GaugeMetricFamily("meterworker_queue_length", "Messages waiting in a Celery queue "
                                   "(not counting retries that wait for their countdown)", labels=["queue"])
        try:
            state = State(self.r, collector)
            for name in self.queries:
                status = state.query_status(name)
                pending.add_metric([collector, name], len(status["pending"]))
                if status["last_completed"] is not None:
                    completed.add_metric([collector, name], status["last_completed"])
            dlq.add_metric([collector], DeadLetters(self.r, collector).count())
            lock.add_metric([collector], int(beat_lock.holder(self.r, collector) is not None))
            for name in QUEUES:
                queues.add_metric([name], self.r.llen(name))
        except redis.RedisError as e:
            log.warning("metrics: Redis did not answer: %s", e)
            up.add_metric([collector], 0)
            return [up]
        up.add_metric([collector], 1)
        return [up, pending, completed, dlq, lock, queues]


class BeatCollector:
    """Whether this beat process holds the lock, read from its scheduler at scrape time."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        active = GaugeMetricFamily("meterworker_beat_active", "1 while this beat holds the beat lock and dispatches")
        active.add_metric([], int(bool(getattr(self.service.scheduler, "active", False))))
        return [active]


# --- serving -------------------------------------------------------------------------------


def _remove_dir(path: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def setup() -> int | None:
    """When a worker or beat starts, before it records anything: the port to serve on ($METERWORKER_METRICS_PORT),
    or None; when there is one, values go through multiprocess files from now on."""
    port = _port_from_env()
    if port is None:
        return None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="meterworker-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
        atexit.register(_remove_dir, own_dir, os.getpid())
    # prometheus_client picks its value class when first imported, and `celery` imports it (through
    # Flower's plugin) before this app: pick again for the values of the metrics above, which are made
    # when they are first recorded.
    values.ValueClass = values.get_value_class()
    return port


def _multiprocess() -> bool:
    return values.ValueClass is not values.MutexValue


def _remove_stale_files() -> None:
    """Files of processes from an earlier run of this directory would be added to ours."""
    me = f"_{os.getpid()}.db"
    for f in glob.glob(os.path.join(os.environ[MULTIPROC_ENV], "*.db")):
        if not f.endswith(me):
            os.remove(f)


def registry(collectors=()) -> CollectorRegistry:
    """What the endpoint serves: every process's counters, and what the given collectors read at scrape time."""
    if _multiprocess():
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
    else:
        from prometheus_client import REGISTRY as reg
    for collector in collectors:
        reg.register(collector)
    return reg


def serve(port: int, collectors=()) -> None:
    """Serve /metrics on port ($METERWORKER_METRICS_ADDR, default 0.0.0.0) in a background thread; exit the
    process when the port is unusable."""
    addr = os.environ.get(ADDR_ENV) or DEFAULT_ADDR
    if _multiprocess():
        _remove_stale_files()
    try:
        start_http_server(port, addr, registry(collectors))
    except OSError as e:
        raise SystemExit(f"meterworker: cannot serve metrics on {addr}:{port}: {e.strerror or e}") from None
    log.info("serving metrics on http://%s:%d/metrics", addr, port)


def _port_from_env() -> int | None:
    raw = os.environ.get(PORT_ENV)
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise SystemExit(f"meterworker: {PORT_ENV}={raw!r} is not a TCP port (1-65535)")
    return port


# --- handlers of Celery signals (wired in meterworker.signals) --------------------------------

_started: dict[str, float] = {}


def forget_dead_child(pid=None, **_):
    if pid and _multiprocess():
        multiprocess.mark_process_dead(pid)


def on_publish(sender=None, body=None, headers=None, **_):
    # Beat publishing a query task is its dispatch; a worker re-publishing it is a retry, counted below.
    if sender != QUERY_TASK or (headers or {}).get("retries"):
        return
    args = body[0] if isinstance(body, (tuple, list)) else None
    if args and len(args) >= 2:
        tick_lag(args[0], "dispatch", args[1])


def on_prerun(task_id=None, task=None, args=None, **_):
    if task is not None and task.name == QUERY_TASK and args and len(args) >= 2:
        _started[task_id] = time.monotonic()
        tick_lag(args[0], "run", args[1])


def on_postrun(task_id=None, task=None, args=None, retval=None, state=None, **_):
    if task is None or task.name != QUERY_TASK or not args:
        return
    started = _started.pop(task_id, None)
    if started is not None:
        QUERY_DURATION.labels(args[0]).observe(time.monotonic() - started)
    if state == "SUCCESS" and isinstance(retval, int):
        events_produced(args[0], retval)


def on_retry(sender=None, request=None, **_):
    if sender is not None and sender.name == QUERY_TASK and request is not None and request.args:
        query_failed(request.args[0])
        retried("query", request.args[0])


def on_failure(sender=None, args=None, **_):
    if sender is not None and sender.name == QUERY_TASK and args:
        query_failed(args[0])
