"""A Redis Sentinel deployment on loopback: a primary, replicas and three sentinels.

Every process is a real redis-server / redis-sentinel (the system's, see
redis_server.system_redis_binary) on a free 127.0.0.1 port, with its config, data and
log in a temp dir. Fail-overs are real: SENTINEL FAILOVER, or SIGKILL of the primary
and the sentinels' own election after `down_after_ms`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from .ports import HOST, free_port
from .redis_server import system_redis_binary

Address = tuple[str, int]


class SentinelCluster:
    """A primary, `replicas` replicas and `sentinels` sentinels monitoring `master_name`.

    The sentinels declare the primary down after `down_after_ms` without an answer
    (default 1000) and `quorum` of them (default 2) must agree before a fail-over;
    `failover_timeout_ms` (default 3000) bounds one fail-over attempt. start() returns
    once every sentinel knows every replica and the other sentinels, so a fail-over can
    start at once. No persistence, no passwords.

    Addresses are ``("127.0.0.1", port)`` tuples. ``with SentinelCluster() as c:`` starts
    it and stops every process and removes the temp dir on leaving.
    """

    def __init__(
        self,
        master_name: str = "mymaster",
        *,
        replicas: int = 1,
        sentinels: int = 3,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        startup_timeout: float = 20.0,
    ) -> None:
        self.master_name = master_name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.startup_timeout = startup_timeout
        self.server_binary = system_redis_binary("redis-server")
        self.sentinel_binary = system_redis_binary("redis-sentinel")
        self.dir = Path(tempfile.mkdtemp(prefix="mw-sentinel-"))
        self.node_ports = [free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.initial_primary: Address = (HOST, self.node_ports[0])
        self._procs: dict[int, subprocess.Popen] = {}  # port -> process, nodes and sentinels
        self._killed: list[int] = []
        self._last_primary: Address | None = None  # before the last failover() / kill_primary()

    # -- addresses --------------------------------------------------------------

    @property
    def sentinels(self) -> list[Address]:
        return [(HOST, p) for p in self.sentinel_ports]

    def sentinel_urls(self) -> list[str]:
        """``["sentinel://127.0.0.1:PORT", ...]``, one per sentinel: kombu's / Celery's form
        (join them with ";" for a broker_url, and set transport_options master_name)."""
        return [f"sentinel://{HOST}:{p}" for p in self.sentinel_ports]

    def primary_address(self) -> Address:
        """The primary as the first answering sentinel reports it (SENTINEL GET-MASTER-ADDR-BY-NAME)."""
        last: Exception | None = None
        for port in self.sentinel_ports:
            if not self._running(port):
                continue
            try:
                return self._sentinel_view(port)
            except redis.RedisError as e:
                last = e
        raise RuntimeError(f"no sentinel answers for {self.master_name!r} (last error: {last})")

    def primary_url(self, db: int = 0) -> str:
        host, port = self.primary_address()
        return f"redis://{host}:{port}/{db}"

    def replica_addresses(self) -> list[Address]:
        """Replicas of the current primary, as the sentinels list them (up or not)."""
        with self._client(self._answering_sentinel()) as s:
            return [(r["ip"], int(r["port"])) for r in s.sentinel_slaves(self.master_name)]

    # -- faults -------------------------------------------------------------------

    def failover(self) -> Address:
        """SENTINEL FAILOVER: a sentinel promotes a replica without waiting for agreement.
        Returns the primary before it; wait_for_new_primary() waits for the switch."""
        self._last_primary = self.primary_address()
        with self._client(self._answering_sentinel()) as s:
            s.execute_command("SENTINEL", "FAILOVER", self.master_name)
        return self._last_primary

    def kill_primary(self) -> Address:
        """SIGKILL the current primary's redis-server; returns its address. The sentinels
        notice after down_after_ms and elect a new one (wait_for_new_primary())."""
        self._last_primary = self.primary_address()
        port = self._last_primary[1]
        proc = self._procs.get(port)
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"the primary {self._last_primary} is not a process of this cluster")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self._killed.append(port)
        return self._last_primary

    def wait_for_new_primary(self, timeout: float = 20.0, old: Address | None = None) -> Address:
        """Block until every running sentinel names the same primary other than `old`
        (default: the one before the last failover() or kill_primary()) and that server
        says it is a master; return its address."""
        old = old or self._last_primary
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                views = {self._sentinel_view(p) for p in self.sentinel_ports if self._running(p)}
                if len(views) == 1:
                    (addr,) = views
                    if addr != old and self._role(addr) == "master":
                        return addr
                last = views
            except redis.RedisError as e:
                last = e
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new primary (old {old}) after {timeout}s; sentinels said {last!r}\n"
                                   + self.log_tail())
            time.sleep(0.1)

    def restart_killed(self, timeout: float = 10.0) -> list[Address]:
        """Start again, on their ports and empty, the servers kill_primary() killed; the
        sentinels turn them into replicas of the current primary. Returns their addresses."""
        ports, self._killed = self._killed, []
        for port in ports:
            self._start_node(port, replica_of=None)
        for port in ports:
            self._wait_ping(port, timeout)
        return [(HOST, p) for p in ports]

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> "SentinelCluster":
        try:
            primary = self.node_ports[0]
            self._start_node(primary, replica_of=None)
            self._wait_ping(primary, self.startup_timeout)
            for port in self.node_ports[1:]:
                self._start_node(port, replica_of=primary)
            # Replicas in sync before the sentinels look: a sentinel that first sees a replica
            # still syncing reports its link down until its next INFO, 10s later.
            self._wait_synced()
            for port in self.sentinel_ports:
                self._start_sentinel(port)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM every process (sentinels first, so they do not fail over), SIGKILL stragglers."""
        order = [p for p in self.sentinel_ports + self.node_ports if p in self._procs]
        for port in order:
            if self._procs[port].poll() is None:
                self._procs[port].terminate()
        for port in order:
            proc = self._procs.pop(port)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        """stop() and remove the temp dir."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "SentinelCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.dir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    # -- internals ------------------------------------------------------------------

    def _running(self, port: int) -> bool:
        proc = self._procs.get(port)
        return proc is not None and proc.poll() is None

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(HOST, port, socket_connect_timeout=1, socket_timeout=2, decode_responses=True)

    def _answering_sentinel(self) -> int:
        for port in self.sentinel_ports:
            if self._running(port):
                return port
        raise RuntimeError("no sentinel is running")

    def _sentinel_view(self, port: int) -> Address:
        with self._client(port) as s:
            host, p = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        return (host, int(p))

    def _role(self, addr: Address) -> str | None:
        try:
            with redis.Redis(addr[0], addr[1], socket_connect_timeout=1, socket_timeout=2) as r:
                return r.info("replication").get("role")
        except redis.RedisError:
            return None

    def _spawn(self, port: int, cmd: list[str], name: str) -> None:
        with open(self.dir / f"{name}-{port}.log", "ab") as log:
            self._procs[port] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                                 stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)

    def _start_node(self, port: int, replica_of: int | None) -> None:
        data = self.dir / f"node-{port}"
        data.mkdir(exist_ok=True)
        cmd = [self.server_binary, "--port", str(port), "--bind", HOST, "--dir", str(data),
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               # Redis 7 syncs a new replica disk-less after a 5s delay by default.
               "--repl-diskless-sync-delay", "0"]
        if replica_of is not None:
            cmd += ["--replicaof", HOST, str(replica_of)]
        self._spawn(port, cmd, "redis")

    def _start_sentinel(self, port: int) -> None:
        # Sentinels rewrite their config file (state, the other sentinels): one each.
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\n"
            f"bind {HOST}\n"
            f"dir {self.dir}\n"
            "daemonize no\n"
            f"sentinel monitor {self.master_name} {HOST} {self.node_ports[0]} {self.quorum}\n"
            f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.master_name} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {self.master_name} 1\n"
        )
        self._spawn(port, [self.sentinel_binary, str(conf)], "sentinel")

    def _wait_ping(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self._running(port):
                raise RuntimeError(f"process on port {port} exited while starting\n{self.log_tail()}")
            try:
                with self._client(port) as r:
                    if r.ping():
                        return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on port {port} after {timeout}s\n{self.log_tail()}")
            time.sleep(0.05)

    def _wait_synced(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            for port in self.node_ports:
                if not self._running(port):
                    raise RuntimeError(f"redis-server on port {port} exited while starting\n{self.log_tail()}")
            try:
                if all(self._replica_synced(p) for p in self.node_ports[1:]):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas not in sync after {self.startup_timeout}s\n{self.log_tail()}")
            time.sleep(0.05)

    def _wait_ready(self) -> None:
        """Every replica in sync, every sentinel seeing every replica and the other sentinels."""
        n_replicas, n_sentinels = len(self.node_ports) - 1, len(self.sentinel_ports)
        deadline = time.monotonic() + self.startup_timeout
        last: object = None
        while True:
            for port in self.node_ports + self.sentinel_ports:
                if not self._running(port):
                    raise RuntimeError(f"process on port {port} exited while starting\n{self.log_tail()}")
            try:
                ready = all(self._replica_synced(p) for p in self.node_ports[1:])
                last = "replicas not in sync"
                for port in self.sentinel_ports if ready else ():
                    with self._client(port) as s:
                        master = s.sentinel_master(self.master_name)
                        replicas = s.sentinel_slaves(self.master_name)
                    ok = [r for r in replicas if r.get("master-link-status") == "ok" and r.get("is_slave")
                          and not r.get("is_disconnected")]
                    last = {"sentinel": port, "replicas ok": len(ok),
                            "other sentinels": master.get("num-other-sentinels")}
                    if len(ok) < n_replicas or int(master.get("num-other-sentinels", 0)) < n_sentinels - 1:
                        ready = False
                        break
                if ready:
                    return
            except redis.RedisError as e:
                last = e
            if time.monotonic() > deadline:
                raise RuntimeError(f"sentinel cluster not ready after {self.startup_timeout}s ({last!r})\n"
                                   + self.log_tail())
            time.sleep(0.1)

    def _replica_synced(self, port: int) -> bool:
        with self._client(port) as r:
            info = r.info("replication")
        return info.get("role") == "slave" and info.get("master_link_status") == "up"
