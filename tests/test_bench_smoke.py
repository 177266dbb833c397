"""The benchmark scripts run, end to end, on a tiny size (benchmarks are not tests: no figure is checked
here, only that each script starts its parts, measures meterworker and its baseline, and reports)."""

import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent


def bench(tmp_path, script, *args, timeout=120):
    env = {**os.environ, "METERWORKER_BENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("METERWORKER_CONFIG", None)
    env.pop("METERWORKER_REDIS_URL", None)
    r = subprocess.run([sys.executable, "-m", f"bench.{script}", *args, "--json", str(tmp_path / "out.json")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return r.stdout


def test_throughput_runs_on_a_tiny_size(tmp_path):
    out = bench(tmp_path, "throughput", "--series", "300", "--runs", "1")
    assert "| tick to last event (s) |" in out
    assert "duplicates at the sink: 0" in out
    assert "| baseline |" in out and "| worker |" in out


def test_fanout_runs_on_a_tiny_size(tmp_path):
    out = bench(tmp_path, "fanout", "--queries", "20", "--runs", "1")
    assert "tick lag p50 / p99" in out
    assert "duplicates at the sink: 0" in out


def test_scale_runs_on_a_tiny_size(tmp_path):
    out = bench(tmp_path, "scale", "--sizes", "200", "--runs", "1")  # one size: each costs a full start-up
    assert "| 200 | 1 |" in out
    assert "duplicates at the sink: 0" in out


def test_memory_runs_on_a_tiny_size(tmp_path):
    out = bench(tmp_path, "memory", "--ticks", "3", "--outage-ticks", "1", timeout=180)
    assert "| 10 series | 10 | 300 | 300 (300) |" in out and "| 1,000 series | 1 | 3,000 | 3,000 (3,000) |" in out
    assert "per pending event" in out
