"""accounts: a supervisor's language (and later password)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("language", sa.String(length=2), server_default="zh", nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_account")),
    )


def downgrade() -> None:
    op.drop_table("account")
