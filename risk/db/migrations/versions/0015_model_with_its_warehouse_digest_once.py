"""the model kept with its warehouse, each digest sent once

`model.skops`: the model's skops bytes, in the warehouse (models registered before this keep their file in
var/models until a night stores them: risk.scoring.registry.keep_in_warehouse). `notification`: a row per
delivery recorded when the digest is decided (due), taken by a sender (sending) and marked sent or failed,
with the message itself (`body`); `created_at` is when it was decided (for earlier rows, when they were
sent), `sent_at` stays empty until it is sent.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skops", sa.LargeBinary(), nullable=True))

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch_op.alter_column("sent_at", existing_type=sa.DateTime(), nullable=True)
    op.execute("UPDATE notification SET created_at = sent_at")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.alter_column("created_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.create_index(batch_op.f("ix_notification_status"), ["status"], unique=False)
        batch_op.create_check_constraint(op.f("ck_notification_status"),
                                         "status IN ('due', 'sending', 'sent', 'failed')")


def downgrade() -> None:
    # deliveries not yet sent cannot be kept in the earlier schema (sent_at NOT NULL): they are dropped
    op.execute("DELETE FROM notification WHERE status NOT IN ('sent', 'failed')")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_notification_status"), type_="check")
        batch_op.drop_index(batch_op.f("ix_notification_status"))
        batch_op.alter_column("sent_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_column("body")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("started_at")
        batch_op.drop_column("created_at")

    with op.batch_alter_table("model", schema=None) as batch_op:
        batch_op.drop_column("skops")
