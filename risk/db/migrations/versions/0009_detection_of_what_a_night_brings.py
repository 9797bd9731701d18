"""incremental detection: what each night's new facts touch

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# a night's detection finds the rows of the files it was told about again by their provenance
PROVENANCE_INDEXES = (("payment", "ix_payment_delivery_day"), ("card_event", "ix_card_event_delivery_day"),
                      ("recipient", "ix_recipient_delivery_day"), ("certification", "ix_certification_delivery_day"))
CERTIFICATION = "event_type = 'certification'"


def upgrade() -> None:
    op.create_table(
        "touch",
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("delivery_day", sa.String(length=10), nullable=True),
        sa.Column("source_file", sa.String(), nullable=True),
        sa.Column("person_id", sa.String(length=18), nullable=True),
        sa.Column("bank_account", sa.String(), nullable=True),
        sa.Column("period", sa.Date(), nullable=True),
        sa.CheckConstraint("(delivery_day IS NOT NULL AND source_file IS NOT NULL) OR person_id IS NOT NULL",
                           name=op.f("ck_touch_stored_or_removed")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_touch")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "touched_person",
        sa.Column("touch_seq", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.PrimaryKeyConstraint("touch_seq", "rule", "person_id", name=op.f("pk_touched_person")),
    )
    op.create_table(
        "detection_mark",
        sa.Column("part", sa.String(length=12), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("touch_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("part", "rule", name=op.f("pk_detection_mark")),
    )
    for table, name in PROVENANCE_INDEXES:
        op.create_index(name, table, ["delivery_day"], unique=False)
    # indexes that fit the rules: they read a person's periods and benefit types, an account's people per
    # period and a person's certification events from the index alone (the old ones are their prefixes)
    op.drop_index("ix_payment_person_id", table_name="payment")
    op.drop_index("ix_payment_bank_account_period", table_name="payment")
    op.create_index("ix_payment_person_id_period_benefit_type_bank_account", "payment",
                    ["person_id", "period", "benefit_type", "bank_account"])
    op.create_index("ix_payment_bank_account_period_person_id", "payment", ["bank_account", "period", "person_id"])
    op.create_index("ix_card_event_certification", "card_event", ["person_id", "occurred_on"],
                    sqlite_where=sa.text(CERTIFICATION), postgresql_where=sa.text(CERTIFICATION))


def downgrade() -> None:
    op.drop_index("ix_card_event_certification", table_name="card_event")
    op.drop_index("ix_payment_bank_account_period_person_id", table_name="payment")
    op.drop_index("ix_payment_person_id_period_benefit_type_bank_account", table_name="payment")
    op.create_index("ix_payment_bank_account_period", "payment", ["bank_account", "period"])
    op.create_index("ix_payment_person_id", "payment", ["person_id"])
    for table, name in PROVENANCE_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_table("detection_mark")
    op.drop_table("touched_person")
    op.drop_table("touch")
