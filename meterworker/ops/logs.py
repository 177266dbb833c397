"""Structured log lines for Celery processes: text with key=value context, or one JSON object a line.

While a task runs, every line it causes carries the task id and name, and the query and tick of a
query task or the batch id of a send task that resumes a batch. A record may bring its own
(`log.info(..., extra={"query": q, "tick": t, "batch_id": b})`).
Secrets of the config are masked in the message and in tracebacks. The Celery signals that call the
handlers below are wired in meterworker.signals.
"""

import contextvars
import json
import logging
import os
from datetime import datetime, timezone

from meterworker.keys import QUERY_TASK, SEND_TASK
from meterworker.ops.process_env import LOG_FORMAT_ENV, QUIET_LIBRARIES_ENV

FIELDS = ("query", "tick", "task_id", "task", "batch_id", "output")
# What $METERWORKER_QUIET_LIBRARIES keeps to warnings: start-up and per-task chatter, and the beat's line per
# dispatch (the query task's line per completed tick says the same, later).
QUIET_LOGGERS = ("celery", "kombu", "httpx", "httpcore", "meterworker.schedule.beat")

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("meterworker_log_context", default={})


def _iso(tick) -> str | None:
    if isinstance(tick, (int, float)) and not isinstance(tick, bool):
        return datetime.fromtimestamp(tick, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    return tick if isinstance(tick, str) else None


def task_context(task_name: str, task_id: str | None, args) -> dict:
    """What a task's log lines carry, from its name and arguments."""
    ctx = {"task": task_name, "task_id": task_id}
    args = list(args or ())
    if task_name == QUERY_TASK and len(args) >= 2:
        ctx.update(query=args[0], tick=_iso(args[1]))
    elif task_name == SEND_TASK and args and isinstance(args[0], str):
        ctx.update(batch_id=args[0])
    return {k: v for k, v in ctx.items() if v is not None}


def context_of(record: logging.LogRecord) -> dict:
    ctx = dict(_context.get())
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            ctx[name] = _iso(value) if name == "tick" else value
    return ctx


class JsonFormatter(logging.Formatter):
    def __init__(self, scrub=None):
        super().__init__()
        self.scrub = scrub or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": self.scrub(record.getMessage()),
            **context_of(record),
        }
        if record.exc_info:
            line["exception"] = self.scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, scrub=None):
        super().__init__("[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s")
        self.scrub = scrub or (lambda text: text)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ctx = context_of(record)
        if ctx:
            first, nl, rest = text.partition("\n")
            text = first + " " + " ".join(f"{k}={v}" for k, v in ctx.items()) + nl + rest
        return self.scrub(text)


def formatter(scrub=None) -> logging.Formatter:
    """The formatter $METERWORKER_LOG_FORMAT asks for (text unless json), masking with `scrub`."""
    kind = (os.environ.get(LOG_FORMAT_ENV) or "text").lower()
    if kind not in ("text", "json"):
        raise SystemExit(f"meterworker: {LOG_FORMAT_ENV}={kind!r}: use 'text' or 'json'")
    return (JsonFormatter if kind == "json" else TextFormatter)(scrub)


# --- handlers of Celery signals (wired in meterworker.signals) --------------------------------


def use_formatter(handlers, scrub=None) -> None:
    fmt = formatter(scrub)
    for h in handlers:
        h.setFormatter(fmt)
    if os.environ.get(QUIET_LIBRARIES_ENV):
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def enter_task(task_id=None, task=None, args=None, **_):
    if task is not None:
        _context.set(task_context(task.name, task_id, args))


def leave_task(**_):
    _context.set({})
