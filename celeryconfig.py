"""Celery settings for meterworker. Edit to taste; `celery -A meterworker` and `meterworker` load this module.

The broker is taken from $METERWORKER_REDIS_URL, else from `meterworker.redis_url` in the
collector config, else from broker_url below.
"""

from meterworker.keys import QUERY_QUEUE, QUERY_TASK, QUERY_TICKS_TASK, SEND_QUEUE, SEND_TASK

broker_url = "redis://127.0.0.1:6379/0"

# Nothing is acknowledged before its work is done; a worker that dies mid-task has its
# task redelivered. The visibility timeout must exceed the longest retry delay and the
# longest task: a message held longer than this is handed to another worker as well.
# (With the Redis broker, a dead worker's messages come back only after the visibility
# timeout. The send side does not wait for that: its batches live in the outbox in Redis
# with leases of 3 x the sink timeout + 5s, and its retries wait there, not in countdown
# messages; a `meterworker.send` message only says "send a batch", and is harmless twice.)
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
broker_transport_options = {"visibility_timeout": 3600}
broker_connection_retry_on_startup = True

task_routes = {
    QUERY_TASK: {"queue": QUERY_QUEUE},
    QUERY_TICKS_TASK: {"queue": QUERY_QUEUE},
    SEND_TASK: {"queue": SEND_QUEUE},
}
task_default_queue = QUERY_QUEUE
task_ignore_result = True
task_serializer = "json"
accept_content = ["json"]

beat_scheduler = "meterworker.schedule.beat:TickScheduler"

# Celery's task events are off: they cost a worker more than the rest of a small query task (see
# docs/benchmarks.md, fan-out). Flower turns them on in the workers while it runs (its --enable_events, on by
# default); set both to True for other consumers of task events (`celery events`, exporters).
worker_send_task_events = False
task_send_sent_event = False

timezone = "UTC"
enable_utc = True
