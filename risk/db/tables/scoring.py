"""Behaviour scoring: the models (their skops bytes with them), the nightly scores and their distribution, and
tonight's scores while they are computed part by part."""
from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from risk.db.tables.base import metadata

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
