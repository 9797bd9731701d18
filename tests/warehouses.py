"""Empty warehouses for tests: a SQLite file, or a PostgreSQL database of its own, dropped afterwards.

PostgreSQL comes from RISK_TEST_PG_URL (default: the local server, trust auth). Where none answers, the
PostgreSQL cases are skipped, except under CI (CI=true), where they fail: CI must prove both databases.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("RISK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# columns that record when or how long a run worked, not what it loaded (card_event.occurred_at is data);
# a model file's sha256 also covers the zip timestamps skops writes, so two equal models differ there
BOOKKEEPING = re.compile(
    r"^((created|updated|loaded|started|finished|changed|trained|raised|escalated|sent)_at"
    r"|(\w+_)?(ms|seconds|duration\w*)|seconds|sha256)$"
)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database's URL; the database is dropped afterwards."""
    from risk.db.gateway import engine_for

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except Exception:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}; .ci/run must start it")
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    name = f"risk_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def kind_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


@contextlib.contextmanager
def warehouse(kind: str, folder: Path, name: str = "warehouse.db") -> Iterator[str]:
    """An empty warehouse URL of `kind` ("sqlite" or "postgres")."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / name}"
        return
    with pg_database() as url:
        yield url


def warehouse_rows(url: str) -> dict[str, list[tuple]]:
    """Every table's rows (sorted), without bookkeeping columns: what two runs that did the same work hold
    alike."""
    import sqlalchemy as sa

    engine = create_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables: dict[str, list[tuple]] = {}
        with engine.connect() as conn:
            for name in inspector.get_table_names():
                columns = [
                    c["name"] for c in inspector.get_columns(name) if not BOOKKEEPING.search(c["name"])
                ]
                query = sa.select(*(sa.column(c) for c in columns)).select_from(sa.table(name))
                tables[name] = sorted((tuple(row) for row in conn.execute(query)), key=repr)
        return tables
    finally:
        engine.dispose()
