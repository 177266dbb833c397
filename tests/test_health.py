"""`meterworker health`: the exit status probes use, against a real Redis, beat and worker."""

import subprocess
import time

import redis

from meterworker.schedule.beat_lock import BeatLock
from meterworker.schedule.state import State
from tests.support import free_port
from tests.support.mwproc import Proc, meterworker, wait_until, write_config

QUERIES = [{"name": "sessions", "promql": "mw_active_sessions"}]


def health(cfg, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(meterworker("health", "-c", str(cfg), *args), capture_output=True, text=True, timeout=60)


def lines(res: subprocess.CompletedProcess) -> dict[str, str]:
    """{check name: 'ok …' or 'FAIL …'} from the command's output."""
    out = {}
    for line in res.stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        out[rest.split(":", 1)[0]] = f"{verdict} {rest}"
    return out


def config(tmp_path, redis_url, **kw):
    return write_config(tmp_path / "collector.yaml", "http://127.0.0.1:9", "http://127.0.0.1:9", QUERIES,
                        redis_url=redis_url, name="health", **kw)


def test_fails_when_redis_does_not_answer_and_keeps_its_password(tmp_path):
    cfg = config(tmp_path, f"redis://:hunter2-pw@127.0.0.1:{free_port()}/0")
    res = health(cfg, "--timeout", "2s")
    assert res.returncode == 1, res
    assert lines(res)["redis"].startswith("FAIL redis: Redis at redis://:****@127.0.0.1:"), res.stdout
    assert "hunter2-pw" not in res.stdout + res.stderr


def test_redis_check_alone_passes_with_only_redis(tmp_path, redis_url):
    res = health(config(tmp_path, redis_url), "--check", "redis")
    assert res.returncode == 0, res
    assert list(lines(res)) == ["redis"]
    assert lines(res)["redis"].startswith("ok redis")


def test_fails_without_a_beat_lock_holder_and_without_completed_ticks(tmp_path, redis_url):
    res = health(config(tmp_path, redis_url))
    assert res.returncode == 1, res
    got = lines(res)
    assert got["redis"].startswith("ok")
    assert got["beat"] == "FAIL beat: no beat holds the lock (meterworker:health:beat-lock): nothing dispatches ticks"
    assert got["ticks"] == "FAIL ticks: no tick has completed yet"


def test_fails_when_the_newest_completed_tick_is_older_than_the_threshold(tmp_path, redis_url):
    cfg = config(tmp_path, redis_url, schedule="@every 1m")
    r = redis.Redis.from_url(redis_url)
    assert BeatLock(r, "health", "beat-on-host-a", 30).acquire()
    old = (int(time.time()) // 60 - 10) * 60
    State(r, "health").complete("sessions", old)

    res = health(cfg)
    assert res.returncode == 1, res
    got = lines(res)
    assert got["beat"] == "ok beat: beat beat-on-host-a holds the lock"
    assert got["ticks"].startswith("FAIL ticks: newest completed tick is ")
    # default threshold: two 1m windows plus a minute
    assert got["ticks"].endswith("over the threshold of 3m"), got["ticks"]

    res = health(cfg, "--max-tick-age", "1h")
    assert res.returncode == 0, res
    assert lines(res)["ticks"].endswith("within 1h")


def test_bad_arguments_are_refused_with_a_clear_message(tmp_path, redis_url):
    cfg = config(tmp_path, redis_url)
    res = health(cfg, "--check", "redis,lock")
    assert res.returncode == 2
    assert "'redis,lock': name checks from redis, beat, ticks" in res.stderr
    res = health(cfg, "--max-tick-age", "ten minutes")
    assert res.returncode == 2
    assert "--max-tick-age" in res.stderr


def test_passes_with_a_running_beat_and_worker_and_fails_once_beat_stops(tmp_path, prometheus, sink, redis_url):
    cfg = write_config(tmp_path / "collector.yaml", prometheus.url, sink.url, QUERIES, redis_url=redis_url,
                       name="health", schedule="@every 2s", offset="0s")
    worker = Proc(meterworker("worker", "-c", str(cfg), "--concurrency", "1"), tmp_path / "worker.log")
    beat = Proc(meterworker("beat", "-c", str(cfg)), tmp_path / "beat.log")
    try:
        res = wait_until(lambda: (r := health(cfg)).returncode == 0 and r, 60, "meterworker health to pass", beat)
        assert set(lines(res)) == {"redis", "beat", "ticks"}
        assert all(line.startswith("ok") for line in lines(res).values()), res.stdout
        assert beat.stop() == 0
        res = health(cfg)
        assert res.returncode == 1
        assert lines(res)["beat"].startswith("FAIL beat: no beat holds the lock")
    finally:
        beat.stop()
        worker.stop()
