"""The schema comes only from Alembic migrations, and the migrations build exactly the tables the code uses."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from risk.db.gateway import engine_for, migrate
from risk.db.tables import metadata


def test_migrations_build_the_tables_the_code_declares(db_url):
    migrate(db_url)
    with engine_for(db_url).connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        tables = set(inspect(conn).get_table_names())
    assert differences == []
    assert set(metadata.tables) <= tables


def test_migrating_twice_changes_nothing(sqlite_url):
    migrate(sqlite_url)
    with engine_for(sqlite_url).connect() as conn:
        before = {t: [c["name"] for c in inspect(conn).get_columns(t)] for t in inspect(conn).get_table_names()}
    migrate(sqlite_url)
    with engine_for(sqlite_url).connect() as conn:
        after = {t: [c["name"] for c in inspect(conn).get_columns(t)] for t in inspect(conn).get_table_names()}
    assert before == after
