"""risk.memory.release: the memory a big step freed goes back to the system before the next step."""
from __future__ import annotations

import psutil

from risk import memory


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def test_freed_heap_memory_goes_back_to_the_system() -> None:
    # 300 MiB in 2 KiB blocks (malloc's heap, not mmap), every 64th kept: what a big file's rows leave behind
    blocks = [bytes(2048) for _ in range(150_000)]
    kept = blocks[::64]
    del blocks
    before = _rss_mib()
    memory.release()
    after = _rss_mib()
    assert len(kept) == 2344
    assert before - after > 150, (before, after)  # glibc keeps such pages until asked to give them back
