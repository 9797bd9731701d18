"""the web app at a million people: an alert's area and what the pages count, in one index

The queue's count, the dashboard's figures and the search's area filter read, for every alert in a
user's area, its village, status, level, snooze, month and amount (and the alert id, to join the
recoveries and the audit log): this index holds them all, so those pages read it alone and not the
alert rows with their evidence. It begins with the village code, so it serves the area ranges that the
old index on the village code alone served, which is dropped.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

AREA = ["village_code", "status", "level", "snoozed_until", "first_seen", "amount_at_risk_cents", "alert_id"]


def upgrade() -> None:
    op.create_index("ix_alert_area", "alert", AREA)
    op.drop_index("ix_alert_village_code", table_name="alert")


def downgrade() -> None:
    op.create_index("ix_alert_village_code", "alert", ["village_code"])
    op.drop_index("ix_alert_area", table_name="alert")
