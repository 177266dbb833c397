"""A backfill shows its progress on stderr, stops cleanly on Ctrl-C (SIGINT) with one line saying how to continue,
and the same command run again continues and sends nothing twice: in this process and through real workers,
against the sink-like fake, counting ids."""

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter

from tests.support.mwproc import Proc, meterworker, wait_until, write_config
from tests.test_hostile import fake, vector  # noqa: F401 (fake: the fixture)

CLOCK = [{"name": "clock", "promql": 'label_replace(vector(time()), "instance", "clock", "", "")'}]
PROGRESS = re.compile(r"backfill: ([\d,]+)/([\d,]+) ticks \(\d+%\), ([\d,]+) events delivered, [\d,]+ events/s, "
                      r"(ETA \S+|done)")


def start_backfill(cfg, start, end, *extra) -> subprocess.Popen:
    return subprocess.Popen(meterworker("backfill", "-c", str(cfg), "--from", str(start), "--to", str(end), *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt_once(proc, sink, events: int, what):
    wait_until(lambda: len(sink.events) >= events or proc.poll() is not None, 30, what)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, err


def check_exactly_once(sink, ticks: int):
    ids = Counter(e["id"] for e in sink.events)
    assert len(ids) == ticks and max(ids.values()) == 1, (len(ids), ticks, ids.most_common(3))


def test_inline_backfill_stops_on_ctrl_c_and_the_same_command_continues(tmp_path, prometheus, sink, redis_url):
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url, CLOCK, schedule="@every 10s", offset="0s",
                       redis_url=redis_url)
    end = int(time.time()) // 10 * 10 - 3600
    start = end - 1199 * 10
    proc = start_backfill(cfg, start, end, "--inline")
    code, err = interrupt_once(proc, sink, 50, "50 events at the sink")
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    stopped = [line for line in err.splitlines() if "stopped (Ctrl-C)" in line]
    assert len(stopped) == 1 and "run the same command again to continue" in stopped[0], err
    done = int(re.search(r"with ([\d,]+)/1,200 ticks done", stopped[0]).group(1).replace(",", ""))
    assert 50 <= done < 1200 and len(sink.events) == done, (done, len(sink.events))

    again = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(start), "--to", str(end),
                                       "--inline"), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"continuing: {done:,} of 1,200 ticks were done by an earlier run" in again.stderr, again.stderr
    last = PROGRESS.findall(again.stderr)[-1]  # stderr is not a terminal: plain lines, the last at the end
    assert last[0] == last[1] == "1,200" and last[3] == "done", again.stderr
    assert int(last[2].replace(",", "")) == 1200 - done  # this run's deliveries
    check_exactly_once(sink, 1200)


class HeldPrometheus:
    """Answers the first `free` queries at once and holds the others until released: Ctrl-C comes half-way
    however fast the worker is."""

    def __init__(self, fake, free: int):
        self.free, self.asked, self.released = free, 0, threading.Event()
        self.url = fake(self._answer).url

    def _answer(self, handler, body):
        self.asked += 1
        if self.asked > self.free:
            self.released.wait(30)
        return 200, vector(({"instance": "clock"}, "1"))


def test_backfill_through_workers_stops_on_ctrl_c_and_the_same_command_continues(tmp_path, fake, sink, redis_url):
    prometheus = HeldPrometheus(fake, free=10)
    cfg = write_config(tmp_path / "c.yaml", prometheus.url, sink.url, CLOCK, schedule="@every 10s", offset="0s",
                       redis_url=redis_url)
    # a query worker and a send worker: the send side delivers while the query worker waits on Prometheus
    worker, sender = (Proc(meterworker("worker", "-c", str(cfg), "-Q", queue, "-n", f"int-{queue}@%h", "--concurrency",
                                       "1", "--loglevel", "INFO"), tmp_path / f"{queue}.log", cwd=tmp_path)
                      for queue in ("query", "send"))
    end = int(time.time()) // 10 * 10 - 3600
    start = end - 199 * 10
    try:
        for w in (worker, sender):
            wait_until(lambda: " ready." in w.output(), 60, "the workers to start", w)
        proc = start_backfill(cfg, start, end, "--instant")  # a task per tick
        code, err = interrupt_once(proc, sink, 10, "10 events at the sink")
        prometheus.released.set()
        assert code == 130, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err
        stopped = [line for line in err.splitlines() if "stopped (Ctrl-C)" in line]
        assert len(stopped) == 1 and "run the same command again to continue" in stopped[0], err
        done = int(re.search(r"with ([\d,]+)/200 ticks done", stopped[0]).group(1))
        assert done < 200, err
        time.sleep(2)  # the tasks of the stopped run left in the queue do nothing
        delivered_when_stopped = len(sink.events)
        assert delivered_when_stopped < 200

        again = subprocess.run(meterworker("backfill", "-c", str(cfg), "--from", str(start), "--to", str(end),
                                           "--instant"), capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "continuing:" in again.stderr and "backfill: 200/200 ticks done" in again.stderr, again.stderr
        last = PROGRESS.findall(again.stderr)[-1]
        assert last[0] == last[1] == "200" and last[3] == "done", again.stderr
        wait_until(lambda: len(sink.events) >= 200, 30, "every tick at the sink", worker)
        time.sleep(1)
    finally:
        worker.stop()
        sender.stop()
    check_exactly_once(sink, 200)
