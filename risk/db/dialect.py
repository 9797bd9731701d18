"""How SQLite and PostgreSQL differ, in one place.

`Dialect.of(conn)` (a Connection or an Engine) or `Dialect.for_url(url)` gives the warehouse's dialect, one
object per database (SQLITE, POSTGRES); the rest of the project calls its methods and never tests a
database's name itself (tests/unit/test_dialect.py holds every module outside risk/db/ to that). A dialect
owns:

- engines: how a connection is set up (SQLite's pragmas and transactions; PostgreSQL's pre-ping);
- rule SQL: the date macros of sql/rules and sql/touched (`rule_macros`, rendered by risk.detection.registry);
- temporary tables and views: the session's temporary schema, key-ordered scope tables, reading the rows of
  a table for the keys a temporary table holds, telling the planner how big a temporary table is;
- statistics and plans: estimated row counts, refreshing statistics after a load, cheap index reads;
- locks: one transaction at a time for a step (`one_at_a_time`), and the run lock of risk.runlock
  (`run_lock`; the mechanisms in risk.db.locks);
- bulk rows: inserting a frame, inserting only new keys (INSERT … ON CONFLICT DO NOTHING on SQLite, COPY
  undone to a savepoint on PostgreSQL), looking keys up and deleting them (json_each, or a temporary key
  table filled by COPY); the mechanisms in risk.db.bulk, the operations in risk.db.gateway;
- views and roles: the CREATE VIEW options and the functions the views need, whether the database has SQL
  roles and row-level security (risk.db.sql_access);
- ordering text by code point, and whether Alembic alters tables in batches (risk/db/migrations).
"""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd
from sqlalchemy import Connection, Engine, Row, Table, create_engine, event, text
from sqlalchemy.engine import make_url

from risk.db import bulk, locks
from risk.errors import ConfigError

CHANGED_SHARE = 0.1  # PostgreSQL's own threshold for analysing a table again (autovacuum_analyze_scale_factor)


class Dialect(ABC):
    """What the warehouse's database does its own way. Subclasses: SqliteDialect, PostgresDialect."""

    name: ClassVar[str]  # SQLAlchemy's name of the database
    temp_schema: ClassVar[str]  # where the session's temporary tables and views are
    has_roles: ClassVar[bool]  # SQL roles, grants and row-level security
    alters_in_batches: ClassVar[bool]  # Alembic must copy a table to alter it
    rule_macros: ClassVar[Mapping[str, Callable[..., str]]]  # the date expressions of the rules' SQL

    @staticmethod
    def of(bind: Connection | Engine) -> Dialect:
        return _named(bind.dialect.name)

    @staticmethod
    def for_url(url: str) -> Dialect:
        return _named(make_url(url).get_backend_name())

    def __repr__(self) -> str:
        return f"<{self.name} dialect>"

    # ---------------------------------------------------------------- engines and views

    @abstractmethod
    def create_engine(self, url: str) -> Engine:
        """A new engine for the warehouse at `url`. Its errors never carry the row values (hide_parameters):
        a failed insert must not write a resident's ID number or name into a log."""

    def view_sql(self, name: str, sql: str, start: int, end: int) -> str:
        """A view's CREATE statement `sql`, whose `CREATE VIEW name AS` is sql[start:end], for this database."""
        return sql

    def view_functions(self) -> Sequence[str]:
        """Statements that give this database the functions the views use (SQLite has them built in)."""
        return ()

    # ---------------------------------------------------------------- temporary tables and views

    def create_temp_table(self, name: str, columns: str) -> str:
        return f"CREATE TEMPORARY TABLE {name} ({columns})"

    def drop_temp_table(self, name: str) -> str:
        return f"DROP TABLE IF EXISTS {self.temp_schema}.{name}"

    def drop_temp_view(self, name: str) -> str:
        return f"DROP VIEW {self.temp_schema}.{name}"

    @abstractmethod
    def rows_with_keys(self, conn: Connection, table: str, column: str, keys: str) -> str:
        """A SELECT of the rows of the warehouse table `table` whose `column` is in the temporary table `keys`
        (which has a column of the same name), written so that this database reads only those rows. Names
        come from the caller's fixed lists."""

    @abstractmethod
    def count_rows(self, conn: Connection, table: str) -> None:
        """Let the planner know how many rows the temporary table `table` holds (a name from a fixed list)."""

    # ---------------------------------------------------------------- statistics, plans, locks, order

    @abstractmethod
    def estimated_rows(self, conn: Connection, table: Table) -> int:
        """About how many rows `table` holds, without counting them."""

    def refresh_statistics(self, engine: Engine, written: Mapping[str, int]) -> list[str]:
        """After a load (table name -> rows written): refresh the planner's statistics of the tables that
        need it; returns those tables."""
        return []

    @abstractmethod
    def prefer_index_reads(self, conn: Connection) -> None:
        """For the rest of this transaction, price a random page read close to a sequential one."""

    @abstractmethod
    def one_at_a_time(self, conn: Connection, what: str) -> None:
        """Wait until no other transaction is doing `what`, and keep others out until this one ends."""

    @abstractmethod
    def run_lock(self, engine: Engine, shared: bool, holder: dict, busy: locks.Busy) \
            -> contextlib.AbstractContextManager[None]:
        """The warehouse's run lock, held for the block (see risk.db.locks for `holder` and `busy`)."""

    def in_code_point_order(self, column):
        """`column` for ORDER BY in code-point order, as Python sorts strings."""
        return column

    def server_pid(self, conn: Connection) -> int | None:
        """The process of the database server that serves `conn` (None: the database runs in this one)."""
        return None

    # ---------------------------------------------------------------- bulk rows (risk.db.gateway's operations)

    @abstractmethod
    def insert_rows(self, conn: Connection, table: Table, frame: pd.DataFrame) -> int:
        """Insert every row of `frame` (the table's columns); returns how many."""

    @abstractmethod
    def insert_new(self, conn: Connection, table: Table, key: str, frame: pd.DataFrame,
                   cols: Sequence[str]) -> pd.Series:
        """Insert the rows (columns `cols`) whose `key` the table does not hold; which went in."""

    @abstractmethod
    def keys_present(self, conn: Connection, table: Table, key: str, keys: pd.Series, cols: str) -> Sequence[Row]:
        """The rows (columns `cols` of `table` as t) whose `key` is among `keys` (distinct, not none)."""

    @abstractmethod
    def delete_keys(self, conn: Connection, table: Table, key: str, keys: pd.Series) -> int:
        """Delete the rows whose `key` is among `keys` (distinct, not none); returns how many."""


class SqliteDialect(Dialect):
    name = "sqlite"
    temp_schema = "temp"
    has_roles = False
    alters_in_batches = True
    rule_macros = {
        "month_start": lambda x: f"date({x}, 'start of month')",
        "next_month": lambda x: f"date({x}, 'start of month', '+1 month')",
        "month_end": lambda x: f"date({x}, 'start of month', '+1 month', '-1 day')",
        "date_text": lambda x: f"{x}",
        "month_text": lambda x: f"substr({x}, 1, 7)",
        # dates are YYYY-MM-DD text: 29 February 2024 + 12 months is the text 2025-02-29, which sorts
        # after the 28th and before 1 March, as PostgreSQL's 2025-02-28 does for ">"
        "over_a_year_after": lambda later, earlier: (
            f"({later} > (CAST(CAST(substr({earlier}, 1, 4) AS INTEGER) + 1 AS TEXT) || substr({earlier}, 5)))"),
    }

    def create_engine(self, url: str) -> Engine:
        u = make_url(url)
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
            # sorts and temporary B-trees bigger than the cache go to temporary files (the system keeps them
            # in its page cache): in memory, a whole detection at a million people grew the process by
            # 2 GiB (peak 2,823 MiB against 673 MiB), for no gain in time (68.0 s against 69.0 s)
            cur.execute("PRAGMA temp_store=FILE")
            cur.close()

        # let SQLAlchemy, not pysqlite, decide where a transaction begins (one day = one transaction)
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection, _record):  # pragma: no cover - trivial
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover - trivial
            # a writer takes the write lock at once (no deadlock between two readers turning writers); a reader
            # (`reading`) reads a snapshot and blocks nobody
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

        return engine

    def create_temp_table(self, name: str, columns: str) -> str:
        keyed = " WITHOUT ROWID" if "PRIMARY KEY" in columns else ""  # scope tables scanned in key order
        return f"CREATE TEMPORARY TABLE {name} ({columns}){keyed}"

    def rows_with_keys(self, conn: Connection, table: str, column: str, keys: str) -> str:
        # SQLite must loop over the keys (CROSS JOIN fixes its join order; else it walks a whole index to keep
        # the order a GROUP BY wants)
        return f"SELECT f.* FROM temp.{keys} k CROSS JOIN main.{table} f WHERE f.{column} = k.{column}"

    def count_rows(self, conn: Connection, table: str) -> None:
        """Nothing: SQLite's plans here do not depend on it."""

    def prefer_index_reads(self, conn: Connection) -> None:
        """Nothing: SQLite's plans do not price page reads."""

    def one_at_a_time(self, conn: Connection, what: str) -> None:
        """Nothing: SQLite lets one writer in at a time anyway (BEGIN IMMEDIATE)."""

    def estimated_rows(self, conn: Connection, table: Table) -> int:
        """The largest rowid."""
        return int(conn.execute(text(f'SELECT max(rowid) FROM "{table.name}"')).scalar() or 0)

    def run_lock(self, engine: Engine, shared: bool, holder: dict, busy: locks.Busy) \
            -> contextlib.AbstractContextManager[None]:
        """`flock` on a file beside the warehouse; an in-memory database has no one to share it with."""
        database = engine.url.database
        if not database or database == ":memory:":
            return contextlib.nullcontext()
        return locks.file_lock(Path(database), shared, holder, busy)

    def insert_rows(self, conn: Connection, table: Table, frame: pd.DataFrame) -> int:
        return bulk.executemany(conn, table, frame)

    def insert_new(self, conn: Connection, table: Table, key: str, frame: pd.DataFrame,
                   cols: Sequence[str]) -> pd.Series:
        """Row by row, ON CONFLICT DO NOTHING; which went in is looked up (delivery-day index) only when
        some did not."""
        if bulk.executemany(conn, table, frame[list(cols)], unless_key=key) == len(frame):
            return pd.Series(True, index=frame.index)
        return bulk.lines_of_file(conn, table, frame)

    def keys_present(self, conn: Connection, table: Table, key: str, keys: pd.Series, cols: str) -> Sequence[Row]:
        return bulk.json_keys_present(conn, table, key, keys, cols)

    def delete_keys(self, conn: Connection, table: Table, key: str, keys: pd.Series) -> int:
        return bulk.json_delete_keys(conn, table, key, keys)


# SQLite has json_extract built in; this gives PostgreSQL the same for simple paths ('$.a.b').
_PG_JSON_EXTRACT = """CREATE OR REPLACE FUNCTION json_extract(doc text, path text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT CAST(doc AS jsonb) #>> string_to_array(substr(path, 3), '.') $$"""


class PostgresDialect(Dialect):
    name = "postgresql"
    temp_schema = "pg_temp"
    has_roles = True
    alters_in_batches = False
    rule_macros = {  # dates are cast to timestamps without time zone: no session time zone in the arithmetic
        "month_start": lambda x: f"CAST(date_trunc('month', CAST({x} AS TIMESTAMP)) AS DATE)",
        "next_month": lambda x: f"CAST(date_trunc('month', CAST({x} AS TIMESTAMP)) + INTERVAL '1 month' AS DATE)",
        "month_end": lambda x: f"CAST(date_trunc('month', CAST({x} AS TIMESTAMP)) + INTERVAL '1 month' "
                               f"- INTERVAL '1 day' AS DATE)",
        "date_text": lambda x: f"to_char(CAST({x} AS TIMESTAMP), 'YYYY-MM-DD')",
        "month_text": lambda x: f"to_char(CAST({x} AS TIMESTAMP), 'YYYY-MM')",
        "over_a_year_after": lambda later, earlier: f"({later} > CAST({earlier} + INTERVAL '1 year' AS DATE))",
    }

    def create_engine(self, url: str) -> Engine:
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)

    def view_sql(self, name: str, sql: str, start: int, end: int) -> str:
        """WITH (security_invoker = true): whoever queries the view is held to their own privileges and
        row-level security, not to the owner's."""
        return sql[:start] + f"CREATE VIEW {name} WITH (security_invoker = true) AS" + sql[end:]

    def view_functions(self) -> Sequence[str]:
        return (_PG_JSON_EXTRACT,)

    def rows_with_keys(self, conn: Connection, table: str, column: str, keys: str) -> str:
        # a semi-join PostgreSQL may start from either side (a join back from a few flagged rows then looks
        # them up by index)
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        return f"SELECT * FROM {schema}.{table} WHERE {column} IN (SELECT {column} FROM pg_temp.{keys})"

    def count_rows(self, conn: Connection, table: str) -> None:
        """PostgreSQL never analyses temporary tables itself (SQLite's plans here do not depend on it)."""
        conn.exec_driver_sql(f"ANALYZE {table}")

    def estimated_rows(self, conn: Connection, table: Table) -> int:
        """The statistics' estimate (counted when the table was never analysed)."""
        n = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                         {"t": table.name}).scalar()
        if n is None or n < 0:
            n = conn.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar()
        return int(n or 0)

    def refresh_statistics(self, engine: Engine, written: Mapping[str, int]) -> list[str]:
        """VACUUM (ANALYZE) each table that was never analysed or got at least a tenth of its rows, as
        autovacuum would, whether or not it runs (it is off on some servers, and lags a bulk load on all):
        the planner gets the new rows' statistics, and the visibility map lets the rules' index-only scans
        skip the table (at a million people one rule went from 35 s to 9 s). SQLite needs neither."""
        done = []
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name, rows in sorted(written.items()):
                known = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                                     {"t": name}).scalar()
                if rows > 0 and (known is None or known < 0 or rows >= CHANGED_SHARE * known + 50):
                    conn.execute(text(f'VACUUM (ANALYZE) "{name}"'))
                    done.append(name)
        return done

    def prefer_index_reads(self, conn: Connection) -> None:
        """random_page_cost 1.1, as for SSDs and cached tables: with the default 4 PostgreSQL scans a whole
        fact table rather than look up one county's people through an index."""
        conn.exec_driver_sql("SET LOCAL random_page_cost = 1.1")

    def one_at_a_time(self, conn: Connection, what: str) -> None:
        """A transaction advisory lock."""
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:what))"), {"what": f"risk.{what}"})

    def run_lock(self, engine: Engine, shared: bool, holder: dict, busy: locks.Busy) \
            -> contextlib.AbstractContextManager[None]:
        """A session advisory lock on a connection of its own."""
        return locks.advisory_lock(engine, shared, holder, busy)

    def in_code_point_order(self, column):
        """The C collation (SQLite compares text byte by byte already; PostgreSQL would follow the
        database's collation)."""
        return column.collate("C")

    def server_pid(self, conn: Connection) -> int | None:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar() or 0)

    def insert_rows(self, conn: Connection, table: Table, frame: pd.DataFrame) -> int:
        return bulk.copy(conn, table, frame)

    def insert_new(self, conn: Connection, table: Table, key: str, frame: pd.DataFrame,
                   cols: Sequence[str]) -> pd.Series:
        """COPY the whole file; only when the key refuses a row look the keys up in one join and COPY the new
        rows."""
        return bulk.copy_new(conn, table, key, frame, cols,
                             lambda keys: self.keys_present(conn, table, key, keys, f't."{key}"'))

    def keys_present(self, conn: Connection, table: Table, key: str, keys: pd.Series, cols: str) -> Sequence[Row]:
        bulk.key_table(conn, "incoming_key", keys)
        return conn.execute(text(f'SELECT {cols} FROM "{table.name}" t JOIN incoming_key i ON t."{key}" = i.k')).all()

    def delete_keys(self, conn: Connection, table: Table, key: str, keys: pd.Series) -> int:
        bulk.key_table(conn, "doomed_key", keys)
        return conn.execute(text(f'DELETE FROM "{table.name}" WHERE "{key}" IN (SELECT k FROM doomed_key)')).rowcount


SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()
_BY_NAME: dict[str, Dialect] = {d.name: d for d in (SQLITE, POSTGRES)}


def _named(name: str) -> Dialect:
    found = _BY_NAME.get(name)
    if found is None:
        raise ConfigError(f"仓库须为 SQLite 或 PostgreSQL / the warehouse must be SQLite or PostgreSQL, not {name!r}")
    return found

