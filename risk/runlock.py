"""One run at a time on a warehouse.

`risk run` holds the warehouse's run lock for all of its steps; a second `risk run` on the same warehouse
waits for it when asked to (`wait` seconds, saying so) and otherwise stops at once with a plain message
naming who holds the warehouse and since when, never a traceback. The nightly DAG's tasks hold the lock
shared while each runs (its parts run side by side; two DAG runs never overlap: max_active_runs=1), so a
`risk run` never starts in the middle of a task, nor a task in the middle of a `risk run`.

The locks belong to the operating system and the database, not to a row: a run that is killed releases
its lock with its process (SQLite: `flock` on a file beside the warehouse; PostgreSQL: a session advisory
lock on a connection of its own).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from risk.db import gateway
from risk.errors import WarehouseBusy

log = logging.getLogger(__name__)

PG_KEY = 0x7269736B  # "risk": the advisory lock key of a warehouse's run lock (one database, one warehouse)
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
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            yield
            return
        with _file_lock(Path(u.database), url, what, shared, wait, say):
            yield
    else:
        with _advisory_lock(url, what, shared, wait, say):
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


@contextlib.contextmanager
def _file_lock(database: Path, url: str, what: str, shared: bool, wait: float, say) -> Iterator[None]:
    path = database.with_name(database.name + ".run-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    started, said = time.monotonic(), []  # type: ignore[var-annotated]
    with open(path, "a+", encoding="utf-8") as f:
        while True:
            try:
                fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                f.seek(0)
                try:
                    holder = json.loads(f.read() or "null")
                except ValueError:
                    holder = None
                _waited(started, wait, holder, url, said, say)
        try:
            # who holds it, for the message a run that waits shows (shared: one of the holders)
            f.seek(0)
            f.truncate()
            f.write(json.dumps(_holder(what)))
            f.flush()
            yield
        finally:
            if not shared:
                f.seek(0)
                f.truncate()
                f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(url: str, what: str, shared: bool, wait: float, say) -> Iterator[None]:
    h = _holder(what)
    name = f"{h['what']}|{h['since']}|{h['pid']}|{h['host']}"[:63]  # application_name (63 bytes at most)
    started, said = time.monotonic(), []  # type: ignore[var-annotated]
    with gateway.engine_for(url).connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
        take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        while not conn.execute(text(f"SELECT {take}(:k)"), {"k": PG_KEY}).scalar():
            _waited(started, wait, _pg_holder(conn), url, said, say)
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock_shared(:k)" if shared else "SELECT pg_advisory_unlock(:k)"),
                         {"k": PG_KEY})
            conn.execute(text("SELECT set_config('application_name', '', false)"))


def _pg_holder(conn) -> dict | None:
    """Who holds the lock exclusively (or else shared), from the name its session gave itself."""
    found = conn.execute(text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND (l.classid::bigint << 32 | l.objid::bigint) = :k ORDER BY l.mode LIMIT 1"), {"k": PG_KEY}).scalar()
    if not found:
        return None
    parts = str(found).split("|")
    return dict(zip(("what", "since", "pid", "host"), parts, strict=False))
