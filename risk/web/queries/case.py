"""One case as the case page shows it: the listed row, what the rule asks to check, the evidence and the
explanation (masked unless shown, and a showing is logged first), the timeline, the recoveries and the
forms the lifecycle allows."""
from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Connection, select

from risk.alerts import lifecycle as workflow
from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.db.tables import alert, recovery
from risk.detection.registry import BY_CODE
from risk.privacy import redact
from risk.web.queries.listing import AlertFilter, alerts_in, named, row_of


def case(conn: Connection, u: User, alert_id: str, unmasked: bool = False) -> dict:
    """Everything the case page shows; raises errors.NotAllowed outside the user's area. An unmasked
    view is logged in the audit log before anything is shown."""
    a = workflow.visible(conn, u, alert_id)
    if unmasked:
        workflow.log_event(conn, a.alert_id, u.user_id, "view_unmasked", a.status, a.status)
    r = conn.execute(named(alerts_in(u, AlertFilter(), include_withdrawn=True).where(alert.c.alert_id == alert_id),
                           "amount")).first()
    today = date.today()
    row = row_of(r, today, unmasked=unmasked)
    rule = BY_CODE.get(a.rule)
    evidence = json.loads(a.evidence or "[]")
    for e in evidence:  # an evidence id may be an ID number (a death record's person): masked unless shown
        e["id"] = str(e.get("id", "")) if unmasked else redact(str(e.get("id", "")))
        e["detail"] = str(e.get("detail", "")) if unmasked else redact(str(e.get("detail", "")))
    explanation = json.loads(a.explanation) if a.explanation else None
    recoveries = [dict(x) for x in conn.execute(select(recovery).where(recovery.c.alert_id == alert_id)
                                                 .order_by(recovery.c.id)).mappings()]
    recovered = sum(x["amount_cents"] for x in recoveries)
    snoozed = a.status in workflow.OPEN and a.snoozed_until is not None and a.snoozed_until > today
    return {**row, "explain_zh": rule.explain_zh if rule else "", "explain_en": rule.explain_en if rule else "",
            "evidence": [e for e in evidence if e.get("fact") != "feature" or e.get("flagged")],
            "explanation": explanation, "timeline": timeline(conn, alert_id), "recoveries": recoveries,
            "recovered": yuan(recovered), "actions": allowed_actions(u, a.status, snoozed), "unmasked": unmasked,
            "snoozed": snoozed}


def allowed_actions(u: User, status: str, snoozed: bool = False) -> list[str]:
    """The forms the case page offers: what the lifecycle allows from this status, nothing to auditors; an
    alert snoozed now is not offered another snooze."""
    if u.read_only:
        return []
    acts = [name for name, (starts, _) in workflow.TRANSITIONS.items() if status in starts]
    if status == "confirmed":
        acts.insert(0, "recover")
    if status in workflow.OPEN and not snoozed:
        acts.append("snooze")
    return acts


def timeline(conn: Connection, alert_id: str) -> list[dict]:
    events = workflow.history(conn, alert_id)
    for e in events:
        e["details"] = json.loads(e["details"]) if e.get("details") else {}
    return events
