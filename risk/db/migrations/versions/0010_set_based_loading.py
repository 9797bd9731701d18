"""set-based loading: no content hash and no UTC copy on every fact row

A fact row's content hash is only ever compared with other deliveries of the same key, so it is computed
when a key is delivered again (from the row's values) instead of being stored with every row; a re-delivery
or conflict keeps its hash in `sighting`, where an older version from another day (superseded) needs none.
`card_event.occurred_utc` repeated what `occurred_at` (as delivered, with its offset), `occurred_on` and
`occurred_hour` already hold, and nothing read it. (The big fact tables' index on the delivery day, which
the nightly ledger counts through, comes with 0009.)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FACT_TABLES = ("region", "recipient", "supervisor", "payment", "card_event", "death", "incarceration")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in FACT_TABLES:
        if sqlite:  # SQLite 3.35+ drops a column in place; Alembic would copy the table
            op.execute(f'ALTER TABLE "{table}" DROP COLUMN row_hash')
        else:
            op.drop_column(table, "row_hash")
    if sqlite:
        op.execute('ALTER TABLE "card_event" DROP COLUMN occurred_utc')
    else:
        op.drop_column("card_event", "occurred_utc")
    with op.batch_alter_table("sighting") as batch:
        batch.alter_column("row_hash", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("sighting") as batch:
        batch.alter_column("row_hash", existing_type=sa.String(length=32), nullable=False)
    op.add_column("card_event", sa.Column("occurred_utc", sa.DateTime(), nullable=True))
    for table in FACT_TABLES:
        op.add_column(table, sa.Column("row_hash", sa.String(length=32), nullable=True))
