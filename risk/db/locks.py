"""The run lock's two mechanisms (risk.runlock decides when to wait and what to say): on SQLite `flock` on a
file beside the warehouse, on PostgreSQL a session advisory lock on a connection of its own. Both belong to
the operating system or the database, not to a row: a run that is killed releases its lock with its
process. Only risk.db.dialect calls these (each dialect its own).

Both take `holder` (what, since, pid, host: who we are, for the message another run shows while it waits)
and `busy(other)`, called each time another holds the lock with what is known of that other (None when
nothing is): it raises to give up, or returns, having waited a little, to try again."""
from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, text

PG_KEY = 0x7269736B  # "risk": the advisory lock key of a warehouse's run lock (one database, one warehouse)
HOLDER_FIELDS = ("what", "since", "pid", "host")

Busy = Callable[[dict | None], None]


@contextlib.contextmanager
def file_lock(database: Path, shared: bool, holder: dict, busy: Busy) -> Iterator[None]:
    """`flock` on `<database>.run-lock`, which names its (last) holder."""
    path = database.with_name(database.name + ".run-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        while True:
            try:
                fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                f.seek(0)
                try:
                    other = json.loads(f.read() or "null")
                except ValueError:
                    other = None
                busy(other)
        try:
            # who holds it, for the message a run that waits shows (shared: one of the holders)
            f.seek(0)
            f.truncate()
            f.write(json.dumps(holder))
            f.flush()
            yield
        finally:
            if not shared:
                f.seek(0)
                f.truncate()
                f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def advisory_lock(engine: Engine, shared: bool, holder: dict, busy: Busy) -> Iterator[None]:
    """A session advisory lock (key PG_KEY); the session names its holder in its application_name."""
    name = "|".join(str(holder[k]) for k in HOLDER_FIELDS)[:63]  # application_name (63 bytes at most)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
        take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        while not conn.execute(text(f"SELECT {take}(:k)"), {"k": PG_KEY}).scalar():
            busy(_advisory_holder(conn))
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock_shared(:k)" if shared else "SELECT pg_advisory_unlock(:k)"),
                         {"k": PG_KEY})
            conn.execute(text("SELECT set_config('application_name', '', false)"))


def _advisory_holder(conn) -> dict | None:
    """Who holds the lock exclusively (or else shared), from the name its session gave itself."""
    found = conn.execute(text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND (l.classid::bigint << 32 | l.objid::bigint) = :k ORDER BY l.mode LIMIT 1"), {"k": PG_KEY}).scalar()
    if not found:
        return None
    parts = str(found).split("|")
    return dict(zip(HOLDER_FIELDS, parts, strict=False))
