"""A real single-node VictoriaMetrics, run as a subprocess on a free loopback port.

It scrapes its targets itself (``-promscrape.config``, a Prometheus-style scrape
config) and answers the Prometheus query API at ``url`` (``/api/v1/query``,
``/api/v1/query_range``, ...), so the same query helpers as PrometheusServer apply.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from .ports import HOST, free_port
from .prometheus import PrometheusError, PromQLApi

INSTALL_HINT = (
    "Run the tests with bin/test, which installs it (Debian package 'victoria-metrics'), "
    "or install it yourself (apt-get install victoria-metrics) or set VICTORIA_METRICS_BIN."
)

# Flags that make VictoriaMetrics answer like a Prometheus that has every sample it
# scraped, which is what tests comparing windows against raw samples need
# (each one checked against `victoria-metrics -help` of Debian's 1.79.5):
QUERY_FLAGS = (
    # No rollup-result cache. This also turns off query_range's rounding of start/end to
    # a multiple of step (promql.AdjustStartEnd returns them unchanged under this flag;
    # otherwise ranges of >= 50 points are aligned so the cache can be reused), so the
    # timestamps asked for are the timestamps answered.
    "-search.disableCache",
    # Default 30s: an instant query at "now" is evaluated at now-30s and the last 30s of
    # a query_range are replaced by earlier points ("incomplete last points"). A test that
    # scrapes every 1s and queries right away wants the newest sample.
    "-search.latencyOffset=0s",
)


def find_victoria_metrics(binary: str | None = None) -> str:
    """`binary`, else $VICTORIA_METRICS_BIN, else `victoria-metrics` on PATH, else /usr/bin/victoria-metrics."""
    for candidate, origin in (
        (binary, "binary argument"),
        (os.environ.get("VICTORIA_METRICS_BIN"), "VICTORIA_METRICS_BIN"),
    ):
        if candidate:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
            raise RuntimeError(
                f"VictoriaMetrics binary {candidate!r} (from {origin}) is not executable. {INSTALL_HINT}")
    found = shutil.which("victoria-metrics")
    if found:
        return found
    if os.access("/usr/bin/victoria-metrics", os.X_OK):
        return "/usr/bin/victoria-metrics"
    raise RuntimeError(f"victoria-metrics was not found (not on PATH, VICTORIA_METRICS_BIN unset). {INSTALL_HINT}")


class VictoriaMetricsServer(PromQLApi):
    """Single-node VictoriaMetrics scraping `targets` ("host:port") as job "mw".

    Like PrometheusServer: honor_labels is on (the exporter's ``instance="<customer>"``
    is what queries see), `scrape_interval` defaults to 1s, and query(), query_range(),
    values() and wait_for() speak the Prometheus API at ``url``. ``wait_for_scrape()``
    blocks until every target has been scraped (``up == 1``); wait_for() and flush() make
    new series searchable at once instead of after VictoriaMetrics' ~10s index flush. The flags in QUERY_FLAGS
    (no result cache, no query_range alignment, no 30s latency offset) are given unless `query_flags`
    replaces them (``query_flags=()``: VictoriaMetrics as it comes out of the box); `extra_flags` adds more. stop() then start() restarts it on the same port and data
    directory; close() (or leaving the ``with`` block) stops it and removes the temp dir.
    """

    def __init__(
        self,
        targets: Sequence[str],
        scrape_interval: str = "1s",
        binary: str | None = None,
        *,
        port: int | None = None,
        extra_flags: Sequence[str] = (),
        query_flags: Sequence[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.binary = find_victoria_metrics(binary)
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.extra_flags = list(extra_flags)
        self.query_flags = list(QUERY_FLAGS if query_flags is None else query_flags)
        self.startup_timeout = startup_timeout
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mw-victoria-metrics-"))
        self.config_path = self.dir / "scrape.yml"
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "victoria-metrics.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; the Prometheus API is under ``/api/v1/``."""
        return f"http://{HOST}:{self.port}"

    @property
    def command(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr={HOST}:{self.port}",
            f"-storageDataPath={self.data_dir}",
            f"-promscrape.config={self.config_path}",
            *self.query_flags,
            *self.extra_flags,
        ]

    def _write_config(self) -> None:
        # JSON is YAML: no YAML library needed.
        config = {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval},
            "scrape_configs": [
                {"job_name": "mw", "honor_labels": True, "static_configs": [{"targets": self.targets}]}
            ],
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> "VictoriaMetricsServer":
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
                    f"victoria-metrics exited with code {self.process.returncode} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"victoria-metrics not ready on {self.url} after {self.startup_timeout}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (VictoriaMetrics flushes its data), wait, SIGKILL after `timeout` s."""
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
        """Rewrite the target list; a running server re-reads it on SIGHUP."""
        self.targets = list(targets)
        self._write_config()
        if self.running:
            self.process.send_signal(signal.SIGHUP)

    def flush(self) -> None:
        """GET /internal/force_flush: make everything ingested so far searchable now.

        Without it a *new* series stays invisible to queries for up to ~10s (1.79 flushes
        its in-memory index parts that rarely); samples of known series show up within ~1s
        of their scrape either way."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as r:
            r.read()

    def wait_for(self, promql: str, timeout: float = 30.0, interval: float = 0.2) -> list:
        """Query until the result is non-empty, flush()ing before each try; return the result.
        Raises TimeoutError (with the last answer or error) after `timeout` s."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                self.flush()
                result = self.query(promql)["result"]
                if result:
                    return result
                last = result
            except (PrometheusError, OSError) as e:
                last = e
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} still empty after {timeout}s on {self.url} (last: {last!r})")
            time.sleep(interval)

    def wait_for_scrape(self, timeout: float = 15.0) -> list:
        """Block until every target has been scraped successfully (``up == 1``) and its
        series are searchable; returns the ``up`` series. About 1.5s after start()."""
        return self.wait_for(f'up{{job="mw"}} == 1 and on() count(up{{job="mw"}} == 1) >= {len(self.targets)}',
                             timeout=timeout, interval=0.1)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "VictoriaMetricsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
