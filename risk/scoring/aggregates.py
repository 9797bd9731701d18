"""Reading per-person aggregates from the warehouse: the SQL idioms the features share, and results as
DataFrames.

Two things keep SQLite fast (a 100,000-person year: ~2M card events, ~1.2M payments):
- the per-person GROUP BYs group by `person_key(person_id)`, an expression (substr of the whole ID), not the bare
  column: on the bare column SQLite walks the person_id index and fetches every row at random, 4-5 times
  slower than one sequential scan and a sort. PostgreSQL hashes either way.
- dates come back as text on SQLite (`as_text`) and pandas parses them in one vectorised call, instead of
  a Python date object per value; PostgreSQL's driver returns dates, which pandas takes as they are.
Results are fetched in slices of `FETCH_ROWS`, so that a million people never sit in memory as Python
tuples at once.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
from sqlalchemy import BigInteger, Connection, String, and_, case, cast, func, literal_column, type_coerce

ID_LENGTH = 18
FETCH_ROWS = 100_000


def for_people(conn: Connection, query, people: pd.Index, chunk: int = 10_000) -> pd.DataFrame:
    """`query(ids)` for a few people (found through the person_id index), one frame indexed by person_id."""
    return in_chunks(conn, query, [str(x) for x in people], chunk).set_index("person_id")


def in_chunks(conn: Connection, query, values: list[str], chunk: int = 10_000) -> pd.DataFrame:
    """`query(values)` over the values 10,000 at a time, one frame. Chunks keep the bound parameters inside
    every database's limit (SQLite 32,766 since 3.32, PostgreSQL 65,535) while one statement covers
    10,000 values: a planner without statistics that scans the table instead of using the index still
    scans it once, not once per few hundred values."""
    frames = [frame(conn, query(values[i:i + chunk]), index=None) for i in range(0, len(values), chunk)]
    found = [f for f in frames if len(f)]  # an empty frame's object columns would turn strings into objects
    if not found:
        return pd.DataFrame(columns=list(query([]).selected_columns.keys()))
    return pd.concat(found, ignore_index=True)


def person_key(column):
    """The person_id as an expression, for GROUP BY: see the module docstring (SQLite's index walk).
    Constants are literal so that the SELECT and GROUP BY expressions are textually equal (PostgreSQL)."""
    return func.substr(column, literal_column("1"), literal_column(str(ID_LENGTH)))


def count_if(condition):
    return func.sum(case((condition, 1), else_=0))


def sum_int(value):
    """SUM as a BIGINT: PostgreSQL sums BIGINT into NUMERIC, which psycopg reads as a Decimal per value."""
    return cast(func.sum(value), BigInteger)


def as_text(column):
    """A date column read back without per-value conversion (text on SQLite, a date on PostgreSQL)."""
    return type_coerce(column, String)


def dates(values: pd.Series) -> pd.Series:
    """ISO date text (SQLite) or dates (PostgreSQL) as datetime64, missing as NaT."""
    present = values.dropna()
    if present.empty:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    if isinstance(present.iloc[0], str):
        return pd.to_datetime(values, format="%Y-%m-%d")
    return pd.to_datetime(values)


def within_window(day_column, start: date, as_of: date):
    return and_(day_column > start, day_column <= as_of)


def frame(conn: Connection, query, index: str | None = "person_id") -> pd.DataFrame:
    """Run `query`; its `pid` column (if any) becomes person_id; the index when `index` is given."""
    result = conn.execute(query)
    columns = list(result.keys())
    # The driver's own tuples, a slice at a time: the selected columns need no SQLAlchemy result processing
    # (dates come as text, see as_text), and Row objects cost more than the query on big aggregates. SQLite
    # steps the statement per slice; psycopg holds the whole result in libpq's compact form and makes
    # Python tuples a slice at a time. (stream_results would prefetch rows into SQLAlchemy's own buffer.)
    cursor = result.cursor
    slices = []
    while cursor is not None:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            break
        slices.append(pd.DataFrame.from_records(rows, columns=columns))
        del rows
    result.close()
    out = pd.concat(slices, ignore_index=True) if slices else pd.DataFrame(columns=columns)
    out = out.rename(columns={"pid": "person_id"})
    for column in out.columns:  # PostgreSQL's NUMERIC (MIN/MAX of sums, AVG) arrives as Decimal
        values = out[column].dropna()
        if out[column].dtype == object and len(values) and isinstance(values.iloc[0], Decimal):
            out[column] = out[column].astype(float)
    return out.set_index(index) if index else out


def share(part: pd.Series, whole: pd.Series) -> pd.Series:
    """part / whole, NaN (neutral later) where whole is 0 or missing."""
    whole = whole.astype(float)
    return part.astype(float) / whole.where(whole > 0)
