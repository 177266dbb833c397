"""A real single-node VictoriaMetrics, run as a subprocess on a free loopback port.

It scrapes its targets itself (``-promscrape.config``, a Prometheus-style scrape
config) and answers the Prometheus query API at ``url`` (``/api/v1/query``,
``/api/v1/query_range``, ...), so the same query helpers as PrometheusServer apply.
"""

from __future__ import annotations

import signal
import urllib.request
from typing import Sequence

from .ports import HOST
from .promql_server import ScrapingServer, find_binary

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
    return find_binary("victoria-metrics", "VICTORIA_METRICS_BIN", INSTALL_HINT, binary)


class VictoriaMetricsServer(ScrapingServer):
    """Single-node VictoriaMetrics scraping `targets` ("host:port") as job "mw" (see ScrapingServer).

    ``wait_for_scrape()`` blocks until every target has been scraped (``up == 1``); wait_for() flushes
    before each try, so that new series are searchable at once instead of after VictoriaMetrics' ~10s index
    flush. The flags in QUERY_FLAGS (no result cache, no query_range alignment, no 30s latency offset) are
    given unless `query_flags` replaces them (``query_flags=()``: VictoriaMetrics as it comes out of the box);
    `extra_flags` adds more.
    """

    name = "victoria-metrics"
    ready_path = "/health"

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
        self.extra_flags = list(extra_flags)
        self.query_flags = list(QUERY_FLAGS if query_flags is None else query_flags)
        super().__init__(find_victoria_metrics(binary), targets, scrape_interval, port=port,
                         startup_timeout=startup_timeout)

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

    def _reload(self) -> None:
        """VictoriaMetrics re-reads its scrape config on SIGHUP."""
        self.process.send_signal(signal.SIGHUP)

    def flush(self) -> None:
        """GET /internal/force_flush: make everything ingested so far searchable now.

        Without it a *new* series stays invisible to queries for up to ~10s (1.79 flushes
        its in-memory index parts that rarely); samples of known series show up within ~1s
        of their scrape either way."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as r:
            r.read()

    def _before_query(self) -> None:
        self.flush()

    def wait_for_scrape(self, timeout: float = 15.0) -> list:
        """Block until every target has been scraped successfully (``up == 1``) and its
        series are searchable; returns the ``up`` series. About 1.5s after start()."""
        return self.wait_for(f'up{{job="mw"}} == 1 and on() count(up{{job="mw"}} == 1) >= {len(self.targets)}',
                             timeout=timeout, interval=0.1)
