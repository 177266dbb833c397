"""A real Prometheus server, run as a subprocess on a free loopback port."""

from __future__ import annotations

from typing import Sequence

from .ports import HOST
from .promql_server import PrometheusError, PromQLApi, ScrapingServer, find_binary

__all__ = ["PrometheusError", "PromQLApi", "PrometheusServer", "find_prometheus"]

INSTALL_HINT = (
    "Run the tests with bin/test, which installs it (Debian package 'prometheus'), "
    "or install it yourself (apt-get install prometheus) or set PROMETHEUS_BIN."
)


def find_prometheus(binary: str | None = None) -> str:
    """`binary`, else $PROMETHEUS_BIN, else `prometheus` on PATH, else /usr/bin/prometheus."""
    return find_binary("prometheus", "PROMETHEUS_BIN", INSTALL_HINT, binary)


class PrometheusServer(ScrapingServer):
    """Prometheus scraping `targets` ("host:port") as job "mw" (see ScrapingServer).

    Prometheus applies a new scrape config only every 5s, so the first scrape
    lands about 5s after start(): use wait_for() before expecting data.
    """

    name = "prometheus"
    ready_path = "/-/ready"
    config_name = "prometheus.yml"

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
        self.evaluation_interval = evaluation_interval or scrape_interval
        super().__init__(find_prometheus(binary), targets, scrape_interval, port=port,
                         startup_timeout=startup_timeout)

    @property
    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={HOST}:{self.port}",
            "--web.enable-lifecycle",
        ]

    def _global_config(self) -> dict:
        return {**super()._global_config(), "evaluation_interval": self.evaluation_interval}

    def _reload(self) -> None:
        self._request("/-/reload", {})
