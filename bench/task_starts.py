"""Loaded into the benchmarks' workers (`celery worker --include bench.task_starts`): when each query task
began, for the fan-out's tick lag. One Redis list entry "<task id> <time>" per task, in KEY; Celery's own
task events, which would tell the same, cost a worker several times more and are off by default."""

import os
import time

import redis
from celery import signals

from meterworker.keys import QUERY_TASK

KEY = "bench:task-starts"
_redis: redis.Redis | None = None


@signals.task_prerun.connect
def _started(task_id=None, task=None, **_):
    global _redis
    if task is None or task.name != QUERY_TASK:
        return
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["METERWORKER_REDIS_URL"])
    _redis.rpush(KEY, f"{task_id} {time.time()}")
