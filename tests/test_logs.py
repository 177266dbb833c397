"""Structured logs: text with key=value context or JSON lines, with the query, tick, task and batch; no secret."""

import json
import logging
import re
import sys

from meterworker.ops.logs import JsonFormatter, TextFormatter
from tests.support import OpenMeterSink
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

TOKEN = "logs-s3cret-token"


def record(msg: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("meterworker.test", logging.ERROR, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def scrub(text: str) -> str:
    return text.replace(TOKEN, "****")


def test_json_lines_carry_context_and_mask_secrets_also_in_tracebacks():
    try:
        raise RuntimeError(f"refused Bearer {TOKEN}")
    except RuntimeError:
        exc_info = sys.exc_info()
    line = JsonFormatter(scrub).format(record("query %s failed with %s", "sessions", TOKEN, exc_info=exc_info,
                                              query="sessions", tick=1795770000, batch_id="b-1"))
    got = json.loads(line)
    assert got["message"] == "query sessions failed with ****"
    assert got["query"] == "sessions" and got["tick"] == "2026-11-27T09:00:00Z" and got["batch_id"] == "b-1"
    assert got["level"] == "ERROR" and got["logger"] == "meterworker.test"
    assert "RuntimeError: refused Bearer ****" in got["exception"]
    assert TOKEN not in line


def test_text_lines_end_with_key_value_context():
    line = TextFormatter(scrub).format(record("dispatched %s", "sessions", query="sessions", tick=1795770000))
    assert re.fullmatch(r"\[.+: ERROR/MainProcess\] meterworker.test: dispatched sessions "
                        r"query=sessions tick=2026-11-27T09:00:00Z", line), line


def test_worker_writes_json_lines_with_task_query_tick_and_batch(tmp_path, prometheus, redis_url):
    with OpenMeterSink(token=TOKEN) as sink:
        cfg = write_config(tmp_path / "collector.yaml", prometheus.url, sink.url,
                           [{"name": "sessions", "promql": "mw_active_sessions"}], redis_url=redis_url, name="logs",
                           schedule="@every 2s", offset="0s",
                           http={"headers": {"Authorization": f"Bearer ${{SINK_TOKEN}}"},
                                 "dump_request_log_level": "DEBUG"})
        worker = Proc(meterworker("worker", "-c", str(cfg), "--log-format", "json", "--loglevel", "DEBUG",
                                  "--concurrency", "1"), tmp_path / "worker.log", env={"SINK_TOKEN": TOKEN})
        beat = Proc(meterworker("beat", "-c", str(cfg), "--log-format", "json"), tmp_path / "beat.log",
                    env={"SINK_TOKEN": TOKEN})
        try:
            wait_until(lambda: len(sink.events) >= 3, 60, "a tick's events at the sink", worker)
        finally:
            beat.stop()
            worker.stop()
    out = worker.output() + beat.output()
    assert TOKEN not in out
    assert not re.search(r"^\[\d{4}-\d\d-\d\d", out, re.M), "every log record is a JSON line"
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    queued = [x for x in lines if x["message"].startswith("query sessions tick") and "events queued" in x["message"]]
    assert queued, out[-3000:]
    first = queued[0]
    assert first["task"] == "meterworker.query" and first["query"] == "sessions"
    assert re.fullmatch(r"[0-9a-f-]{36}", first["task_id"])
    assert first["tick"].replace("Z", "+00:00") in first["message"]
    delivered = [x for x in lines if re.search(r"batch \S+: \d+ events delivered", x["message"])]
    assert delivered, out[-3000:]
    assert all(x["batch_id"] in x["message"] and x["task"] == "meterworker.send" for x in delivered)
    dumped = [x for x in lines if x["message"].startswith("request POST")]
    assert dumped and all("****" in x["message"] for x in dumped), "request dumps show the header masked"
