"""A server speaking Prometheus' query API that scrapes targets itself, run as a subprocess on a free loopback
port: the common part of PrometheusServer and VictoriaMetricsServer (lifecycle, scrape config, log, queries)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

from .ports import HOST, free_port


def find_binary(name: str, env_var: str, install_hint: str, binary: str | None = None) -> str:
    """`binary`, else $`env_var`, else `name` on PATH, else /usr/bin/`name`."""
    for candidate, origin in ((binary, "binary argument"), (os.environ.get(env_var), env_var)):
        if candidate:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            raise RuntimeError(f"{name} binary {candidate!r} (from {origin}) is not an executable file. {install_hint}")
    found = shutil.which(name)
    if found:
        return found
    if os.access(f"/usr/bin/{name}", os.X_OK):
        return f"/usr/bin/{name}"
    raise RuntimeError(f"{name} was not found (not on PATH, {env_var} unset). {install_hint}")


class PrometheusError(RuntimeError):
    """Prometheus answered a query with an error."""


class PromQLApi:
    """The Prometheus HTTP query API (/api/v1/query, /api/v1/query_range) of the server at
    ``self.url``; shared by PrometheusServer and VictoriaMetricsServer, which speaks the same API."""

    url: str

    def _request(self, path: str, form: dict[str, str], timeout: float = 10.0) -> bytes:
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                err = json.loads(body)
                msg = f"{err.get('errorType')}: {err.get('error')}"
            except ValueError:
                msg = body.decode(errors="replace")
            raise PrometheusError(f"{path} {form!r} -> HTTP {e.code}: {msg}") from None

    def _api(self, path: str, form: dict[str, str]) -> dict:
        payload = json.loads(self._request(path, form))
        if payload.get("status") != "success":
            raise PrometheusError(f"{path} {form!r}: {payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def query(self, promql: str, time: float | None = None) -> dict:
        """POST /api/v1/query; returns the response's ``data``
        (``{"resultType": ..., "result": [...]}``). `time` is a Unix timestamp."""
        form = {"query": promql}
        if time is not None:
            form["time"] = repr(float(time))
        return self._api("/api/v1/query", form)

    def query_range(self, promql: str, start: float, end: float, step: float | str) -> dict:
        """POST /api/v1/query_range; returns the response's ``data``."""
        return self._api(
            "/api/v1/query_range",
            {"query": promql, "start": repr(float(start)), "end": repr(float(end)), "step": str(step)},
        )

    def values(self, promql: str, time: float | None = None, label: str = "instance") -> dict[str, float]:
        """An instant vector as {series[label]: value}."""
        return {s["metric"].get(label, ""): float(s["value"][1]) for s in self.query(promql, time)["result"]}

    def history_since(self, metric: str, timeout: float = 30.0) -> float:
        """When the server's first sample of `metric` (in the last hour) was scraped; waits for one first."""
        self.wait_for(metric, timeout)
        return min(float(s["values"][0][0]) for s in self.query(f"{metric}[1h]", time.time())["result"])

    def _before_query(self) -> None:
        """What wait_for() does before each try (a server that indexes new series late flushes here)."""

    def wait_for(self, promql: str, timeout: float = 30.0, interval: float = 0.2) -> list:
        """Query until the result is non-empty; return the result list.
        Raises TimeoutError (with the last answer or error) after `timeout` s."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                self._before_query()
                result = self.query(promql)["result"]
                if result:
                    return result
                last = result
            except (PrometheusError, OSError) as e:
                last = e
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} still empty after {timeout}s on {self.url} (last: {last!r})")
            time.sleep(interval)


class ScrapingServer(PromQLApi):
    """The server binary scraping `targets` ("host:port") as job "mw", with honor_labels (the exporter's
    ``instance="<customer>"`` is what queries see). stop() then start() restarts it on the same port and data
    directory; close() (or leaving the ``with`` block) stops it and removes the temp dir. A subclass names
    itself, gives its command line, its readiness path and how it reloads its targets."""

    name: str
    ready_path: str
    config_name = "scrape.yml"

    def __init__(self, binary: str, targets: Sequence[str], scrape_interval: str, *, port: int | None,
                 startup_timeout: float) -> None:
        self.binary = binary
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.startup_timeout = startup_timeout
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"mw-{self.name}-"))
        self.config_path = self.dir / self.config_name
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; the Prometheus API is under ``/api/v1/``."""
        return f"http://{HOST}:{self.port}"

    @property
    def command(self) -> list[str]:
        raise NotImplementedError

    def _global_config(self) -> dict:
        return {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval}

    def _write_config(self) -> None:
        # JSON is YAML: no YAML library needed.
        config = {
            "global": self._global_config(),
            "scrape_configs": [
                {"job_name": "mw", "honor_labels": True, "static_configs": [{"targets": self.targets}]}
            ],
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _reload(self) -> None:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------

    def start(self):
        if self.running:
            return self
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} not ready on {self.url} after {self.startup_timeout}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate (SIGTERM), wait, SIGKILL if it does not exit in `timeout` s."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def close(self) -> None:
        """stop() and remove the temp dir (config, data, log)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def set_targets(self, targets: Sequence[str]) -> None:
        """Rewrite the target list; a running server reloads it."""
        self.targets = list(targets)
        self._write_config()
        if self.running:
            self._reload()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
