"""The one way to the warehouse: engines, migrations, transactions and bulk writes.

What SQLite and PostgreSQL do differently (pragmas, COPY, statistics, …) is asked of their dialect
(risk.db.dialect): the operations here are the same on both.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, Table, inspect
from sqlalchemy.engine import make_url

from risk.db.dialect import Dialect

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


@cache
def engine_for(url: str) -> Engine:
    """One engine per warehouse URL. Its errors never carry the row values (hide_parameters): a failed
    insert must not write a resident's ID number or name into a log."""
    return Dialect.for_url(url).create_engine(url)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the warehouse to the newest schema (creates it on first use). The auditors' views read the
    tables a migration may change: when there is something to upgrade, installed views are dropped first
    and installed again afterwards, in the same transaction."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    engine = engine_for(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        head = ScriptDirectory.from_config(cfg).get_current_head()
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
        from risk.db import sql_access

        had_views = sql_access.views_installed(conn)
        if had_views:
            sql_access.drop_views(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        if had_views:
            sql_access.install_views(conn)


def ensure_indexes(url: str, tables: Iterable[Table]) -> list[str]:
    """Build any declared index of `tables` that is missing (a bulk load killed before it built them again);
    returns the names built."""
    built = []
    with engine_for(url).begin() as conn:
        present = {t.name: {ix["name"] for ix in inspect(conn).get_indexes(t.name)} for t in tables}
        for t in tables:
            for ix in sorted(t.indexes, key=lambda i: str(i.name)):
                if ix.name not in present[t.name]:
                    ix.create(conn)
                    built.append(str(ix.name))
    return built


def estimated_rows(conn: Connection, table: Table) -> int:
    """About how many rows `table` holds, without counting them: SQLite's largest rowid, PostgreSQL's
    statistics (counted when the table was never analysed)."""
    return Dialect.of(conn).estimated_rows(conn, table)


@contextmanager
def indexes_set_aside(url: str, tables: list[Table]) -> Iterator[None]:
    """For a bulk load into `tables`: their secondary indexes are dropped first and built again afterwards
    (also when the load fails), which costs a fraction of keeping them up to date row by row. The primary
    keys stay: loading needs them; so do indexes marked `kept_in_bulk` (rows arrive in their order). Each step is its own transaction; readers meanwhile get slower answers,
    never wrong ones. A load killed in between leaves the indexes to `ensure_indexes` (run by every
    `pipeline.prepare`)."""
    if not tables:
        yield
        return
    engine = engine_for(url)
    with engine.begin() as conn:
        present = {t.name: {ix["name"] for ix in inspect(conn).get_indexes(t.name)} for t in tables}
        for t in tables:
            for ix in t.indexes:
                if ix.name in present[t.name] and not ix.info.get("kept_in_bulk"):
                    ix.drop(conn)
    try:
        yield
    finally:
        started = time.monotonic()
        built = ensure_indexes(url, tables)
        log.info("indexes built again after a bulk load: %s (%.1f s)", ", ".join(built), time.monotonic() - started)


def refresh_statistics(url: str, written: Mapping[str, int]) -> list[str]:
    """After a load, on PostgreSQL: VACUUM (ANALYZE) each table of `written` (table name -> rows the load
    wrote) that was never analysed or got at least a tenth of its rows (see PostgresDialect). SQLite needs
    neither. Returns the tables refreshed."""
    engine = engine_for(url)
    return Dialect.of(engine).refresh_statistics(engine, written)


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    with engine_for(url).begin() as conn:
        yield conn


@contextmanager
def reading(url: str) -> Iterator[Connection]:
    """A transaction that only reads: on SQLite it takes no write lock, so long reads (behaviour features)
    leave the nightly writers and the web app free; it reads one consistent snapshot."""
    with engine_for(url).connect() as conn:
        conn = conn.execution_options(read_only=True)
        with conn.begin():
            yield conn


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of `frame` (columns named as the table's) into `table`; COPY on PostgreSQL.

    Values go in as they are: dates as `YYYY-MM-DD` text or date objects, missing values as None/NaN/NA."""
    if frame.empty:
        return 0
    cols = [c.name for c in table.columns if c.name in frame.columns]
    return Dialect.of(conn).insert_rows(conn, table, frame[cols])


def insert_new(conn: Connection, table: Table, key: str, frame: pd.DataFrame) -> pd.Series:
    """Insert the rows of `frame` (one delivered file's: one delivery day and file, distinct keys and lines)
    whose `key` the table does not hold yet; return which rows went in (booleans on frame's index).

    Either lets the key's own index turn the others away, which spares looking every key up first: SQLite
    row by row (ON CONFLICT DO NOTHING), finding which went in through the delivery-day index only when
    some did not; PostgreSQL COPYs the whole file, and only when the key refuses a row (the COPY then
    stops, undone to a savepoint) looks the keys up in one join and COPYs the new rows."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=bool)
    cols = [c.name for c in table.columns if c.name in frame.columns]
    return Dialect.of(conn).insert_new(conn, table, key, frame, cols)


def keys_present(conn: Connection, table: Table, key: str, keys: pd.Series, columns: list[str]) -> pd.DataFrame:
    """Rows of `table` whose `key` is among `keys` (distinct), with `columns`; keys as text. One join through
    the key's index: on SQLite the keys go in as JSON arrays (json_each), on PostgreSQL through a temporary
    table filled by COPY."""
    if keys.empty:
        return pd.DataFrame({c: pd.Series(dtype="str" if c == key else object) for c in [key, *columns]})
    cols = ", ".join(f't."{c}"' for c in [key, *columns])
    found = pd.DataFrame(Dialect.of(conn).keys_present(conn, table, key, keys, cols), columns=[key, *columns])
    found[key] = found[key].astype("str")
    return found


def delete_keys(conn: Connection, table: Table, key: str, keys: pd.Series) -> int:
    """Delete the rows of `table` whose `key` is among `keys` (distinct)."""
    if keys.empty:
        return 0
    return Dialect.of(conn).delete_keys(conn, table, key, keys)


def in_code_point_order(conn: Connection, column):
    """`column` for ORDER BY in code-point order, as Python sorts strings: SQLite compares text byte by byte
    already; PostgreSQL would follow the database's collation."""
    return Dialect.of(conn).in_code_point_order(column)
