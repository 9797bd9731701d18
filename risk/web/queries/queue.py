"""A user's queue: the alerts of their area that pass the filters, a page at a time, snoozed ones hidden
until their day; and the villages of the area for the village filter."""
from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from risk.alerts import lifecycle as workflow
from risk.alerts.lifecycle import User
from risk.db.tables import alert, region
from risk.web.queries.listing import PAGE_SIZE, AlertFilter, Page, alerts_in, named, ordered, page_of, row_of


def _snooze_hidden(today: date) -> ColumnElement[bool]:
    return or_(alert.c.snoozed_until.is_(None), alert.c.snoozed_until <= today)


def queue(conn: Connection, u: User, f: AlertFilter, today: date | None = None, size: int = PAGE_SIZE,
          include_snoozed: bool = False) -> Page:
    today = today or date.today()
    q = alerts_in(u, f)
    if not include_snoozed:
        q = q.where(_snooze_hidden(today))
    total, page, pages, q = page_of(conn, q.order_by(*ordered(alert.c, f.sort)), f.page, size)
    return Page([row_of(r, today) for r in conn.execute(named(q, f.sort))], total, page, pages)


def villages(conn: Connection, u: User) -> list[tuple[str, str]]:
    """The villages in the user's area (for the queue's village filter)."""
    return [(c, n) for c, n in conn.execute(
        select(region.c.code, region.c.name).where(and_(region.c.level == "village", workflow.in_area(region.c.code, u)))
        .order_by(region.c.code))]
