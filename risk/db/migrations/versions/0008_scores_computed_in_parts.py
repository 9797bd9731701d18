"""scores computed in parts (one county at a time) before the city-wide ranking

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 09:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_part",
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("top_features", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("features", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_score_part")),
    )


def downgrade() -> None:
    op.drop_table("score_part")
