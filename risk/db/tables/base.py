"""The warehouse's metadata (constraint names by convention) and the parts its tables share."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
)

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
