"""The data-quality page: the rows the nightly load rejected, per source and delivery day, each user their
own area's (city staff and auditors every row)."""
from __future__ import annotations

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from risk.alerts.lifecycle import User
from risk.db.tables import quality_issue
from risk.ingest import quality
from risk.privacy import redact
from risk.web.queries.listing import DAY, Page, page_of

CITY_WIDE = ("city", "auditor")  # who sees every rejected row, those no area can be named for too


def _quality_area(conn: Connection, u: User, c: list[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """`c` and, for a user below the city, only the rejected rows placed in their area (quality.villages_of):
    a row that names no village of theirs, or none at all (a whole file, a region), is not theirs."""
    if u.role in CITY_WIDE:
        return c
    rows = conn.execute(select(quality_issue.c.id, quality_issue.c.source, quality_issue.c.record_key,
                               quality_issue.c.raw).where(*c)).all()
    area = u.area
    villages = quality.villages_of(conn, [(r.source, r.record_key, r.raw) for r in rows])
    ids = [r.id for r, village in zip(rows, villages, strict=True) if village and village.startswith(area)]
    return [*c, quality_issue.c.id.in_(ids)]


def quality_summary(conn: Connection, u: User) -> list[dict]:
    """Rejected rows per source and delivery day, in the user's area."""
    return [dict(r) for r in conn.execute(
        select(quality_issue.c.source, quality_issue.c.delivery_day, func.count().label("rows"))
        .where(*_quality_area(conn, u, []))
        .group_by(quality_issue.c.source, quality_issue.c.delivery_day)
        .order_by(quality_issue.c.delivery_day.desc(), quality_issue.c.source)).mappings()]


def quality_rows(conn: Connection, u: User, source: str | None, day: str | None, page: int,
                 size: int = 50) -> Page:
    """The rejected rows in the user's area (file, line, masked key, field, reason), newest day first."""
    c: list[ColumnElement[bool]] = []
    if source:
        c.append(quality_issue.c.source == source)
    if day and DAY.fullmatch(day):
        c.append(quality_issue.c.delivery_day == day)
    q = select(quality_issue.c.source, quality_issue.c.delivery_day, quality_issue.c.file_name,
               quality_issue.c.line, quality_issue.c.record_key, quality_issue.c.field, quality_issue.c.reason
               ).where(*_quality_area(conn, u, c)
                       ).order_by(quality_issue.c.delivery_day.desc(), quality_issue.c.source, quality_issue.c.line)
    total, page, pages, q = page_of(conn, q, page, size)
    rows = conn.execute(q).mappings()
    return Page([{**r, "record_key": redact(r["record_key"] or ""), "reason": redact(r["reason"])} for r in rows],
                total, page, pages)
