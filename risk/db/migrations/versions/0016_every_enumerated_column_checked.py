"""every enumerated column checked: the warehouse refuses a word it does not know

A CHECK constraint for every column that holds one of the system's words (risk.domain): an alert's status,
level (who must act: village, township, county) and rule; an audit-log entry's action and statuses; a
recovery's method; a digest delivery's channel; an account's language; a supervisor's role; and the rule
of detection's bookkeeping (touched_person, detection_mark: a rule code, or "*" for the mark of how far the
touches are translated). The columns already checked stay as they are (region.level, alert.severity,
notification.status, model.status).
Each is written as comparisons (`status = 'new' OR status = …`) rather than `IN (…)`, which costs SQLite's
bulk inserts a lookup table per row.

The words are written out here as they were when this migration was made (a migration must not follow
code that changes later): a new rule, status or action needs a migration of its own that widens its
constraint. A warehouse holding a word outside them is not changed: the upgrade stops and names the
column and the words, to be corrected first.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

STATUSES = ("new", "acknowledged", "investigating", "confirmed", "dismissed", "closed", "withdrawn")
RULES = ("deceased_payment", "card_after_death", "incarcerated_payment", "dual_benefit", "duplicate_payment",
         "shared_account", "underage_pension", "certification_overdue", "anomaly")

# table -> (constraint, column, the words it may hold; NULL always passes a CHECK)
CHECKS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "alert": (
        ("status", "status", STATUSES),
        ("level", "level", ("village", "township", "county")),
        ("rule", "rule", RULES),
    ),
    "alert_event": (
        ("action", "action", ("acknowledge", "investigate", "confirm", "dismiss", "close", "recover", "snooze",
                              "escalate", "reopen", "view_unmasked", "raise")),
        ("from_status", "from_status", STATUSES),
        ("to_status", "to_status", STATUSES),
    ),
    "recovery": (("method", "method", ("bank_return", "deduction", "repayment", "court", "other")),),
    "notification": (("channel", "channel", ("email", "url", "outbox", "none")),),
    "account": (("language", "language", ("zh", "en")),),
    "supervisor": (("role", "role", ("village", "township", "county", "city", "auditor")),),
    "touched_person": (("rule", "rule", RULES),),
    "detection_mark": (("rule", "rule", (*RULES, "*")),),
}


def one_of(column: str, words: tuple[str, ...]) -> str:
    """Comparisons rather than `IN (…)`, which SQLite answers with a lookup table built again for every row a
    statement inserts (see risk.db.tables.one_of)."""
    return " OR ".join(f"{column} = '{w}'" for w in words)


def _refuse_unknown(table: str, column: str, words: tuple[str, ...]) -> None:
    c = sa.column(column, sa.String())
    found = op.get_bind().execute(sa.select(c).select_from(sa.table(table, c)).where(
        c.is_not(None), c.not_in(words)).distinct().order_by(c)).scalars().all()
    if found:
        raise RuntimeError(f"{table}.{column} 含有未知的值 / holds values outside {', '.join(words)}: "
                           f"{', '.join(map(repr, found))}; correct them before upgrading")


def upgrade() -> None:
    for table, checks in CHECKS.items():
        for _, column, words in checks:
            _refuse_unknown(table, column, words)
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, words in checks:
                batch_op.create_check_constraint(op.f(f"ck_{table}_{name}"), one_of(column, words))


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _, _ in checks:
                batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
