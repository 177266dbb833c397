"""Running meterworker's own commands as separate processes, the way a user does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml


def write_config(path: Path, prometheus_url: str, sink_url: str, queries: list[dict], *,
                 schedule: str = "@every 2s", offset: str = "2s", redis_url: str | None = None,
                 name: str = "e2e", http: dict | None = None, extra: dict | None = None) -> Path:
    cfg = {
        "meterworker": {"name": name, **({"redis_url": redis_url} if redis_url else {})},
        "input": {"prometheus": {"url": prometheus_url, "schedule": schedule, "query_offset": offset,
                                 "queries": [{"query": q} for q in queries]}},
        "output": {"http_client": {"url": f"{sink_url}/api/v1/events", **(http or {})}},
    }
    for key, value in (extra or {}).items():
        cfg.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def meterworker(*args: str) -> list[str]:
    return [sys.executable, "-m", "meterworker.cli", *args]


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "meterworker", *args]


class Proc:
    """A background process whose output goes to a log file the test can show."""

    def __init__(self, cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None):
        self.log = log
        self._fh = open(log, "wb")
        self.p = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT,
                                  env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, timeout: float = 30) -> int:
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
            return -9
        finally:
            self._fh.close()

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
        self._fh.close()


def wait_until(predicate, timeout: float, what: str, proc: Proc | None = None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            tail = "\n" + proc.output()[-4000:] if proc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")
        time.sleep(interval)
