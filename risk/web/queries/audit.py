"""The audit log: every decision, recovery, snooze, escalation and unmasked view on the alerts of the
user's area, with its filters (who, what, which alert, which days)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.sql.elements import ColumnElement

from risk.alerts import lifecycle as workflow
from risk.alerts.lifecycle import User
from risk.db.tables import alert, alert_event
from risk.privacy import redact
from risk.web.queries.listing import DAY, Page, page_of


@dataclass
class AuditFilter:
    user_id: str | None = None
    action: str | None = None
    alert_id: str | None = None
    day_from: str | None = None
    day_to: str | None = None
    page: int = 1
    ignored: list[str] = field(default_factory=list)  # the parameters that were not valid values

    @classmethod
    def from_query(cls, params: Any) -> AuditFilter:
        ignored: list[str] = []

        def text(name: str, pattern: str, ok=lambda v: True) -> str | None:
            value = (params.get(name) or "").strip()
            if not value:
                return None
            if re.fullmatch(pattern, value) and ok(value):
                return value
            ignored.append(name)
            return None

        page = text("page", r"[0-9]{1,5}")
        return cls(user_id=text("user", r"[\w.@-]{1,64}"), action=text("action", r"[a-z_]{1,20}"),
                   alert_id=text("alert", r"[\w-]{1,40}"), day_from=text("from", DAY.pattern, _is_day),
                   day_to=text("to", DAY.pattern, _is_day), page=int(page) if page and int(page) > 0 else 1,
                   ignored=ignored)


def _is_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:  # 2025-13-45
        return False
    return True


def audit_log(conn: Connection, u: User, f: AuditFilter, size: int = 50) -> Page:
    """Every decision, recovery, snooze, escalation and unmasked view on the alerts in the user's area,
    newest first."""
    c: list[ColumnElement[bool]] = [workflow.scope(u)]
    if f.user_id:
        c.append(alert_event.c.user_id == f.user_id)
    if f.action:
        c.append(alert_event.c.action == f.action)
    if f.alert_id:
        c.append(alert_event.c.alert_id == f.alert_id)
    if f.day_from:
        c.append(alert_event.c.at >= datetime.fromisoformat(f.day_from))
    if f.day_to:
        c.append(alert_event.c.at < datetime.fromisoformat(f.day_to).replace(hour=23, minute=59, second=59))
    q = (select(alert_event, alert.c.rule, alert.c.village_code)
         .select_from(alert_event.join(alert, alert.c.alert_id == alert_event.c.alert_id)).where(*c)
         .order_by(alert_event.c.id.desc()))
    total, page, pages, q = page_of(conn, q, f.page, size)
    rows = conn.execute(q).mappings()
    out = []
    for r in rows:
        item = dict(r)
        item["details"] = json.loads(item["details"]) if item.get("details") else {}
        item["comment"] = redact(item["comment"] or "")
        out.append(item)
    return Page(out, total, page, pages)
