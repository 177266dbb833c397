"""A worker process keeps the memory it frees for its next tick, and its garbage collector leaves alone what
it held once started. Each check runs in a fresh interpreter, as a pool process starts."""

import os
import subprocess
import sys

import pytest

HOLD_AND_FREE = """
import sys
from meterworker.ops.process_tuning import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "tuned" else None
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
before = rss_mb()
blocks = [bytes(20_000) for _ in range(2_000)]
peak = rss_mb() - before
del blocks
print(applied, peak, rss_mb() - before)
"""


def run(code: str, *args: str, env: dict | None = None) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                          env={**environ, **(env or {})}).stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="glibc's allocator")
def test_memory_freed_after_a_slice_stays_with_the_process():
    applied, peak, kept = run(HOLD_AND_FREE, "tuned")
    _, plain_peak, plain_kept = run(HOLD_AND_FREE, "plain")
    assert applied == "True"
    assert float(peak) > 35 and float(plain_peak) > 35  # 40 MB of 20 kB blocks were held
    assert float(kept) > 0.9 * float(peak)  # and stay resident for the next slice
    assert float(plain_kept) < float(kept) - 10  # where glibc's defaults give much of them back


def test_an_environment_that_tunes_glibc_itself_is_left_as_it_is():
    for env in ({"MALLOC_TRIM_THRESHOLD_": "131072"}, {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}):
        applied, _, _ = run(HOLD_AND_FREE, "tuned", env=env)
        assert applied == "False"


def test_the_collector_skips_what_the_process_held_at_start_and_runs_less_often():
    code = ("import gc; from meterworker.ops.process_tuning import collect_less; "
            "before = gc.get_threshold(); collect_less(); "
            "print(before[0], gc.get_threshold()[0], gc.get_freeze_count())")
    default, tuned, frozen = map(int, run(code))
    assert default == 700 and tuned >= 10_000
    assert frozen > 10_000  # meterworker's and its libraries' objects, never walked again
