"""Giving freed memory back to the system between the big steps of a night.

A big file, a city's features or a rule's evidence are freed when done, but the allocators keep the
pages for reuse: Arrow's pool keeps its own, and glibc's malloc keeps pages inside its heap unless asked
(`malloc_trim`). A night at a million people then carries the loading's high-water mark into detection
and scoring, so the peak is the sum of the steps instead of the largest of them. `release()` hands both
back; it costs milliseconds and is harmless where there is nothing to give back (or no glibc).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import pyarrow as pa


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release() -> None:
    """Return the memory Arrow's pool and glibc's heap hold unused to the system."""
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
