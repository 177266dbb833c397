"""A worker process tuned for ticks of many events: its allocator and its garbage collector.

Worker processes keep the memory they free for the next tick instead of handing it back to the kernel.

A tick's events are read, mapped, encoded and posted in slices of thousands; with glibc's defaults each
slice's freed memory above 128 KiB is given back and the next slice faults it in again, page by page.
That churn costs more CPU than the work itself on a virtual machine, where a page fault is dear (see
docs/benchmarks.md). With these settings (glibc's mallopt) a worker's resident memory stays at its peak
between ticks, up to TRIM_THRESHOLD of free heap.

A process whose environment sets glibc's malloc tunables (MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_,
MALLOC_MMAP_THRESHOLD_ or glibc.malloc in GLIBC_TUNABLES) keeps its own; so does one on another C library.

The garbage collector leaves alone what the process holds once it has started (Celery, the config, the
clients: gc.freeze), and looks for cycles less often (GC_THRESHOLD): a tick's events are short-lived
containers without cycles, and each pass of the collector over them is wasted work.
"""

import ctypes
import ctypes.util
import gc
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
TRIM_THRESHOLD = 1 << 30  # free heap kept before any is given back
TOP_PAD = 64 << 20        # grow the heap by this much more than asked: fewer brk calls
MMAP_THRESHOLD = 32 << 20  # blocks below this come from the heap (and are reused), not from mmap

GC_THRESHOLD = (50_000, 20, 20)  # allocations before a young collection; young before middle; middle before old

SETTINGS = ((M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD), (M_MMAP_THRESHOLD, MMAP_THRESHOLD))
ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")


def user_tuned(environ=os.environ) -> bool:
    return any(k in environ for k in ENV) or "glibc.malloc" in environ.get("GLIBC_TUNABLES", "")


def keep_freed_memory(environ=os.environ) -> bool:
    """Apply SETTINGS to this process' allocator (forked children inherit them); True when applied."""
    if user_tuned(environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = all(mallopt(param, value) == 1 for param, value in SETTINGS)
    if not applied:
        log.debug("mallopt refused meterworker's memory settings; the allocator keeps its defaults")
    return applied


def collect_less() -> None:
    """Freeze what this process holds now and raise the collector's thresholds (see the module's doc)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
