"""Alerts, one per (rule, person), and what happens to them: the audit log, the recoveries, the notifications."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from risk import domain
from risk.db.tables.base import metadata, one_of

# ---------------------------------------------------------------- alerts

alert = Table(
    "alert", metadata,
    Column("alert_id", String(40), primary_key=True),  # derived from rule and person: stable across reruns
    Column("rule", String(40), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("person_id", String(18), nullable=False, index=True),
    Column("village_code", String(12)),
    Column("severity", String(8), nullable=False),
    Column("score", Float, nullable=False),
    Column("amount_at_risk_cents", BigInteger, nullable=False),
    Column("first_seen", String(10), nullable=False),  # the delivery day on which it was first raised
    Column("last_changed", String(10), nullable=False),  # the delivery day its evidence last changed
    Column("status", String(16), nullable=False, default="new"),
    Column("evidence", Text, nullable=False),  # JSON list of facts, each with its file and line
    Column("evidence_count", Integer, nullable=False),
    Column("explanation", Text),  # JSON, frozen when raised (anomaly alerts)
    Column("snoozed_until", Date),  # out of the queue until then (at most 180 days, with a reason)
    Column("raised_at", DateTime),  # when the system raised it: the SLA clock starts here
    Column("level", String(10), nullable=False, server_default="village"),  # who must act: escalation moves it up
    Column("escalated_at", DateTime),  # the SLA clock restarts at each escalation
    UniqueConstraint("rule", "person_id"),
    # an area's alerts with what the queue counts and the dashboard sums: those pages read the index alone
    Index("ix_alert_area", "village_code", "status", "level", "snoozed_until", "first_seen", "amount_at_risk_cents",
          "alert_id"),
    CheckConstraint("severity IN ('high', 'medium', 'low')", name="severity"),
    one_of("status", domain.Status),
    one_of("level", domain.ESCALATION),
    one_of("rule", domain.RuleCode),
    CheckConstraint("amount_at_risk_cents >= 0", name="amount_not_negative"),
)


# ---------------------------------------------------------------- workflow

# Append-only: every change to an alert (and every unmasked view), by whom, when, from and to which status.
alert_event = Table(
    "alert_event", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(40), nullable=False, index=True),
    Column("at", DateTime, nullable=False),
    Column("user_id", String, nullable=False),
    Column("action", String(20), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("comment", Text),
    Column("details", Text),  # JSON
    one_of("action", domain.Action),
    one_of("from_status", domain.Status),
    one_of("to_status", domain.Status),
)

# The recovery ledger, append-only: a recovery is a positive entry; a wrong one is undone by a reversing entry,
# its opposite amount naming it (`reverses`, at most once) with the reason. `reason` also says why a recovery
# took the total past the amount at risk. The sum per alert is what was recovered.
recovery = Table(
    "recovery", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(40), nullable=False, index=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("recovered_on", Date, nullable=False),
    Column("method", String(40), nullable=False),
    Column("recorded_by", String, nullable=False),
    Column("recorded_at", DateTime, nullable=False),
    Column("reverses", Integer),
    Column("reason", Text),
    UniqueConstraint("reverses"),
    one_of("method", domain.Method),
    CheckConstraint("(reverses IS NULL AND amount_cents > 0) OR "
                    "(reverses IS NOT NULL AND amount_cents < 0 AND reason IS NOT NULL)", name="entry_or_reversal"),
)

# Every digest delivery: to whom, through which channel, what, how it went. A row is recorded when the
# digest is decided (status due), before anything is sent; a sender takes it (sending: started_at,
# claimed_by) and marks it sent or failed, each step its own short transaction (risk.alerts.digests).
notification = Table(
    "notification", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, nullable=False, index=True),
    Column("channel", String(10), nullable=False),  # email | url | outbox | none (nothing to send to)
    Column("created_at", DateTime, nullable=False),  # decided: it tells the alerts raised up to then
    Column("started_at", DateTime),  # taken by a sender (the last time, if sent again)
    Column("sent_at", DateTime),  # sent, or failed for good; NULL while due or sending
    Column("status", String(10), nullable=False, index=True),  # due | sending | sent | failed
    Column("claimed_by", String),  # the sender while sending: host, process id and start
    Column("attempts", Integer, nullable=False),
    Column("alerts", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text),  # the message as decided (IDs and names masked); NULL before 0015
    Column("error", Text),
    CheckConstraint("status IN ('due', 'sending', 'sent', 'failed')", name="status"),
    one_of("channel", domain.Channel),
)
