"""warehouse facts, deliveries and the quality queue

Revision ID: 0001
Revises:
Create Date: 2026-11-27 06:12:49.070993
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_event",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("card_no", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.String(), nullable=False),
        sa.Column("occurred_utc", sa.DateTime(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("occurred_hour", sa.SmallInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("institution_id", sa.String(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("admitted_on", sa.Date(), nullable=True),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_card_event_amount_not_negative")),
        sa.CheckConstraint("occurred_hour BETWEEN 0 AND 23", name=op.f("ck_card_event_hour")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_card_event")),
    )
    with op.batch_alter_table("card_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_event_person_id"), ["person_id"], unique=False)

    op.create_table(
        "death",
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("person_id_delivered", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("death_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_death")),
    )
    with op.batch_alter_table("death", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_death_person_id"), ["person_id"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_delivery")),
    )
    op.create_table(
        "delivery_file",
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rejected_whole", sa.Boolean(), nullable=False),
        sa.Column("load_ms", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_day", "source", name=op.f("pk_delivery_file")),
    )
    op.create_table(
        "incarceration",
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("person_id_delivered", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("sentence_type", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_incarceration")),
    )
    with op.batch_alter_table("incarceration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incarceration_person_id"), ["person_id"], unique=False)

    op.create_table(
        "payment",
        sa.Column("payment_id", sa.String(), nullable=False),
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("benefit_type", sa.String(length=24), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("bank_account", sa.String(), nullable=False),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_payment_amount_positive")),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_payment")),
    )
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.create_index("ix_payment_bank_account_period", ["bank_account", "period"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_person_id"), ["person_id"], unique=False)

    op.create_table(
        "quality_issue",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("record_key", sa.String(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("field", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('file', 'row', 'invalid', 'reference', 'conflict')", name=op.f("ck_quality_issue_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_issue")),
        sa.UniqueConstraint(
            "source", "delivery_day", "line", name=op.f("uq_quality_issue_source_delivery_day_line")
        ),
    )
    with op.batch_alter_table("quality_issue", schema=None) as batch_op:
        batch_op.create_index("ix_quality_issue_source_record_key", ["source", "record_key"], unique=False)

    op.create_table(
        "recipient",
        sa.Column("person_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("bank_account", sa.String(), nullable=False),
        sa.Column("card_no", sa.String(), nullable=False),
        sa.Column("last_certified_on", sa.Date(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_recipient")),
    )
    with op.batch_alter_table("recipient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recipient_village_code"), ["village_code"], unique=False)

    op.create_table(
        "region",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "level IN ('city', 'county', 'township', 'village')", name=op.f("ck_region_level")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_region")),
    )
    op.create_table(
        "sighting",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("within_file", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('redelivery', 'conflict', 'superseded')", name=op.f("ck_sighting_kind")),
        sa.PrimaryKeyConstraint("source", "delivery_day", "source_line", name=op.f("pk_sighting")),
    )
    with op.batch_alter_table("sighting", schema=None) as batch_op:
        batch_op.create_index("ix_sighting_source_record_key", ["source", "record_key"], unique=False)

    op.create_table(
        "supervisor",
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("notify_url", sa.String(), nullable=True),
        sa.Column("delivery_day", sa.String(length=10), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("source_line", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_supervisor")),
    )


def downgrade() -> None:
    op.drop_table("supervisor")
    with op.batch_alter_table("sighting", schema=None) as batch_op:
        batch_op.drop_index("ix_sighting_source_record_key")

    op.drop_table("sighting")
    op.drop_table("region")
    with op.batch_alter_table("recipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recipient_village_code"))

    op.drop_table("recipient")
    with op.batch_alter_table("quality_issue", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_issue_source_record_key")

    op.drop_table("quality_issue")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_person_id"))
        batch_op.drop_index("ix_payment_bank_account_period")

    op.drop_table("payment")
    with op.batch_alter_table("incarceration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incarceration_person_id"))

    op.drop_table("incarceration")
    op.drop_table("delivery_file")
    op.drop_table("delivery")
    with op.batch_alter_table("death", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_death_person_id"))

    op.drop_table("death")
    with op.batch_alter_table("card_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_event_person_id"))

    op.drop_table("card_event")
