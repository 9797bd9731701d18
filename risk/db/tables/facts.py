"""The facts as delivered (regions, recipients, supervisors, payments, card events, deaths, custody records), the
deliveries' bookkeeping (files, the quality queue, sightings, certifications) and what each load touched."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from risk import domain
from risk.db.tables.base import metadata, one_of, provenance

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
