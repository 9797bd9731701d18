"""The warehouse's tables (SQLAlchemy Core). Schema changes go through Alembic migrations only.

Money is stored in whole fen (`*_cents`, BIGINT) so that sums are exact on SQLite and PostgreSQL alike;
dates as dates and benefit months as the first day of the month, so the same SQL runs on both.
Every fact row keeps its provenance: the delivery day, the file and the 1-based line it came from.

The tables by area: facts (and the deliveries' bookkeeping, and what each load touched), alerts (and
their audit log, recoveries and notifications), scoring, accounts. Every reader takes a table from here
(`from risk.db.tables import alert`).
"""
from __future__ import annotations

from risk.db.tables.accounts import account, login_attempt, web_session
from risk.db.tables.alerts import alert, alert_event, notification, recovery
from risk.db.tables.base import metadata, one_of, provenance
from risk.db.tables.facts import (
    FACT_TABLES,
    card_event,
    certification,
    death,
    delivery,
    delivery_file,
    detection_mark,
    incarceration,
    payment,
    quality_issue,
    recipient,
    region,
    sighting,
    supervisor,
    touch,
    touched_person,
)
from risk.db.tables.scoring import model, score, score_night, score_part

__all__ = ["metadata", "one_of", "provenance", "region", "recipient", "supervisor", "payment", "card_event", "death", "incarceration", "delivery", "delivery_file", "quality_issue", "sighting", "FACT_TABLES", "certification", "touch", "touched_person", "detection_mark", "alert", "alert_event", "recovery", "notification", "model", "score", "score_night", "score_part", "account", "login_attempt", "web_session"]
