"""Shared fixtures: a warehouse on SQLite always, and on PostgreSQL for tests marked `postgres`.

PostgreSQL comes from RISK_TEST_PG_URL (default: the local server, trust auth). Each test gets a database
of its own, dropped afterwards. Where no PostgreSQL answers, the PostgreSQL cases are skipped, except
under CI (CI=true), where they fail: CI must prove both databases.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "sample"
PG_URL = os.environ.get("RISK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin():
    from sqlalchemy import create_engine

    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


def pg_available() -> bool:
    try:
        with _pg_admin().connect():
            return True
    except Exception:
        return False


def fresh_pg_database() -> str:
    """Create an empty database; return its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    if not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}; .ci/run must start it")
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    name = f"risk_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from risk.db.gateway import engine_for

    engine_for(url).dispose()
    engine_for.cache_clear()
    name = make_url(url).database
    with _pg_admin().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """An empty warehouse URL, once per database kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    url = fresh_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture(scope="session")
def sample_landing() -> Path:
    path = SAMPLE / "landing"
    if not path.is_dir():
        pytest.skip(f"the contract sample is not at {path}")
    return path


def copy_days(landing: Path, days: list[str], dest: Path) -> Path:
    """A landing folder holding only `days` of `landing`."""
    dest.mkdir(parents=True, exist_ok=True)
    for d in days:
        shutil.copytree(landing / d, dest / d)
    return dest
