"""One case as the case page shows it: the case as risk.alerts.case gives it to every reader (the listed row,
what the rule asks to check, the evidence and explanation masked unless shown, a showing logged first, the
timeline, the recoveries), with the features that did not stand out left out of the evidence and the forms
the lifecycle allows."""
from __future__ import annotations

from sqlalchemy import Connection

from risk.alerts import case as alert_case
from risk.alerts import lifecycle as workflow
from risk.alerts.lifecycle import User


def case(conn: Connection, u: User, alert_id: str, unmasked: bool = False) -> dict:
    """Everything the case page shows; raises errors.NotAllowed outside the user's area. An unmasked
    view is logged in the audit log before anything is shown."""
    c = alert_case.case(conn, u, alert_id, unmasked=unmasked)
    return {**c, "evidence": [e for e in c["evidence"] if e.get("fact") != "feature" or e.get("flagged")],
            "actions": allowed_actions(u, c["status"], c["snoozed"])}


def allowed_actions(u: User, status: str, snoozed: bool = False) -> list[str]:
    """The forms the case page offers: what the lifecycle allows from this status, nothing to auditors; an
    alert snoozed now is not offered another snooze."""
    if u.read_only:
        return []
    acts: list[str] = [name for name, (starts, _) in workflow.TRANSITIONS.items() if status in starts]
    if status == "confirmed":
        acts.insert(0, "recover")
    if status in workflow.OPEN and not snoozed:
        acts.append("snooze")
    return acts
