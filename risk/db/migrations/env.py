"""Alembic environment: the URL comes from the caller (risk.db.gateway.migrate), never from a file."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from risk.db.dialect import Dialect
from risk.db.tables import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///var/risk.db")
    with engine.begin() as conn:
        _run(conn)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=Dialect.of(connection).alters_in_batches, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
