"""One run at a time on a warehouse.

`risk run` holds the warehouse's run lock for all of its steps; a second `risk run` on the same warehouse
waits for it when asked to (`wait` seconds, saying so) and otherwise stops at once with a plain message
naming who holds the warehouse and since when, never a traceback. The nightly DAG's tasks hold the lock
shared while each runs (its parts run side by side; two DAG runs never overlap: max_active_runs=1), so a
`risk run` never starts in the middle of a task, nor a task in the middle of a `risk run`.

The locks belong to the operating system and the database, not to a row: a run that is killed releases
its lock with its process (the warehouse's dialect holds it: risk.db.locks).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime

from risk.db import gateway
from risk.db.dialect import Dialect
from risk.errors import WarehouseBusy

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


def _holder(what: str) -> dict:
    return {"what": what, "since": datetime.now().isoformat(timespec="seconds"), "pid": os.getpid(),
            "host": socket.gethostname()}


def _busy(holder: dict | None, url: str) -> WarehouseBusy:
    if not holder:
        return WarehouseBusy(f"仓库正被另一个运行占用，请等它结束再试 / another run holds this warehouse "
                             f"({gateway.safe_url(url)}). Try again when it has finished, or pass --wait SECONDS")
    what, since, pid, host = (holder.get(k, "?") for k in ("what", "since", "pid", "host"))
    return WarehouseBusy(f"仓库正被另一个运行占用：{what}（{host} 上的进程 {pid}），自 {since} 起，请等它结束再试 / another "
                         f"run has held this warehouse since {since}: {what} (process {pid} on {host}), "
                         f"{gateway.safe_url(url)}. Try again when it has finished, or pass --wait SECONDS")


@contextlib.contextmanager
def held(url: str, what: str, shared: bool = False, wait: float = 0,
         say=lambda _m: None) -> Iterator[None]:
    """Hold the run lock of the warehouse at `url` for the block: exclusive (a whole run) or `shared` (a
    task of the nightly DAG). Waits up to `wait` seconds for a run that holds it (telling `say` once), then
    raises WarehouseBusy. An in-memory SQLite database has no one to share it with: nothing is locked."""
    engine = gateway.engine_for(url)
    started, said = time.monotonic(), []  # type: ignore[var-annotated]
    with Dialect.of(engine).run_lock(engine, shared, _holder(what),
                                     lambda other: _waited(started, wait, other, url, said, say)):
        yield


def _waited(started: float, wait: float, holder: dict | None, url: str, said: list[bool], say) -> None:
    """Raise when the wait is over; else say once that we wait, and sleep a little."""
    if time.monotonic() - started >= wait:
        raise _busy(holder, url)
    if not said:
        message = str(_busy(holder, url)).split(". Try again")[0]
        say(f"等待中 / waiting: {message}")
        log.warning("waiting for the warehouse: %s", message)
        said.append(True)
    time.sleep(min(POLL_SECONDS, max(wait - (time.monotonic() - started), 0.05)))
