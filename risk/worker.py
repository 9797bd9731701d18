"""A process of its own beside the night's main one: on two cores, work that does not wait for the main
process's runs there meanwhile (checking the next files while one is stored, the city's behaviour features
while the rules run).

The process is spawned (not forked: the main process holds database connections and threads), so it starts
with a fresh interpreter and imports what its work needs; it ends when the process that started it ends
(killed by a timeout or for memory, say), rather than live on working for no one. Where no process can
be started (inside a daemon process, as Celery's workers are) or the process dies, the caller does the work
itself: `submit` returns None, and `outcome` turns a dead process into None.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)


def ends_with_parent(parent: int, every: float = 1.0) -> None:
    """In the worker process, first: a thread that ends the process once the process `parent` has ended."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="ends-with-parent", daemon=True).start()


def start() -> ProcessPoolExecutor:
    """One spawned worker process that ends with this one (started at its first task)."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=ends_with_parent, initargs=(os.getpid(),))


class Worker:
    """One worker process for tasks handed to it one at a time (`with Worker() as w: w.submit(...)`)."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future | None:
        """`fn(*args)` in the worker process; None when no process can be started (do it yourself)."""
        try:
            if self.pool is None:
                self.pool = start()
            return self.pool.submit(fn, *args)
        except (AssertionError, OSError, BrokenProcessPool) as e:  # a daemon process may not have children
            log.info("no worker process (%s): the work is done in this process", e)
            self.close()
            return None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def outcome(future: Future | None, what: str) -> Any:
    """The worker's result; None when there was no worker or it died (do the work yourself). The task's
    own errors are raised here, as if it had run in this process."""
    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool as e:
        log.warning("工作进程意外退出，改在本进程进行 / the worker process stopped (%s): %s is done in this "
                    "process", e, what)
        return None
