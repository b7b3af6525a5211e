"""Process-wide settings that make the CPU hot path fast.

glibc returns every freed block above its mmap threshold to the OS, so each new
time-step tensor costs page faults: on our 2-core machine a [32, 64, 4096]
LIF forward+backward took 311 ms with the defaults and 40 ms with large blocks
kept in the heap (scripts/bench_neurons.py prints both). jemalloc/tcmalloc
(Intel's advice for PyTorch on CPU) do the same; this needs no LD_PRELOAD.
Set SNNEXP_MALLOC_TUNING=0 to keep the allocator's defaults.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_allocator() -> bool:
    """Keep freed large blocks in the heap (glibc only). Returns True if applied."""
    global _tuned
    if _tuned:
        return True
    if os.environ.get("SNNEXP_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    # 1 GiB: blocks below this come from the heap; trim only above 2 GiB of free top.
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 and mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
    _tuned = ok
    return ok
