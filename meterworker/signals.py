"""Every Celery signal meterworker listens to, wired here and nowhere else.

Celery imports this module when a worker or beat starts (it is in the app's `include`), before
it sets up logging or sends worker_init / beat_init. The handlers are plain functions of their
modules; those that need the config or its clients get them from the runtime here.
"""

import logging

from celery import signals

from meterworker import runtime
from meterworker.delivery import task as send_side
from meterworker.ops import logs, metrics
from meterworker.ops.process_tuning import collect_less, keep_freed_memory

log = logging.getLogger(__name__)


def _runtime_or_none() -> runtime.Runtime | None:
    try:
        return runtime.current()
    except Exception:  # a bad config is reported by the task that needs it, with its field path
        return None


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _set_up_logger(logger=None, **_):
    handlers = logging.getLogger().handlers + (logger.handlers if logger else [])
    rt = _runtime_or_none()
    runtime.redact_http_logs()
    logs.use_formatter(handlers, rt.scrub if rt else None)
    if rt is not None:
        scrubber = runtime.ScrubSecrets(rt.scrub)
        for h in handlers:
            h.addFilter(scrubber)


def _state_collectors() -> list:
    try:
        rt = runtime.current()
    except Exception as e:  # a bad config is reported by whoever needs it; the counters are still served
        log.warning("metrics: no state from Redis (%s)", e)
        return []
    url = runtime.configured_redis_url(rt.config) or runtime.DEFAULT_REDIS_URL
    return [metrics.StateCollector(url, rt.collector, [q.name for q in rt.config.queries])]


@signals.worker_init.connect
def _worker_init(**_):
    keep_freed_memory()  # before the pool forks: its processes inherit it
    port = metrics.setup()
    if port:
        metrics.serve(port, _state_collectors())


@signals.beat_init.connect
def _beat_init(sender=None, **_):
    port = metrics.setup()
    if port:
        metrics.serve(port, [*_state_collectors(), metrics.BeatCollector(sender)])


@signals.worker_process_init.connect
def _worker_process_init(**_):
    collect_less()


@signals.worker_ready.connect
def _worker_ready(sender=None, **_):
    if sender is not None and send_side.consumes_sends(sender.app.amqp.queues.consume_from):
        send_side.start_sweeper(runtime.current())


signals.worker_shutdown.connect(send_side.stop_sweeper)
signals.worker_process_shutdown.connect(metrics.forget_dead_child)
signals.before_task_publish.connect(metrics.on_publish)
signals.task_prerun.connect(metrics.on_prerun)
signals.task_prerun.connect(logs.enter_task)
signals.task_postrun.connect(metrics.on_postrun)
signals.task_postrun.connect(logs.leave_task)
signals.task_retry.connect(metrics.on_retry)
signals.task_failure.connect(metrics.on_failure)
