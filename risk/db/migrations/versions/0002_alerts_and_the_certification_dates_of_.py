"""alerts and the certification dates of every recipients delivery

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:12:49.166548
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=True),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("amount_at_risk_cents", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.String(length=10), nullable=False),
        sa.Column("last_changed", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("evidence_count", sa.Integer(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.CheckConstraint("severity IN ('high', 'medium', 'low')", name=op.f("ck_alert_severity")),
        sa.CheckConstraint("amount_at_risk_cents >= 0", name=op.f("ck_alert_amount_not_negative")),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert")),
        sa.UniqueConstraint("rule", "person_id", name=op.f("uq_alert_rule_person_id")),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_village_code"), ["village_code"], unique=False)

    op.create_table(
        "certification",
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("certified_on", sa.Date(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "delivery_day", "source_line", name=op.f("pk_certification")),
    )


def downgrade() -> None:
    op.drop_table("certification")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_village_code"))
        batch_op.drop_index(batch_op.f("ix_alert_person_id"))

    op.drop_table("alert")
