"""The warehouse's tables (SQLAlchemy Core). Schema changes go through Alembic migrations only.

Money is stored in whole fen (`*_cents`, BIGINT) so that sums are exact on SQLite and PostgreSQL alike;
dates as dates and benefit months as the first day of the month, so the same SQL runs on both.
Every fact row keeps its provenance: the delivery day, the file and the 1-based line it came from.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from risk import domain

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
})


def one_of(column: str, words: Iterable[str]) -> CheckConstraint:
    """The column holds one of `words` (or NULL); the constraint is named after the column. Said as
    comparisons, not `IN (…)`: for a list of more than two values SQLite builds a lookup table each time a
    statement runs, which an insert of many rows pays for every row (50,000 new alerts took 0.3 s more CPU
    with three such lists; compared one by one, nothing measurable)."""
    return CheckConstraint(" OR ".join(f"{column} = '{w}'" for w in words), name=column)


def provenance() -> list[Column]:
    return [
        Column("delivery_day", String(10), nullable=False),
        Column("source_file", String, nullable=False),
        Column("source_line", Integer, nullable=False),
    ]


region = Table(
    "region", metadata,
    Column("code", String(12), primary_key=True),
    Column("name", String, nullable=False),
    Column("level", String(10), nullable=False),
    Column("parent_code", String(12)),
    *provenance(),
    CheckConstraint("level IN ('city', 'county', 'township', 'village')", name="level"),
)

recipient = Table(
    "recipient", metadata,
    Column("person_id", String(18), primary_key=True),
    Column("name", String, nullable=False),
    Column("gender", String(1), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("village_code", String(12), nullable=False, index=True),
    Column("bank_account", String, nullable=False),
    Column("card_no", String, nullable=False),
    Column("last_certified_on", Date),
    Column("phone", String),
    *provenance(),
    Index("ix_recipient_delivery_day", "delivery_day"),
)

supervisor = Table(
    "supervisor", metadata,
    Column("user_id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("role", String(10), nullable=False),
    Column("region_code", String(12), nullable=False),
    Column("email", String),
    Column("notify_url", String),
    *provenance(),
    one_of("role", domain.Role),
)

payment = Table(
    "payment", metadata,
    Column("payment_id", String, primary_key=True),
    Column("person_id", String(18), nullable=False),
    Column("benefit_type", String(24), nullable=False),
    Column("period", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("paid_on", Date, nullable=False),
    Column("bank_account", String, nullable=False),
    *provenance(),
    # the rules read a person's periods and benefit types, and an account's people per period, from the
    # indexes alone, in the order they group them
    Index("ix_payment_person_id_period_benefit_type_bank_account", "person_id", "period", "benefit_type",
          "bank_account"),
    Index("ix_payment_bank_account_period_person_id", "bank_account", "period", "person_id"),
    # a night's detection finds a file's new rows again; the ledger counts what each delivery left standing.
    # A bulk load keeps it (rows arrive in delivery order: appending to it is cheap), see gateway
    Index("ix_payment_delivery_day", "delivery_day", info={"kept_in_bulk": True}),
    CheckConstraint("amount_cents > 0", name="amount_positive"),
)

card_event = Table(
    "card_event", metadata,
    Column("event_id", String, primary_key=True),
    Column("person_id", String(18), nullable=False, index=True),
    Column("card_no", String, nullable=False),
    Column("occurred_at", String, nullable=False),  # as delivered, with its offset
    Column("occurred_on", Date, nullable=False),  # the Beijing (UTC+8) day
    Column("occurred_hour", SmallInteger, nullable=False),  # the Beijing hour, 0-23
    Column("event_type", String(16), nullable=False),
    Column("county_code", String(12), nullable=False),
    Column("institution_id", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("admitted_on", Date),
    *provenance(),
    Index("ix_card_event_delivery_day", "delivery_day", info={"kept_in_bulk": True}),
    Index("ix_card_event_certification", "person_id", "occurred_on",  # certification_overdue's events
          sqlite_where=text("event_type = 'certification'"), postgresql_where=text("event_type = 'certification'")),
    CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
    CheckConstraint("occurred_hour BETWEEN 0 AND 23", name="hour"),
)

death = Table(
    "death", metadata,
    Column("record_id", String, primary_key=True),
    Column("person_id", String(18), nullable=False, index=True),
    Column("person_id_delivered", String, nullable=False),
    Column("name", String, nullable=False),
    Column("death_date", Date, nullable=False),
    Column("source", String(20), nullable=False),
    Column("reported_on", Date, nullable=False),
    *provenance(),
)

incarceration = Table(
    "incarceration", metadata,
    Column("record_id", String, primary_key=True),
    Column("person_id", String(18), nullable=False, index=True),
    Column("person_id_delivered", String, nullable=False),
    Column("name", String, nullable=False),
    Column("sentence_type", String(20), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    *provenance(),
)

# ---------------------------------------------------------------- bookkeeping

delivery = Table(
    "delivery", metadata,
    Column("day", String(10), primary_key=True),
    Column("loaded_at", DateTime, nullable=False),
    Column("files", Integer, nullable=False),
    Column("warnings", Text, nullable=False, default="[]"),  # JSON list of plain sentences
)

delivery_file = Table(
    "delivery_file", metadata,
    Column("delivery_day", String(10), primary_key=True),
    Column("source", String(20), primary_key=True),
    Column("file_name", String, nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("rejected_whole", Boolean, nullable=False, default=False),
    Column("load_ms", Integer, nullable=False, default=0),  # wall time of reading, checking and loading it
    Column("warnings", Text, nullable=False, default="[]"),
)

quality_issue = Table(
    "quality_issue", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(20), nullable=False),
    Column("delivery_day", String(10), nullable=False),
    Column("file_name", String, nullable=False),
    Column("line", Integer),  # empty when the whole file is rejected
    Column("record_key", String),
    Column("kind", String(12), nullable=False),  # file | row | invalid | reference | conflict
    Column("field", String),
    Column("reason", Text, nullable=False),
    Column("raw", Text),  # the delivered row as JSON, so nothing quarantined is lost
    UniqueConstraint("source", "delivery_day", "line"),
    CheckConstraint("kind IN ('file', 'row', 'invalid', 'reference', 'conflict')", name="kind"),
    Index("ix_quality_issue_source_record_key", "source", "record_key"),
)

# Every valid delivered row that is not the standing row of its key: an exact re-delivery (same content hash
# as the standing row), a conflict (other content; also in quality_issue), or, for upsert sources, a version
# superseded by a later delivery (no hash: it is never compared). Kept so that any order of loading ends in
# the same classification.
sighting = Table(
    "sighting", metadata,
    Column("source", String(20), primary_key=True),
    Column("delivery_day", String(10), primary_key=True),
    Column("source_line", Integer, primary_key=True),
    Column("record_key", String, nullable=False),
    Column("source_file", String, nullable=False),
    Column("row_hash", String(32)),  # ingest.keys.content_hash; none for a superseded version
    Column("kind", String(12), nullable=False),  # redelivery | conflict | superseded
    Column("within_file", Boolean, nullable=False),  # a repeat of a key earlier in the same file
    Index("ix_sighting_source_record_key", "source", "record_key"),
    CheckConstraint("kind IN ('redelivery', 'conflict', 'superseded')", name="kind"),
)

FACT_TABLES = {"regions": region, "recipients": recipient, "supervisors": supervisor, "payments": payment,
               "card_events": card_event, "deaths": death, "incarcerations": incarceration}

# Every last_certified_on a valid recipients row named, with its delivery (superseded rows too): for a paid
# period, certification_overdue reads the date named by the latest delivery whose date is on or before the
# period's last day, so a correction replaces an older value while a newer certification does not erase
# what was overdue before it.
certification = Table(
    "certification", metadata,
    Column("person_id", String(18), primary_key=True),
    Column("delivery_day", String(10), primary_key=True),
    Column("source_line", Integer, primary_key=True),
    Column("certified_on", Date, nullable=False),
    Column("source_file", String, nullable=False),
    Index("ix_certification_delivery_day", "delivery_day"),
)

# ---------------------------------------------------------------- what a night brings (risk.detection.touched)

# What the loads since a detection wrote to the fact tables, for the next detection (see risk.detection.touched): one row
# per file whose stored rows it must look at (source, delivery_day, source_file: the rows are found again by
# their provenance), or one per fact removed from its table (source, person_id; bank_account and period for a
# payment). `seq` only grows (AUTOINCREMENT on SQLite too), so a detection knows which touches it has seen.
touch = Table(
    "touch", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("source", String(20), nullable=False),
    Column("delivery_day", String(10)),
    Column("source_file", String),
    Column("person_id", String(18)),
    Column("bank_account", String),
    Column("period", Date),
    CheckConstraint("(delivery_day IS NOT NULL AND source_file IS NOT NULL) OR person_id IS NOT NULL",
                    name="stored_or_removed"),
    sqlite_autoincrement=True,
)

# The touches turned into people, per rule: whose alert of `rule` the touches up to `touch_seq` can change
# (risk.detection.scope.translate, once a night for the whole city; each part then takes its own people).
touched_person = Table(
    "touched_person", metadata,
    Column("touch_seq", Integer, primary_key=True),
    Column("rule", String(40), primary_key=True),
    Column("person_id", String(18), primary_key=True),
    one_of("rule", domain.RuleCode),
)

# Per part of detection (a county, or "-" for the people who are not recipients) and rule: the touches (up to
# `touch_seq`) that its alerts already reflect, and the rule's version then. No row: that part and rule run
# whole next time. The row (part "*", rule "*") says up to which touch touched_person is complete.
detection_mark = Table(
    "detection_mark", metadata,
    Column("part", String(12), primary_key=True),
    Column("rule", String(40), primary_key=True),
    Column("rule_version", Integer, nullable=False),
    Column("touch_seq", Integer, nullable=False),
    one_of("rule", [*domain.RuleCode, "*"]),
)

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

# ---------------------------------------------------------------- behavioural scoring

model = Table(
    "model", metadata,
    Column("version", String(40), primary_key=True),  # e.g. iforest-20260105T020000
    Column("file", String, nullable=False),  # its skops file's name: in var/models for a model registered before 0015
    Column("sha256", String(64), nullable=False),  # checked before the bytes are ever loaded
    Column("trained_at", DateTime, nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("features", Text, nullable=False),  # JSON list, in the order the model takes them
    Column("rows", Integer, nullable=False),
    Column("libraries", Text, nullable=False),  # JSON: library versions it was trained with
    Column("train_scores", Text, nullable=False),  # JSON: quantiles of the training scores
    Column("status", String(12), nullable=False),  # current | retired
    # the model itself (skops, deflated, a few MB), kept with its warehouse; NULL for a model registered
    # before 0015 (its file in var/models) and for old retired ones (risk.scoring.registry.KEEP_BYTES)
    Column("skops", LargeBinary),
    CheckConstraint("status IN ('current', 'retired')", name="status"),
)

score = Table(
    "score", metadata,
    Column("person_id", String(18), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("model_version", String(40), nullable=False),
    Column("score", Float, nullable=False),  # higher is more unusual (the isolation-forest paper's s)
    Column("rank", Integer, nullable=False),  # 1 = most unusual in the city that night
    Column("top_features", Text, nullable=False),  # JSON
)

score_night = Table(
    "score_night", metadata,
    Column("as_of", Date, primary_key=True),
    Column("model_version", String(40), primary_key=True),
    Column("people", Integer, nullable=False),
    Column("quantiles", Text, nullable=False),  # JSON: the night's score distribution
    Column("drift", Float),  # population stability index against the training scores
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

# What a supervisor chose for themselves (the bureau's supervisors.csv does not carry it): the language of
# their digests and pages, and later their password. Kept apart from `supervisor`, which each delivery of
# supervisors.csv replaces.
account = Table(
    "account", metadata,
    Column("user_id", String, primary_key=True),
    Column("language", String(2), nullable=False, server_default="zh"),  # zh | en
    Column("password_hash", Text),
    Column("updated_at", DateTime, nullable=False),
    one_of("language", domain.Language),
)

# Every login attempt (never the password): for rate limiting and for the auditors.
login_attempt = Table(
    "login_attempt", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, nullable=False, index=True),
    Column("client", String(64), nullable=False),  # the client's address
    Column("at", DateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
)

# The web app's sessions, one row for each logged-in browser (the cookie holds a random token; the row only
# its SHA-256): logging out, a new password and a lockout delete every row of that user, so no old cookie
# works again; a row past its lifetime or idle too long is refused and deleted.
web_session = Table(
    "web_session", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String, nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("seen_at", DateTime, nullable=False),  # the last request (kept to the minute)
)

# Tonight's scores while they are being computed, one part (county) at a time; the last step ranks them
# city-wide into `score`. The part's most unusual people also keep what an anomaly alert needs (reasons,
# every feature's value), since any of the city's top K is among its own county's top K.
score_part = Table(
    "score_part", metadata,
    Column("person_id", String(18), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("model_version", String(40), nullable=False),
    Column("score", Float, nullable=False),
    Column("top_features", Text, nullable=False),  # JSON, as in `score`
    Column("reasons", Text),  # JSON: candidates for an anomaly alert only
    Column("features", Text),  # JSON {feature: value}: candidates only
)
