"""One alert as a case: what a supervisor is shown of it, the same in `risk alerts show` (as text) and on
the web's case page (its template). The person's ID number and name, and any ID number in the evidence,
are masked unless `unmasked`; an unmasked view is written to the alert's audit log before anything is
read, and only for an alert in the user's area (`lifecycle.visible`: errors.NotAllowed otherwise)."""
from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Connection, select

from risk.alerts import lifecycle as workflow
from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.db.tables import recipient, recovery, region
from risk.detection import registry
from risk.detection.registry import BY_CODE
from risk.identity.numbers import mask_id, mask_name
from risk.privacy import redact


def titles(rule: str) -> tuple[str, str]:
    """An alert's title (Chinese, English): its rule's, or the behaviour model's for an anomaly."""
    return registry.title(rule, "zh"), registry.title(rule, "en")


def listed(alert_id: str, rule: str, person_id: str, village_code: str | None, severity: str, status: str,
           cents: int, first_seen: str, level: str, raised_at, snoozed_until, village_name: str | None,
           person_name: str | None, *, today: date, unmasked: bool = False) -> dict:
    """An alert as a list, an export and the head of its case show it: its title, the person's ID number
    and name masked unless `unmasked`, the village, severity, status, amount, level and age in days."""
    title_zh, title_en = titles(rule)
    since = raised_at.date() if raised_at else date.fromisoformat(first_seen)
    return {"alert_id": alert_id, "rule": rule, "title_zh": title_zh, "title_en": title_en,
            "person": person_id if unmasked else mask_id(person_id),
            "name": (person_name or "") if unmasked else mask_name(person_name or ""),
            "village_code": village_code or "", "village_name": village_name or "",
            "severity": severity, "status": status, "amount": yuan(cents), "amount_cents": cents,
            "first_seen": first_seen, "level": level, "age_days": (today - since).days,
            "snoozed_until": snoozed_until}


def case(conn: Connection, u: User, alert_id: str, unmasked: bool = False, today: date | None = None) -> dict:
    """The case of `alert_id` as data: the alert as a list shows it (title, person and name masked unless
    `unmasked`, village, severity, status, amount, level, age), what its rule asks to check (`registered`:
    whether a rule of the registry raised it), every piece of evidence (ids and details masked unless
    `unmasked`), the model's explanation, the audit timeline, the recoveries and whether it is snoozed."""
    a = workflow.visible(conn, u, alert_id)
    if unmasked:
        workflow.log_event(conn, a.alert_id, u.user_id, "view_unmasked", a.status, a.status)
    person_name = conn.execute(select(recipient.c.name).where(recipient.c.person_id == a.person_id)).scalar() or ""
    village_name = conn.execute(select(region.c.name).where(region.c.code == a.village_code)).scalar() or ""
    today = today or date.today()
    rule = BY_CODE.get(a.rule)
    evidence = json.loads(a.evidence or "[]")
    for e in evidence:  # an evidence id may be an ID number (a death record's person): masked unless shown
        e["id"] = str(e.get("id", "")) if unmasked else redact(str(e.get("id", "")))
        e["detail"] = str(e.get("detail", "")) if unmasked else redact(str(e.get("detail", "")))
    recoveries = [dict(x) for x in conn.execute(select(recovery).where(recovery.c.alert_id == a.alert_id)
                                                 .order_by(recovery.c.id)).mappings()]
    return {**listed(a.alert_id, a.rule, a.person_id, a.village_code, a.severity, a.status, a.amount_at_risk_cents,
                     a.first_seen, a.level, a.raised_at, a.snoozed_until, village_name, person_name, today=today,
                     unmasked=unmasked),
            "registered": rule is not None,
            "explain_zh": rule.explain_zh if rule else "", "explain_en": rule.explain_en if rule else "",
            "evidence": evidence, "explanation": json.loads(a.explanation) if a.explanation else None,
            "timeline": timeline(conn, a.alert_id), "recoveries": recoveries,
            "recovered": yuan(sum(x["amount_cents"] for x in recoveries)), "unmasked": unmasked,
            "snoozed": a.status in workflow.OPEN and a.snoozed_until is not None and a.snoozed_until > today}


def timeline(conn: Connection, alert_id: str) -> list[dict]:
    """The alert's audit log, oldest first, each event's details as data."""
    events = workflow.history(conn, alert_id)
    for e in events:
        e["details"] = json.loads(e["details"]) if e.get("details") else {}
    return events
