"""A fixed dataset for the benchmarks: N series of one gauge in promtool-made TSDB blocks.

Series i is ``bench_usage{instance="tenant-<i>", shard="<i // 10>", plan=…, region=…}`` with one
sample at ``SAMPLE_AT`` (so the tick ``TICK``, 30s later, sees every series within Prometheus'
5-minute lookback). Shard k holds 10 series, for the fan-out benchmark's queries
(``bench_usage{shard="k"}``). Blocks are made once per size with ``promtool tsdb
create-blocks-from openmetrics`` and cached; a Prometheus started on a hard-linked copy of them
answers the same thing every run, without scraping anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

TICK = 1767225600            # 2026-01-01T00:00:00Z: the tick every benchmark evaluates
SAMPLE_AT = TICK - 30        # the one sample of each series
SERIES_PER_SHARD = 10
FORMAT_VERSION = 1           # bump when the series change, so old caches are not reused

PLANS = ("free", "team", "business", "enterprise")
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")


def cache_dir() -> Path:
    root = os.environ.get("METERWORKER_BENCH_CACHE")
    return Path(root) if root else Path(__file__).resolve().parent / ".cache"


def openmetrics_lines(n: int):
    yield "# TYPE bench_usage gauge\n"
    for i in range(n):
        yield (f'bench_usage{{instance="tenant-{i:07d}",shard="{i // SERIES_PER_SHARD}",'
               f'plan="{PLANS[i % len(PLANS)]}",region="{REGIONS[i % len(REGIONS)]}"}} '
               f'{(i % 1000) + 0.25} {SAMPLE_AT}\n')
    yield "# EOF\n"


COUNTER_STEP = 15            # seconds between two samples of a counter series
COUNTER_SAMPLES = 13         # samples per counter series: TICK - 180s .. TICK
COUNTER_FORMAT_VERSION = 1


def counter_value(i: int, k: int) -> int | None:
    """Sample k (0 .. COUNTER_SAMPLES - 1) of counter series i: most grow steadily; one in 1,000 restarts from
    zero two samples before the tick, one in 5,000 appears three samples before it (None: no sample yet)."""
    if i % 5000 == 3 and k < COUNTER_SAMPLES - 3:
        return None
    growth = 1 + i % 17
    if i % 1000 == 7 and k >= COUNTER_SAMPLES - 2:
        return growth * (k - (COUNTER_SAMPLES - 2) + 1)
    return 10_000 * (i % 100) + growth * k


def counter_lines(n: int):
    yield "# TYPE bench_calls counter\n"
    first = TICK - COUNTER_STEP * (COUNTER_SAMPLES - 1)
    for i in range(n):
        labels = (f'instance="tenant-{i:07d}",plan="{PLANS[i % len(PLANS)]}",'
                  f'region="{REGIONS[i % len(REGIONS)]}"')
        for k in range(COUNTER_SAMPLES):
            v = counter_value(i, k)
            if v is not None:
                yield f"bench_calls_total{{{labels}}} {v} {first + COUNTER_STEP * k}\n"
    yield "# EOF\n"


def promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None)
    if not found:
        raise RuntimeError("promtool not found (Debian: apt-get install prometheus; bin/bench installs it)")
    return found


def blocks(n: int, log=print, kind: str = "gauge") -> Path:
    """A directory of TSDB blocks holding the n-series dataset (kind "gauge": bench_usage, one sample per
    series; "counter": bench_calls_total, COUNTER_SAMPLES samples per series), made once and cached."""
    target = cache_dir() / (f"blocks-v{FORMAT_VERSION}-{n}" if kind == "gauge"
                            else f"counter-blocks-v{COUNTER_FORMAT_VERSION}-{n}")
    if (target / "done").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"blocks-{n}-", dir=target.parent))
    started = time.monotonic()
    log(f"making TSDB blocks of {n:,} series with promtool (once; cached in {target})")
    source = work / "series.om"
    with open(source, "w") as f:
        f.writelines(openmetrics_lines(n) if kind == "gauge" else counter_lines(n))
    out = work / "tsdb"
    subprocess.run([promtool(), "tsdb", "create-blocks-from", "openmetrics", str(source), str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    source.unlink()
    shutil.rmtree(target, ignore_errors=True)
    out.rename(target)
    shutil.rmtree(work, ignore_errors=True)
    (target / "done").write_text(f"{n}\n")
    log(f"made the blocks in {time.monotonic() - started:.1f}s")
    return target


def link_copy(src: Path, dst: Path) -> Path:
    """A copy of the blocks whose files are hard links (blocks are immutable; Prometheus adds its own files)."""
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link, ignore=shutil.ignore_patterns("done"))
    return dst
