"""Flower with no extra setup: `meterworker flower` sees the tasks by name, with the query and tick as arguments."""

import json
import urllib.parse
import urllib.request

from tests.support import free_port
from tests.support.mwproc import Proc, meterworker, wait_until, write_config


def flower_tasks(port: int) -> list[dict] | None:
    """The task list Flower's Tasks page shows."""
    query = urllib.parse.urlencode({"draw": 1, "start": 0, "length": 500, "order[0][column]": 0,
                                    "order[0][dir]": "asc", "columns[0][data]": "name"})
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/tasks/datatable?{query}", timeout=5) as r:
            return json.loads(r.read())["data"]
    except OSError:
        return None


def test_flower_shows_named_tasks_with_query_and_tick_and_no_batches(tmp_path, prometheus, sink, redis_url):
    cfg = write_config(tmp_path / "collector.yaml", prometheus.url, sink.url,
                       [{"name": "sessions", "promql": "mw_active_sessions"}], redis_url=redis_url, name="flower",
                       schedule="@every 2s", offset="0s")
    port = free_port()
    flower = Proc(meterworker("flower", "-c", str(cfg), f"--port={port}", "--address=127.0.0.1"),
                  tmp_path / "flower.log")
    procs = [flower]
    try:
        wait_until(lambda: flower_tasks(port) is not None, 60, "Flower to serve", flower)
        procs += [Proc(meterworker("worker", "-c", str(cfg), "--concurrency", "1"), tmp_path / "worker.log"),
                  Proc(meterworker("beat", "-c", str(cfg)), tmp_path / "beat.log")]

        def done():
            tasks = flower_tasks(port) or []
            names = {t["name"] for t in tasks if t["state"] == "SUCCESS"}
            return {"meterworker.query", "meterworker.send"} <= names and tasks

        tasks = wait_until(done, 60, "query and send tasks in Flower", flower)
    finally:
        for p in reversed(procs):
            p.stop()
    assert sink.events
    queries = [t for t in tasks if t["name"] == "meterworker.query"]
    for t in queries:
        assert t["args"].startswith("(query=sessions, tick=20"), t["args"]
    for t in tasks:
        assert "specversion" not in (t["args"] or "") and len(t["args"] or "") < 100, t["args"]
