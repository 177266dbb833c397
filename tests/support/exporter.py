"""A Prometheus exporter whose numbers are known in advance.

Exposed at ``/metrics`` (text exposition format 0.0.4):

* ``mw_requests_total{customer="<c>",instance="<c>"}`` — a counter growing at
  ``rates[c]`` per second since the exporter started: value = rate * elapsed,
  computed at scrape time, so ``rate()`` is ``rates[c]`` and ``increase(...[W])``
  is ``rates[c] * W`` (up to Prometheus' extrapolation at the window edges).
* ``mw_active_sessions{customer="<c>",instance="<c>"}`` — a gauge with the fixed
  value ``sessions[c]``.
* ``mw_burst_total{series="<i>",instance="burst-<i>"}`` for i in 0..n-1 after
  ``set_extra_series(n)`` — counters growing at ``burst_rate`` per second, for
  bursts and benchmarks.

Every series carries an ``instance`` label, which Prometheus keeps (it is
exposed, so it wins over the target's address unless honor_labels is off —
then it appears as ``exported_instance``; ``PrometheusServer`` sets
honor_labels so queries see ``instance="<c>"``).
"""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from typing import Mapping

from .metrics_http import serve
from .ports import HOST

DEFAULT_RATES: dict[str, float] = {"acme": 2.0, "globex": 0.5, "initech": 10.0}
DEFAULT_SESSIONS: dict[str, float] = {"acme": 3.0, "globex": 7.0, "initech": 12.0}



def _fmt(value: float) -> str:
    return repr(float(value))


class CounterExporter:
    """Threaded HTTP exporter on 127.0.0.1 serving counters with known values.

    ``rates`` maps customer -> requests per second; ``sessions`` maps
    customer -> gauge value (default 1.0 for a customer it does not name).
    """

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        sessions: Mapping[str, float] | None = None,
        *,
        burst_rate: float = 1.0,
        port: int = 0,
    ) -> None:
        self.rates: dict[str, float] = dict(DEFAULT_RATES if rates is None else rates)
        given = DEFAULT_SESSIONS if sessions is None else sessions
        self.sessions: dict[str, float] = {c: float(given.get(c, 1.0)) for c in self.rates}
        self.burst_rate = float(burst_rate)
        self.started_at: float | None = None  # wall clock (time.time()) of the first start()
        self.scrapes = 0
        self._extra = 0
        self._port = port
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- the known numbers -------------------------------------------------

    @property
    def customers(self) -> list[str]:
        return list(self.rates)

    def elapsed(self, at: float | None = None) -> float:
        """Seconds between the exporter's start and `at` (default: now)."""
        if self.started_at is None:
            raise RuntimeError("exporter not started")
        return max(0.0, (time.time() if at is None else at) - self.started_at)

    def counter_value(self, customer: str, at: float | None = None) -> float:
        """What ``mw_requests_total{customer=...}`` reads at wall-clock time `at`."""
        return self.rates[customer] * self.elapsed(at)

    def expected_increase(self, customer: str, seconds: float) -> float:
        """What the counter grows by over any `seconds`-long window."""
        return self.rates[customer] * seconds

    def set_extra_series(self, n: int) -> None:
        """Expose `n` extra ``mw_burst_total`` series (0 removes them)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._extra = n

    @property
    def extra_series(self) -> int:
        return self._extra

    def render(self, at: float | None = None) -> str:
        """The exposition text a scrape at `at` would get."""
        now = time.time() if at is None else at
        elapsed = self.elapsed(now)
        with self._lock:
            extra = self._extra
        lines = [
            "# HELP mw_requests_total Requests served, per customer (known rate).",
            "# TYPE mw_requests_total counter",
        ]
        for c, rate in self.rates.items():
            lines.append(f'mw_requests_total{{customer="{c}",instance="{c}"}} {_fmt(rate * elapsed)}')
        lines += [
            "# HELP mw_active_sessions Active sessions, per customer (fixed value).",
            "# TYPE mw_active_sessions gauge",
        ]
        for c in self.rates:
            lines.append(f'mw_active_sessions{{customer="{c}",instance="{c}"}} {_fmt(self.sessions[c])}')
        if extra:
            lines += [
                "# HELP mw_burst_total Synthetic series for bursts and benchmarks.",
                "# TYPE mw_burst_total counter",
            ]
            value = _fmt(self.burst_rate * elapsed)
            for i in range(extra):
                lines.append(f'mw_burst_total{{series="{i}",instance="burst-{i}"}} {value}')
        return "\n".join(lines) + "\n"

    # -- server ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None and not self._port:
            raise RuntimeError("exporter not started")
        return self._port

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT``, the scrape target."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The full ``/metrics`` URL."""
        return f"http://{self.host_port}/metrics"

    def start(self) -> "CounterExporter":
        """Start serving. After stop(), start() again serves on the same port and
        the counters go on from the first start (no counter reset)."""
        if self._server is not None:
            return self
        if self.started_at is None:
            self.started_at = time.time()
        server, self._thread = serve(self._port, self._answer)
        self._port = server.server_address[1]
        self._server = server
        return self

    def _answer(self, path: str) -> tuple[int, bytes]:
        if path != "/metrics":
            return 404, b"not found\n"
        body = self.render().encode()
        with self._lock:
            self.scrapes += 1
        return 200, body

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "CounterExporter":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
