"""model registry and behaviour scores

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:27:02.827667
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model",
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("file", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("trained_at", sa.DateTime(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("libraries", sa.Text(), nullable=False),
        sa.Column("train_scores", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.CheckConstraint("status IN ('current', 'retired')", name=op.f("ck_model_status")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model")),
    )
    op.create_table(
        "score",
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("top_features", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_score")),
    )
    op.create_table(
        "score_night",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("quantiles", sa.Text(), nullable=False),
        sa.Column("drift", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("as_of", "model_version", name=op.f("pk_score_night")),
    )


def downgrade() -> None:
    op.drop_table("score_night")
    op.drop_table("score")
    op.drop_table("model")
