"""A steady heap for training: glibc's malloc thresholds fixed, so each step reuses its tensors' memory instead of mapping it afresh.

glibc serves an allocation above its mmap threshold with a fresh mapping and
unmaps it on free, and it gives the heap's free top back to the system once
more than its trim threshold lies there. Both thresholds start low (128 KiB
and 128 KiB) and rise as the process frees mapped blocks, up to 32 MiB. A
training step allocates and frees the same activations every step, so how
many of them are mapped afresh each step (every page zeroed and faulted in
again) depends on what the process happened to allocate before. Measured on
the benchmark's job case (a small ResNet, batch 64, one thread, 3 epochs):
100K to 1M minor page faults per fit, the fit slower as they grow; expresso's
fits took 1.03-1.22x the hand loop's with 1.5-8x its faults, a difference of
allocation history, not of work. With the thresholds fixed at 32 MiB (glibc's
own ceiling) and 64 MiB both kinds of fit fault about 100K times (the first
touch of their memory). The full benchmark run (benchmarks/RESULTS.md) has
the hand loop on this heap too: its peak memory 1.01x the usual one's.

``steady_heap()`` sets them once per process: the ``expresso`` command at its
start, ``Trainer.fit()`` for the Python API. It leaves the heap alone where
the user chose (any ``MALLOC_*_`` threshold variable or a ``glibc.malloc``
tunable in the environment) and off glibc (macOS, musl), where there is no
such adjustment to stop. A malloc preloaded in glibc's place (jemalloc,
tcmalloc) ignores the call.
"""

from __future__ import annotations

import os

MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling for its own adjustment on 64-bit systems
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # the ratio glibc keeps while it adjusts
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")

_done = False


def steady_heap() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (once); True when they were set by this call or an earlier one."""
    global _done
    if _done:
        return True
    if any(name in os.environ for name in _USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):  # not glibc
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; the trim threshold first: setting either ends glibc's adjustment of both
    _done = (
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    )
    return _done
