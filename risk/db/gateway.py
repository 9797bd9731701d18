"""The one way to the warehouse: engines, migrations, transactions and bulk writes.

Dialect differences (SQLite pragmas, PostgreSQL COPY) live here and nowhere else.
"""
from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


@cache
def engine_for(url: str) -> Engine:
    """One engine per warehouse URL. Its errors never carry the row values (hide_parameters): a failed
    insert must not write a resident's ID number or name into a log."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 600}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA cache_size=-262144")  # 256 MiB: index pages of big fact tables stay in memory
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        # let SQLAlchemy, not pysqlite, decide where a transaction begins (one day = one transaction)
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection, _record):  # pragma: no cover - trivial
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover - trivial
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


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
        from risk import sql_access

        had_views = sql_access.views_installed(conn)
        if had_views:
            sql_access.drop_views(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        if had_views:
            sql_access.install_views(conn)


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    with engine_for(url).begin() as conn:
        yield conn


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def prefer_index_reads(conn: Connection) -> None:
    """For the rest of this transaction, PostgreSQL prices a random page read close to a sequential one
    (random_page_cost 1.1, as for SSDs and cached tables): with the default 4 it scans a whole fact table
    rather than look up one county's people through an index."""
    if is_postgres(conn):
        conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")


def one_at_a_time(conn: Connection, what: str) -> None:
    """Wait until no other transaction is doing `what`, and keep others out until this one ends (a
    PostgreSQL advisory lock; SQLite lets one writer in at a time anyway)."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:what))"), {"what": f"risk.{what}"})


def rows_with_keys(conn: Connection, table: str, column: str, keys: str) -> str:
    """A SELECT of the rows of the warehouse table `table` whose `column` is in the temporary table `keys`
    (which has a column of the same name), written so that each database reads only those rows: SQLite must
    loop over the keys (CROSS JOIN fixes its join order; else it walks a whole index to keep the order a
    GROUP BY wants), PostgreSQL gets a semi-join it may start from either side (a join back from a few
    flagged rows then looks them up by index). Names come from the caller's fixed lists."""
    if is_postgres(conn):
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        return f"SELECT * FROM {schema}.{table} WHERE {column} IN (SELECT {column} FROM pg_temp.{keys})"
    return f"SELECT f.* FROM temp.{keys} k CROSS JOIN main.{table} f WHERE f.{column} = k.{column}"


def count_rows(conn: Connection, table: str) -> None:
    """Let PostgreSQL's planner know how many rows a temporary table holds (it never analyses them itself);
    SQLite's plans here do not depend on it. `table` is a name from the caller's fixed list."""
    if is_postgres(conn):
        conn.exec_driver_sql(f"ANALYZE {table}")


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of `frame` (columns named as the table's) into `table`; COPY on PostgreSQL."""
    if frame.empty:
        return 0
    cols = [c.name for c in table.columns if c.name in frame.columns]
    frame = frame[cols]
    if is_postgres(conn):
        return _copy(conn, table, frame)
    return _sqlite_executemany(conn, table, frame)


def _sqlite_executemany(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """sqlite3's executemany with values already in the text forms SQLAlchemy's SQLite types store
    (dates `YYYY-MM-DD`, datetimes `YYYY-MM-DD HH:MM:SS.ffffff`): the type processors per value were the
    slowest part of loading."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        kind = type(table.c[name].type).__name__
        if kind in ("Date", "DateTime"):
            fmt = "%Y-%m-%d" if kind == "Date" else "%Y-%m-%d %H:%M:%S.%f"
            text_values = pd.to_datetime(col, errors="coerce").dt.strftime(fmt)
            out[name] = text_values.astype(object).where(col.notna(), None)
        elif kind == "Boolean":
            out[name] = col.astype(object).where(col.isna(), col.astype(bool).astype(int))
        else:
            out[name] = col.astype(object).where(col.notna(), None)
    values = list(zip(*(out[n].tolist() for n in frame.columns), strict=True))
    names = ", ".join(f'"{c}"' for c in frame.columns)
    marks = ", ".join("?" for _ in frame.columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', values)
    return len(values)


def _copy(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """COPY in CSV format: text is quoted, so quotes, tabs, line breaks and backslashes arrive as they were.
    Missing values are written empty and FORCE_NULL reads every empty field as NULL: the warehouse keeps no
    empty strings (an empty delivered value is a missing one)."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, na_rep="", quoting=csv.QUOTE_NONNUMERIC,
                 date_format="%Y-%m-%d %H:%M:%S")
    raw: Any = conn.connection.dbapi_connection  # psycopg's connection: COPY is not in the DB-API
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    with raw.cursor() as cur:
        with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN WITH (FORMAT csv, FORCE_NULL ({cols}))') as copy:
            copy.write(buf.getvalue())
    return len(frame)


def keys_present(conn: Connection, table: Table, key: str, keys: pd.Series, columns: list[str]) -> pd.DataFrame:
    """Rows of `table` whose `key` is among `keys`, with `columns` (a temporary table does the join)."""
    if keys.empty:
        return pd.DataFrame(columns=[key, *columns])
    conn.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS incoming_key (k VARCHAR(200) PRIMARY KEY)"))
    conn.execute(text("DELETE FROM incoming_key"))
    unique = pd.DataFrame({"k": keys.drop_duplicates().astype(str)})
    if is_postgres(conn):
        buf = io.StringIO()
        unique.to_csv(buf, index=False, header=False)
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            with cur.copy("COPY incoming_key (k) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buf.getvalue())
    else:
        conn.exec_driver_sql("INSERT INTO incoming_key (k) VALUES (?)", [(k,) for k in unique["k"].tolist()])
    cols = ", ".join(f't."{c}"' for c in [key, *columns])
    rows = conn.execute(text(f'SELECT {cols} FROM "{table.name}" t JOIN incoming_key i ON t."{key}" = i.k')).all()
    return pd.DataFrame(rows, columns=[key, *columns])
