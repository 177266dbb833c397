"""A real Prometheus server, run as a subprocess on a free loopback port."""

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

INSTALL_HINT = (
    "Run the tests with bin/test, which installs it (Debian package 'prometheus'), "
    "or install it yourself (apt-get install prometheus) or set PROMETHEUS_BIN."
)


def find_prometheus(binary: str | None = None) -> str:
    """`binary`, else $PROMETHEUS_BIN, else `prometheus` on PATH, else /usr/bin/prometheus."""
    for candidate, origin in (
        (binary, "binary argument"),
        (os.environ.get("PROMETHEUS_BIN"), "PROMETHEUS_BIN"),
    ):
        if candidate:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            raise RuntimeError(f"Prometheus binary {candidate!r} (from {origin}) is not an executable file. {INSTALL_HINT}")
    found = shutil.which("prometheus")
    if found:
        return found
    if os.access("/usr/bin/prometheus", os.X_OK):
        return "/usr/bin/prometheus"
    raise RuntimeError(f"The Prometheus server binary was not found (not on PATH, PROMETHEUS_BIN unset). {INSTALL_HINT}")


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

    def wait_for(self, promql: str, timeout: float = 30.0, interval: float = 0.2) -> list:
        """Query until the result is non-empty; return the result list.
        Raises TimeoutError (with the last answer or error) after `timeout` s."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                result = self.query(promql)["result"]
                if result:
                    return result
                last = result
            except (PrometheusError, OSError) as e:
                last = e
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} still empty after {timeout}s on {self.url} (last: {last!r})")
            time.sleep(interval)


class PrometheusServer(PromQLApi):
    """Prometheus scraping `targets` ("host:port") as job "mw".

    The exposed ``instance`` label of a target's series is kept (honor_labels),
    so the exporter's ``instance="<customer>"`` is what queries see.
    Prometheus applies a new scrape config only every 5s, so the first scrape
    lands about 5s after start(): use wait_for() before expecting data.
    stop() then start() restarts it on the same port and data directory;
    close() (or leaving the ``with`` block) stops it and removes the temp dir.
    """

    def __init__(
        self,
        targets: Sequence[str],
        scrape_interval: str = "1s",
        binary: str | None = None,
        *,
        evaluation_interval: str | None = None,
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.binary = find_prometheus(binary)
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.startup_timeout = startup_timeout
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mw-prometheus-"))
        self.config_path = self.dir / "prometheus.yml"
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _write_config(self) -> None:
        # JSON is YAML: no YAML library needed.
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
                "scrape_timeout": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": "mw",
                    "honor_labels": True,
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> "PrometheusServer":
        if self.process is not None and self.process.poll() is None:
            return self
        cmd = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={HOST}:{self.port}",
            "--web.enable-lifecycle",
        ]
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with code {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"prometheus not ready on {self.url} after {self.startup_timeout}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

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
        """Rewrite the target list; a running server reloads it (POST /-/reload)."""
        self.targets = list(targets)
        self._write_config()
        if self.running:
            self._request("/-/reload", {})

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
