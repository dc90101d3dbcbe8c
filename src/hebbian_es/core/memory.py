"""Keeping the heap from fragmenting while lifetimes run.

Every step of a batch of lifetimes allocates and frees tensors of one to tens of MB (pixel
batches, convolution outputs, the plastic layers' temporaries), between small allocations
that live on (observations, env and Python objects).  glibc serves blocks above its mmap
threshold with mmap, but raises that threshold (up to 32 MB) each time such a block is
freed; from then on these tensors come from the heap, where the small long-lived blocks
land between them and freed space is not returned.  On the CarRacing campaign (population
64, 458,002 parameters) the resident size grew by about 1.5 GB per generation until the
kernel killed the run at 16 GB.  Fixing the threshold at 128 KiB (glibc's starting value)
keeps large tensors on mmap, returned to the OS when freed: the same run stays under 1 GB.
The price is page faults on each large allocation: benchmarks/bench_memory.py measures
both settings (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # glibc only (not macOS, not musl)
    except (OSError, AttributeError):
        return None
    return libc


@functools.cache
def limit_heap_fragmentation(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap and trim thresholds at `threshold` bytes for this process (once; every
    process that runs lifetimes calls it).  False where the C library is not glibc, or refused."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, threshold))
