"""The city-wide search (auditors and city staff: their scope is the city), for its page and its exports
(CSV, Excel): every filter of the queue, a whole ID number besides, and the amount recovered per alert."""
from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, func, select

from risk.alerts.case import titles
from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.db.tables import alert, recovery, region
from risk.identity.numbers import mask_id, mask_name
from risk.web.queries.listing import AlertFilter, alerts_in, named, ordered, row_of


def counties(conn: Connection) -> list[tuple[str, str]]:
    return [(c[:6], n) for c, n in conn.execute(select(region.c.code, region.c.name)
                                                 .where(region.c.level == "county").order_by(region.c.code))]


def _searched(u: User, f: AlertFilter, limit: int | None = None):
    """What the search finds (the `limit` largest amounts, or all) with the names `named` adds, as a
    subquery, and the amount recovered for each of its alerts, looked up per alert (ix_recovery_alert_id)."""
    q = alerts_in(u, f)
    shown = q.order_by(*ordered(alert.c, "amount")).limit(limit) if limit else q
    found = named(shown, "amount").order_by(None).subquery("named")
    recovered = (select(func.sum(recovery.c.amount_cents)).where(recovery.c.alert_id == found.c.alert_id)
                 .scalar_subquery())
    return found, recovered


def search_rows(conn: Connection, u: User, f: AlertFilter, limit: int | None = None) -> list[dict]:
    """The city-wide search (auditors and city staff: their scope is the city), for the page and exports;
    identity masked."""
    today = date.today()
    found, recovered = _searched(u, f, limit)
    out = []
    for r in conn.execute(select(found, recovered.label("recovered_cents")).order_by(*ordered(found.c, "amount"))).all():
        row = row_of(r, today)
        row["recovered"] = yuan(r.recovered_cents or 0)
        out.append(row)
    return out


def search_columns(conn: Connection, u: User, f: AlertFilter) -> dict[str, list]:
    """The search's export: every alert it finds (largest amount first, as `search_rows`), as columns named
    by EXPORT_FIELDS, identity masked. Read as the driver's tuples and turned into columns: a city's
    11,911 alerts through `search_rows` spent as long on a Row and a dict per alert as the database on
    the query."""
    found, recovered = _searched(u, f)
    n = found.c
    result = conn.execute(select(n.alert_id, n.rule, n.person_id, n.person_name, n.village_code, n.village_name,
                                 n.severity, n.status, n.level, n.amount_at_risk_cents, recovered, n.first_seen)
                          .order_by(*ordered(n, "amount")))
    rows = result.cursor.fetchall() if result.cursor is not None else []  # text and integers: nothing to convert
    result.close()
    (ids, rules, people, names, villages, village_names, severities, statuses, levels, cents, back,
     first_seen) = (list(c) for c in zip(*rows, strict=True)) if rows else ([] for _ in range(12))
    return {"alert_id": ids, "rule": rules,
            "title_zh": [titles(rule)[0] for rule in rules],
            "person": [mask_id(p) for p in people], "name": [mask_name(x or "") for x in names],
            "village_code": [v or "" for v in villages], "village_name": [v or "" for v in village_names],
            "severity": severities, "status": statuses, "level": levels,
            "amount": [yuan(c) for c in cents], "recovered": [yuan(c or 0) for c in back],
            "first_seen": first_seen}


EXPORT_FIELDS = [("alert_id", "预警编号 alert_id"), ("rule", "规则 rule"), ("title_zh", "规则名称 rule title"),
                 ("person", "身份证号（脱敏）person (masked)"), ("name", "姓名（脱敏）name (masked)"),
                 ("village_code", "村代码 village_code"), ("village_name", "村 village"),
                 ("severity", "严重程度 severity"), ("status", "状态 status"), ("level", "负责层级 level"),
                 ("amount", "涉及金额 amount_at_risk"), ("recovered", "已追回 recovered"),
                 ("first_seen", "首次发现 first_seen")]
