"""An exporter of integer counters the test drives: it knows every increment it made, can fail its
scrapes (HTTP 500), restart from zero (a counter reset) and grow new series while running.

``mw_calls_total{customer="<c>",instance="<c>"}`` grows by ``step[c]`` every ``tick`` seconds (from a thread
of its own, so Prometheus sees a few increments between two scrapes)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

from .metrics_http import serve
from .ports import HOST


class IntegerCounters:
    def __init__(self, steps: dict[str, int], *, initial: dict[str, int] | None = None, tick: float = 0.1,
                 frozen: bool = False, port: int = 0) -> None:
        self.steps = dict(steps)
        self.tick = tick
        self.values: dict[str, int] = {c: (initial or {}).get(c, 0) for c in self.steps}
        self.increments: dict[str, int] = {c: 0 for c in self.steps}  # what each counter grew by, all restarts included
        self.frozen = frozen  # no increments while set
        self.failing = False  # scrapes get HTTP 500 while set
        self.restarts = 0
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- what the test drives -----------------------------------------------------------------------

    def add_series(self, customer: str, step: int) -> None:
        with self._lock:
            self.steps[customer] = step
            self.values[customer] = 0
            self.increments[customer] = 0

    def restart(self) -> None:
        """Every counter starts again from zero, as after a process restart."""
        with self._lock:
            self.values = {c: 0 for c in self.steps}
            self.restarts += 1

    def grown(self) -> dict[str, int]:
        with self._lock:
            return dict(self.increments)

    def render(self) -> str:
        with self._lock:
            lines = ["# TYPE mw_calls_total counter"]
            lines += [f'mw_calls_total{{customer="{c}",instance="{c}"}} {v}' for c, v in self.values.items()]
        return "\n".join(lines) + "\n"

    # -- server -------------------------------------------------------------------------------------

    @property
    def host_port(self) -> str:
        return f"{HOST}:{self._port}"

    def _grow(self) -> None:
        while not self._stop.wait(self.tick):
            with self._lock:
                if self.frozen:
                    continue
                for c, step in self.steps.items():
                    self.values[c] += step
                    self.increments[c] += step

    def start(self) -> "IntegerCounters":
        self._server, serving = serve(self._port, self._answer)
        self._port = self._server.server_address[1]
        self._threads = [serving, threading.Thread(target=self._grow, daemon=True)]
        self._threads[1].start()
        return self

    def _answer(self, path: str) -> tuple[int, bytes]:
        if self.failing:
            return 500, b"failing on purpose\n"
        return 200, self.render().encode()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> "IntegerCounters":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
