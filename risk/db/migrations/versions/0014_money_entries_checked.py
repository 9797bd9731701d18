"""money entries checked: the recovery ledger takes reversing entries, and a reason where one is needed

A wrong recovery is undone by a reversing entry (the opposite amount, naming the entry it reverses, once, with
the reason) instead of never: the check that every amount is positive becomes "a positive entry, or a negative
one that reverses an entry and says why". `reason` also keeps why a recovery took the total past the amount
at risk.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ENTRY = ("(reverses IS NULL AND amount_cents > 0) OR "
         "(reverses IS NOT NULL AND amount_cents < 0 AND reason IS NOT NULL)")


def upgrade() -> None:
    with op.batch_alter_table("recovery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reverses", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_recovery_amount_positive"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_recovery_entry_or_reversal"), ENTRY)
        batch_op.create_unique_constraint(batch_op.f("uq_recovery_reverses"), ["reverses"])


def downgrade() -> None:
    # the old ledger knows no reversals: a reversed entry and its reversal (together zero) leave it, and the
    # reasons stay only in the audit log (alert_event)
    recovery = sa.table("recovery", sa.column("id", sa.Integer()), sa.column("reverses", sa.Integer()))
    reversed_ids = sa.select(recovery.c.reverses).where(recovery.c.reverses.is_not(None)).scalar_subquery()
    op.execute(recovery.delete().where(sa.or_(recovery.c.reverses.is_not(None), recovery.c.id.in_(reversed_ids))))
    with op.batch_alter_table("recovery", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_recovery_reverses"), type_="unique")
        batch_op.drop_constraint(batch_op.f("ck_recovery_entry_or_reversal"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_recovery_amount_positive"), "amount_cents > 0")
        batch_op.drop_column("reason")
        batch_op.drop_column("reverses")
