"""How many rows move at once, per database: sqlite3's executemany and json_each on SQLite, COPY and
temporary key tables on PostgreSQL. Only risk.db.dialect calls these (each dialect its own); the rest of
the project writes through risk.db.gateway (insert_frame, insert_new, keys_present, delete_keys)."""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Row, Table, text

CHUNK = 50_000  # rows turned into Python values or CSV text at a time: bounds the memory of a big file (a
# year of a 100,000-person city's card events in one file peaked 140 MiB lower than with 200,000, as fast)
KEY_CHUNK = 100_000  # keys per JSON array (SQLite holds each chunk's JSON and IN list in memory)


# ---------------------------------------------------------------- SQLite: executemany, json_each

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


def executemany(conn: Connection, table: Table, frame: pd.DataFrame, unless_key: str | None = None) -> int:
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


def lines_of_file(conn: Connection, table: Table, frame: pd.DataFrame) -> pd.Series:
    """Which rows of `frame` (one delivered file's) the table holds, by their line (through the delivery-day
    index): after an insert that the key turned some rows away from, the rows that went in."""
    day, file = frame["delivery_day"].iloc[0], frame["source_file"].iloc[0]
    standing = {line for (line,) in conn.exec_driver_sql(
        f'SELECT source_line FROM "{table.name}" WHERE delivery_day = ? AND source_file = ?', (day, file)).all()}
    return frame["source_line"].isin(standing)


def _json_chunks(keys: pd.Series) -> Iterable[str]:
    values = pa.array(keys.astype("str"), from_pandas=True)
    for start in range(0, len(values), KEY_CHUNK):
        yield json.dumps(values[start:start + KEY_CHUNK].to_pylist(), ensure_ascii=False)


def json_keys_present(conn: Connection, table: Table, key: str, keys: pd.Series, cols: str) -> Sequence[Row]:
    """The rows (columns `cols`, of `table` as t) whose `key` is among `keys`: the keys go in as JSON arrays."""
    rows: list[Row] = []
    for chunk in _json_chunks(keys):
        rows += conn.exec_driver_sql(
            f'SELECT {cols} FROM "{table.name}" t WHERE t."{key}" IN (SELECT value FROM json_each(?))', (chunk,)).all()
    return rows


def json_delete_keys(conn: Connection, table: Table, key: str, keys: pd.Series) -> int:
    return sum(conn.exec_driver_sql(f'DELETE FROM "{table.name}" WHERE "{key}" IN (SELECT value FROM json_each(?))',
                                    (chunk,)).rowcount for chunk in _json_chunks(keys))


# ---------------------------------------------------------------- PostgreSQL: COPY, temporary key tables

def copy(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
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


def key_table(conn: Connection, name: str, keys: pd.Series) -> None:
    """A temporary one-column table `name` (k) holding `keys` (distinct), filled by COPY."""
    conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} (k VARCHAR(200) PRIMARY KEY)"))
    conn.execute(text(f"DELETE FROM {name}"))
    values = pa.chunked_array([pa.array(keys.astype("str"), from_pandas=True)]).combine_chunks()
    buf = pa.BufferOutputStream()
    pacsv.write_csv(pa.table({"k": values}), buf, pacsv.WriteOptions(include_header=False))
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {name} (k) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buf.getvalue().to_pybytes())


def copy_new(conn: Connection, table: Table, key: str, frame: pd.DataFrame, cols: Sequence[str],
             held_keys) -> pd.Series:
    """COPY the whole file; only when the key refuses a row (the COPY then stops, undone to a savepoint) look
    the keys up (`held_keys(keys)`: the rows holding them, key first) and COPY the new rows."""
    import psycopg

    try:
        with conn.begin_nested():
            copy(conn, table, frame[list(cols)])
        return pd.Series(True, index=frame.index)
    except psycopg.errors.UniqueViolation:
        pass
    held = {str(row[0]) for row in held_keys(frame[key])}
    new = ~frame[key].astype("str").isin(held)
    copy(conn, table, frame.loc[new, list(cols)])
    return new
