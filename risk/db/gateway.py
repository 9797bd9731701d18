"""The one way to the warehouse: engines, migrations, transactions and bulk writes.

Dialect differences (SQLite pragmas, PostgreSQL COPY) live here and nowhere else.
"""
from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, text
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
    if is_postgres(conn):
        n = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                         {"t": table.name}).scalar()
        if n is None or n < 0:
            n = conn.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar()
        return int(n or 0)
    return int(conn.execute(text(f'SELECT max(rowid) FROM "{table.name}"')).scalar() or 0)


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


CHANGED_SHARE = 0.1  # PostgreSQL's own threshold for analysing a table again (autovacuum_analyze_scale_factor)


def refresh_statistics(url: str, written: Mapping[str, int]) -> list[str]:
    """After a load, on PostgreSQL: VACUUM (ANALYZE) each table of `written` (table name -> rows the load
    wrote) that was never analysed or got at least a tenth of its rows, as autovacuum would, whether or not
    it runs (it is off on some servers, and lags a bulk load on all): the planner gets the new rows'
    statistics, and the visibility map lets the rules' index-only scans skip the table (at a million people
    one rule went from 35 s to 9 s). SQLite needs neither. Returns the tables refreshed."""
    engine = engine_for(url)
    if engine.dialect.name != "postgresql":
        return []
    done = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name, rows in sorted(written.items()):
            known = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                                 {"t": name}).scalar()
            if rows > 0 and (known is None or known < 0 or rows >= CHANGED_SHARE * known + 50):
                conn.execute(text(f'VACUUM (ANALYZE) "{name}"'))
                done.append(name)
    return done


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
    """Insert every row of `frame` (columns named as the table's) into `table`; COPY on PostgreSQL.

    Values go in as they are: dates as `YYYY-MM-DD` text or date objects, missing values as None/NaN/NA."""
    if frame.empty:
        return 0
    cols = [c.name for c in table.columns if c.name in frame.columns]
    frame = frame[cols]
    if is_postgres(conn):
        return _copy(conn, table, frame)
    return _sqlite_executemany(conn, table, frame)


def _python_values(col: pd.Series, kind: str) -> Iterable[Any]:
    """The column as Python values sqlite3 binds directly, missing as None; a column of one value repeats
    it without a list (the delivery day and file of a whole file)."""
    if kind in ("Date", "DateTime") and not pd.api.types.is_string_dtype(col.dtype):
        fmt = "%Y-%m-%d" if kind == "Date" else "%Y-%m-%d %H:%M:%S.%f"
        col = pd.to_datetime(col, errors="coerce").dt.strftime(fmt).astype("str")
    if kind == "Boolean":
        return col.astype(object).where(col.isna(), col.astype(bool).astype(int)).tolist()
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
        values = pa.array(col, from_pandas=True)
        if values.null_count == 0 and len(values) > 1 and pc.count_distinct(values).as_py() == 1:
            return itertools.repeat(values[0].as_py(), len(values))
        return values.to_pylist()
    if pd.api.types.is_integer_dtype(col.dtype) and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
        return col.tolist()
    return col.astype(object).where(col.notna(), None).tolist()


CHUNK = 50_000  # rows turned into Python values or CSV text at a time: bounds the memory of a big file (a
# year of a 100,000-person city's card events in one file peaked 140 MiB lower than with 200,000, as fast)


def _sqlite_executemany(conn: Connection, table: Table, frame: pd.DataFrame, unless_key: str | None = None) -> int:
    """sqlite3's executemany over the columns' Python values, dates in the text form SQLAlchemy's SQLite
    types store (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS.ffffff`): per-value type processing was the slowest part
    of loading. `unless_key`: a row whose key the table holds already is left out (ON CONFLICT DO NOTHING).
    Returns the rows inserted."""
    names = ", ".join(f'"{c}"' for c in frame.columns)
    marks = ", ".join("?" for _ in frame.columns)
    kinds = [type(table.c[n].type).__name__ for n in frame.columns]
    unless = f' ON CONFLICT ("{unless_key}") DO NOTHING' if unless_key else ""
    raw: Any = conn.connection.dbapi_connection  # sqlite3's own executemany takes the rows as a stream
    cursor = raw.cursor()
    inserted = 0
    try:
        for start in range(0, len(frame), CHUNK):
            part = frame.iloc[start:start + CHUNK]
            columns = [_python_values(part[n], kind) for n, kind in zip(frame.columns, kinds, strict=True)]
            cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks}){unless}',
                               zip(*columns, strict=False))
            inserted += cursor.rowcount
    finally:
        cursor.close()
    return inserted


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
    if is_postgres(conn):
        import psycopg

        try:
            with conn.begin_nested():
                _copy(conn, table, frame[cols])
            return pd.Series(True, index=frame.index)
        except psycopg.errors.UniqueViolation:
            pass
        held = keys_present(conn, table, key, frame[key], [])
        new = ~frame[key].astype("str").isin(set(held[key]))
        _copy(conn, table, frame.loc[new, cols])
        return new
    if _sqlite_executemany(conn, table, frame[cols], unless_key=key) == len(frame):
        return pd.Series(True, index=frame.index)
    day, file = frame["delivery_day"].iloc[0], frame["source_file"].iloc[0]
    standing = {line for (line,) in conn.exec_driver_sql(
        f'SELECT source_line FROM "{table.name}" WHERE delivery_day = ? AND source_file = ?', (day, file)).all()}
    return frame["source_line"].isin(standing)


def _copy(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """COPY in CSV format, written by Arrow a slice at a time: text is quoted, so quotes, tabs, line breaks
    and backslashes arrive as they were. Missing values are written empty and FORCE_NULL reads every empty
    field as NULL: the warehouse keeps no empty strings (an empty delivered value is a missing one)."""
    raw: Any = conn.connection.dbapi_connection  # psycopg's connection: COPY is not in the DB-API
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    with raw.cursor() as cur:
        with cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN WITH (FORMAT csv, FORCE_NULL ({cols}))') as copy:
            for start in range(0, len(frame), CHUNK):
                # one chunk per column: pyarrow's CSV writer garbles a column whose first chunk is empty
                # (pandas leaves such chunks after a concat with an empty frame)
                part = pa.Table.from_pandas(_arrow_ready(frame.iloc[start:start + CHUNK]),
                                            preserve_index=False).combine_chunks()
                buf = pa.BufferOutputStream()
                pacsv.write_csv(part, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
                copy.write(buf.getvalue().to_pybytes())
    return len(frame)


def _arrow_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of Python objects (dates, datetimes, mixed None) as text Arrow can write."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object:
            present = col.dropna()
            sample = present.iloc[0] if len(present) else None
            if isinstance(sample, datetime):
                col = pd.to_datetime(col).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
            elif isinstance(sample, date):
                col = col.map(lambda d: d.isoformat() if d is not None and d == d else None)
            elif isinstance(sample, bool):
                col = col.map(lambda b: None if b is None else ("true" if b else "false"))
            else:
                col = col.map(lambda v: None if v is None or v != v else str(v))
            col = col.astype("str")
        elif pd.api.types.is_bool_dtype(col.dtype):
            col = col.map({True: "true", False: "false"}).astype("str")
        out[name] = col
    return pd.DataFrame(out, index=frame.index)


def _key_table(conn: Connection, name: str, keys: pd.Series) -> None:
    """(PostgreSQL) a temporary one-column table `name` (k) holding `keys` (distinct), filled by COPY."""
    conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} (k VARCHAR(200) PRIMARY KEY)"))
    conn.execute(text(f"DELETE FROM {name}"))
    values = pa.chunked_array([pa.array(keys.astype("str"), from_pandas=True)]).combine_chunks()
    buf = pa.BufferOutputStream()
    pacsv.write_csv(pa.table({"k": values}), buf, pacsv.WriteOptions(include_header=False))
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {name} (k) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buf.getvalue().to_pybytes())


def keys_present(conn: Connection, table: Table, key: str, keys: pd.Series, columns: list[str]) -> pd.DataFrame:
    """Rows of `table` whose `key` is among `keys` (distinct), with `columns`; keys as text. One join through
    the key's index: on SQLite the keys go in as JSON arrays (json_each), on PostgreSQL through a temporary
    table filled by COPY."""
    if keys.empty:
        return pd.DataFrame({c: pd.Series(dtype="str" if c == key else object) for c in [key, *columns]})
    cols = ", ".join(f't."{c}"' for c in [key, *columns])
    if is_postgres(conn):
        _key_table(conn, "incoming_key", keys)
        rows = conn.execute(text(f'SELECT {cols} FROM "{table.name}" t JOIN incoming_key i ON t."{key}" = i.k')).all()
    else:
        wanted = pa.array(keys.astype("str"), from_pandas=True)
        rows = []
        for start in range(0, len(wanted), KEY_CHUNK):  # SQLite holds each chunk's JSON and IN list in memory
            rows += conn.exec_driver_sql(
                f'SELECT {cols} FROM "{table.name}" t WHERE t."{key}" IN (SELECT value FROM json_each(?))',
                (json.dumps(wanted[start:start + KEY_CHUNK].to_pylist(), ensure_ascii=False),)).all()
    found = pd.DataFrame(rows, columns=[key, *columns])
    found[key] = found[key].astype("str")
    return found


KEY_CHUNK = 100_000


def delete_keys(conn: Connection, table: Table, key: str, keys: pd.Series) -> int:
    """Delete the rows of `table` whose `key` is among `keys` (distinct)."""
    if keys.empty:
        return 0
    if is_postgres(conn):
        _key_table(conn, "doomed_key", keys)
        return conn.execute(text(f'DELETE FROM "{table.name}" WHERE "{key}" IN (SELECT k FROM doomed_key)')).rowcount
    doomed = pa.array(keys.astype("str"), from_pandas=True)
    return sum(conn.exec_driver_sql(f'DELETE FROM "{table.name}" WHERE "{key}" IN (SELECT value FROM json_each(?))',
                                    (json.dumps(doomed[start:start + KEY_CHUNK].to_pylist(), ensure_ascii=False),)
                                    ).rowcount for start in range(0, len(doomed), KEY_CHUNK))


def in_code_point_order(conn: Connection, column):
    """`column` for ORDER BY in code-point order, as Python sorts strings: SQLite compares text byte by byte
    already; PostgreSQL would follow the database's collation."""
    return column.collate("C") if is_postgres(conn) else column
