"""The machine's RabbitMQ (bin/test makes sure one answers on 127.0.0.1:5672), and a vhost
of a test's own so that tests never share queues, exchanges or messages."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from urllib.parse import quote

from .ports import HOST

AMQP_PORT = 5672
AMQP_URL = f"amqp://guest:guest@{HOST}:{AMQP_PORT}//"  # "//": the default vhost "/"


def amqp_answers(host: str = HOST, port: int = AMQP_PORT, timeout: float = 2.0) -> bool:
    """True when an AMQP 0-9-1 broker answers the protocol header with Connection.Start
    (a method frame, type 1), not merely when the port is open."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(1) == b"\x01"
    except OSError:
        return False


def rabbitmqctl_binary() -> str | None:
    """rabbitmqctl on PATH, else Debian's /usr/sbin/rabbitmqctl (not on a user's PATH), else None."""
    found = shutil.which("rabbitmqctl")
    if found:
        return found
    return "/usr/sbin/rabbitmqctl" if os.access("/usr/sbin/rabbitmqctl", os.X_OK) else None


def _ctl(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([rabbitmqctl_binary() or "rabbitmqctl", "-q", *args],
                          capture_output=True, text=True, timeout=timeout)


class RabbitVhost:
    """A vhost `name` (default ``mw-test-<random>``) on the local broker for `user` (guest),
    made with rabbitmqctl and deleted, with everything in it, on close().

    When rabbitmqctl is missing or refuses (not root, no Erlang cookie), it falls back to
    the default vhost: ``isolated`` is then False and tests should name their queues
    with ``queue(...)``, which prefixes them with the same unique ``prefix`` either way.
    ``url`` is the AMQP URL of the vhost (the vhost URL-quoted, as kombu wants it).
    """

    def __init__(self, name: str | None = None, *, user: str = "guest", password: str = "guest",
                 host: str = HOST, port: int = AMQP_PORT) -> None:
        self.prefix = f"mw-test-{uuid.uuid4().hex[:10]}"
        self.name = name or self.prefix
        self.user, self.password, self.host, self.port = user, password, host, port
        self.isolated = False
        self.problem: str | None = None  # why it fell back to "/", when it did

    @property
    def vhost(self) -> str:
        return self.name if self.isolated else "/"

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@{self.host}:{self.port}/{quote(self.vhost, safe='')}"

    def queue(self, name: str) -> str:
        """A queue name unique to this test: ``<prefix>.<name>``."""
        return f"{self.prefix}.{name}"

    def create(self) -> "RabbitVhost":
        if rabbitmqctl_binary() is None:
            self.problem = "rabbitmqctl not installed"
            return self
        try:
            for args in (("add_vhost", self.name),
                         ("set_permissions", "-p", self.name, self.user, ".*", ".*", ".*")):
                done = _ctl(*args)
                if done.returncode != 0:
                    self.problem = f"rabbitmqctl {' '.join(args)}: {(done.stderr or done.stdout).strip()}"
                    self.delete()
                    return self
        except (OSError, subprocess.TimeoutExpired) as e:
            self.problem = f"rabbitmqctl: {e}"
            return self
        self.isolated = True
        return self

    def delete(self) -> None:
        """Delete the vhost (its queues, exchanges and messages go with it)."""
        if rabbitmqctl_binary() is not None:
            try:
                _ctl("delete_vhost", self.name)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.isolated = False

    def __enter__(self) -> "RabbitVhost":
        return self.create()

    def __exit__(self, *exc: object) -> None:
        if self.isolated:
            self.delete()
