"""The figures of the dashboard, each restricted to the viewer's area by `workflow.scope` (and only by it).

- `by_county_month`: alerts raised per county and month (of `first_seen`) with their amount at risk:
  where and when risk turns up.
- `recovered_vs_at_risk`: per county, the amount at risk of confirmed (or closed) alerts against what
  has been recovered on them, beside the amount at risk of every alert: how much of what was proved
  wrong is back.
- `escalations`: per month and level reached, how many times alerts moved up for missing their SLA.
  Counted from the audit log (`alert_event`, action 'escalate', `to_level` in its details), so it is the
  history of escalations, not where alerts stand today; the month is that of the event.
- `summary`: the headline numbers above the charts.

Withdrawn alerts (their facts were replaced by later deliveries) are left out everywhere. Money is in whole
fen (ints); format it with `risk.alerts.export.yuan`. The same Core queries run on SQLite and PostgreSQL: the
grouping keys (county, month) are computed in a subquery first, so that GROUP BY names plain columns.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, TypedDict

from sqlalchemy import Connection, String, Subquery, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from risk import domain
from risk.alerts.lifecycle import User, scope
from risk.db.tables import alert, alert_event, recovery, region
from risk.domain import ESCALATION, OPEN, PROVED, Action, Level, Status


class CountyMonth(TypedDict):
    county_code: str
    county_name: str
    month: str  # YYYY-MM
    alerts: int
    amount_at_risk_cents: int


class CountyRecovery(TypedDict):
    county_code: str
    county_name: str
    at_risk_cents: int  # every alert (not withdrawn)
    confirmed_at_risk_cents: int  # confirmed or closed alerts
    recovered_cents: int  # recoveries recorded on those alerts


class MonthEscalations(TypedDict):
    month: str  # YYYY-MM of the escalation
    level: str  # the level reached: township | county
    escalations: int


class Summary(TypedDict):
    alerts: int
    open_alerts: int  # new, acknowledged or investigating
    open_at_risk_cents: int
    confirmed_alerts: int  # confirmed or closed
    confirmed_at_risk_cents: int
    recovered_cents: int
    escalated_alerts: int  # moved up at least one level, whatever their status now
    overdue_alerts: int  # moved up and still not acknowledged


def by_county_month(conn: Connection, u: User) -> list[CountyMonth]:
    """Alerts and amount at risk per county and month first seen, oldest month first."""
    live = _live_alerts(u)
    q = (select(live.c.county_code, region.c.name, live.c.month, func.count().label("alerts"),
                _total(live.c.cents).label("cents"))
         .select_from(live.outerjoin(region, region.c.code == live.c.county_code))
         .group_by(live.c.county_code, region.c.name, live.c.month)
         .order_by(live.c.county_code, live.c.month))
    return [CountyMonth(county_code=r.county_code, county_name=r.name or r.county_code, month=r.month,
                        alerts=int(r.alerts), amount_at_risk_cents=int(r.cents)) for r in conn.execute(q)]


def recovered_vs_at_risk(conn: Connection, u: User) -> list[CountyRecovery]:
    """Per county: at risk on all alerts, at risk on confirmed alerts, and recovered."""
    live, recovered = _live_alerts(u), _recovered_per_alert()
    confirmed = live.c.status.in_(PROVED)
    q = (select(live.c.county_code, region.c.name, _total(live.c.cents).label("at_risk"),
                _total(case((confirmed, live.c.cents), else_=0)).label("confirmed"),
                _total(recovered.c.cents).label("recovered"))
         .select_from(live.outerjoin(region, region.c.code == live.c.county_code)
                      .outerjoin(recovered, recovered.c.alert_id == live.c.alert_id))
         .group_by(live.c.county_code, region.c.name)
         .order_by(live.c.county_code))
    return [CountyRecovery(county_code=r.county_code, county_name=r.name or r.county_code,
                           at_risk_cents=int(r.at_risk), confirmed_at_risk_cents=int(r.confirmed),
                           recovered_cents=int(r.recovered)) for r in conn.execute(q)]


def escalations(conn: Connection, u: User) -> list[MonthEscalations]:
    """Escalations of the user's alerts per month and level reached (from the audit log)."""
    month = func.substr(cast(alert_event.c.at, String), 1, 7)
    events = (select(month.label("month"), alert_event.c.details)
              .select_from(alert_event.join(alert, alert.c.alert_id == alert_event.c.alert_id))
              .where(alert_event.c.action == Action.ESCALATE, scope(u), alert.c.status != Status.WITHDRAWN)
              .subquery("escalation"))
    q = (select(events.c.month, events.c.details, func.count().label("n"))
         .group_by(events.c.month, events.c.details))
    counts: Counter[tuple[str, str]] = Counter()
    for r in conn.execute(q):  # a few distinct details strings: the JSON is read here, not in SQL
        counts[r.month, _to_level(r.details)] += int(r.n)
    return [MonthEscalations(month=m, level=level, escalations=n)
            for (m, level), n in sorted(counts.items(), key=lambda kv: (kv[0][0], _level_rank(kv[0][1])))]


def summary(conn: Connection, u: User) -> Summary:
    """The headline numbers of the user's area."""
    live, recovered = _live_alerts(u), _recovered_per_alert()
    is_open, confirmed = live.c.status.in_(OPEN), live.c.status.in_(PROVED)
    escalated = live.c.level != ESCALATION[0]
    q = (select(func.count().label("alerts"), _count(is_open).label("open_alerts"),
                _total(case((is_open, live.c.cents), else_=0)).label("open_at_risk_cents"),
                _count(confirmed).label("confirmed_alerts"),
                _total(case((confirmed, live.c.cents), else_=0)).label("confirmed_at_risk_cents"),
                _total(recovered.c.cents).label("recovered_cents"),
                _count(escalated).label("escalated_alerts"),
                _count(escalated & (live.c.status == Status.NEW)).label("overdue_alerts"))
         .select_from(live.outerjoin(recovered, recovered.c.alert_id == live.c.alert_id)))
    r = conn.execute(q).one()
    return Summary(alerts=int(r.alerts), open_alerts=int(r.open_alerts), open_at_risk_cents=int(r.open_at_risk_cents),
                   confirmed_alerts=int(r.confirmed_alerts), confirmed_at_risk_cents=int(r.confirmed_at_risk_cents),
                   recovered_cents=int(r.recovered_cents), escalated_alerts=int(r.escalated_alerts),
                   overdue_alerts=int(r.overdue_alerts))


# ---------------------------------------------------------------- building blocks

def _live_alerts(u: User) -> Subquery:
    """The user's alerts that are not withdrawn, with their county code and month first seen."""
    county = domain.area_code_sql(alert.c.village_code, Level.COUNTY)
    month = func.substr(alert.c.first_seen, 1, 7, type_=String)
    return (select(alert.c.alert_id, alert.c.status, alert.c.level, alert.c.amount_at_risk_cents.label("cents"),
                   county.label("county_code"), month.label("month"))
            .where(scope(u), alert.c.status != Status.WITHDRAWN)
            .subquery("live"))


def _recovered_per_alert() -> Subquery:
    """Fen recovered per alert (several partial recoveries summed), so a join keeps one row per alert."""
    return (select(recovery.c.alert_id, func.sum(recovery.c.amount_cents).label("cents"))
            .group_by(recovery.c.alert_id)
            .subquery("recovered"))


def _total(column: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), 0)


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return _total(case((condition, 1), else_=0))


def _to_level(details: str | None) -> str:
    return str(json.loads(details or "{}").get("to_level", "unknown"))


def _level_rank(level: str) -> int:
    return ESCALATION.index(level) if level in ESCALATION else len(ESCALATION)
