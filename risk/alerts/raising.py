"""The one way alerts are raised: detection (a rule's evidence per person) and behaviour scoring (the night's
most unusual people) both hand what they found to `raise_alerts`, which keeps one alert per (rule, person).

Set-based: one call decides all the alerts of one registry entry among the people given, with a few
statements whatever their number (one read of the entry's alerts there, one batched update per kind of
change, one insert of the new alerts).

A person without an alert of the entry gets one: status new at the village level, `first_seen` the day of
the facts (`as_of`), its evidence, amount at risk, village, score (the entry's unless the person has their
own) and explanation (JSON, frozen when raised). What becomes of an alert the person already has depends
on the entry (`Existing`):

- `Existing.FOLLOW` (the rules of law): the alert follows the facts. New evidence extends it (evidence,
  amount, village, version); facts it did not name before reopen a dismissed or closed alert as new, and a
  withdrawn one comes back as new (each reopening is written to the audit log, action `reopen`); an alert
  of the people looked at whose facts are gone is withdrawn (never deleted: its evidence stays, its amount
  at risk becomes 0). A rerun on the same facts changes nothing.
- `Existing.KEEP` (anomaly): the alert is left as it is, whatever the night finds: its explanation was
  frozen when it was raised, and a person no longer among the most unusual keeps theirs.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.sql.elements import ColumnElement

from risk.alerts.lifecycle import SYSTEM, log_event
from risk.db.tables import alert
from risk.detection.registry import Rule
from risk.domain import Action, Level, Status

REOPENED_BY_NEW_FACTS = (Status.DISMISSED, Status.CLOSED)
# the words the rows of many alerts carry, as plain strings: SQLite's driver binds a str subclass (an enum
# member) several times slower than a str, which a night's thousands of rows would feel
NEW, WITHDRAWN, VILLAGE = Status.NEW.value, Status.WITHDRAWN.value, Level.VILLAGE.value


def alert_id(rule: str, person_id: str) -> str:
    """Stable across reruns and databases: derived from the rule and the person."""
    return "A" + hashlib.sha256(f"{rule}|{person_id}".encode()).hexdigest()[:15].upper()


class Existing(Enum):
    """What becomes of an alert the person already has (see the module's docstring)."""
    FOLLOW = "follow"  # extended, reopened or withdrawn as the facts say
    KEEP = "keep"  # left as it is


@dataclass(frozen=True)
class Found:
    """One person's alert as the facts (or the night's scores) make it now."""
    evidence: str  # JSON list of facts, each with its file and line (or a feature's value)
    evidence_count: int
    amount_cents: int
    village: str | None
    flagged: frozenset[tuple[str, str]] = frozenset()  # (fact, id) of the facts the rule flags
    score: float | None = None  # None: the entry's score
    explanation: str | None = None  # JSON, frozen when raised


@dataclass
class Raised:
    raised: int = 0
    extended: int = 0  # changed alerts (extended, reopened or back from withdrawn)
    withdrawn: int = 0


def raise_alerts(conn: Connection, entry: Rule, found: Mapping[str, Found], as_of: str,
                 among: ColumnElement[bool] | None = None, existing: Existing = Existing.FOLLOW) -> Raised:
    """Raise (or extend, reopen, withdraw) the alerts of `entry` for the people in `found` (person_id → what
    was found), new alerts in the order of `found`. `among`: a condition on `alert` naming the people that
    were looked at (None: everyone), whose alerts not in `found` are withdrawn (`Existing.FOLLOW` only)."""
    mine = alert.c.rule == entry.code
    if among is not None:
        mine = mine & among
    outcome = Raised()
    before: dict[str, Any]
    if existing is Existing.KEEP:
        before = {p: None for p in conn.execute(select(alert.c.person_id).where(mine)).scalars()}
    else:
        before = {r.person_id: r for r in conn.execute(
            select(alert.c.person_id, alert.c.evidence, alert.c.amount_at_risk_cents, alert.c.village_code,
                   alert.c.status).where(mine))}
        outcome.withdrawn = _withdraw(conn, entry, [p for p, r in before.items()
                                                    if p not in found and r.status != WITHDRAWN], as_of)
    new_rows, changed = [], []
    for person_id, now in found.items():
        if person_id not in before:
            new_rows.append(_new_alert(entry, person_id, now, as_of))
        elif existing is Existing.FOLLOW:
            values = _followed(conn, entry, person_id, before[person_id], now, as_of)
            if values is not None:
                changed.append(values)
    for columns in {tuple(sorted(v)) for v in changed}:
        batch = [v for v in changed if tuple(sorted(v)) == columns]
        conn.execute(update(alert).where(alert.c.alert_id == bindparam("b_id")).values(
            {c: bindparam(c) for c in columns if c != "b_id"}), batch)
    if new_rows:
        conn.execute(alert.insert(), new_rows)
    outcome.raised, outcome.extended = len(new_rows), len(changed)
    return outcome


def _withdraw(conn: Connection, entry: Rule, people: list[str], as_of: str) -> int:
    """The facts behind these people's alerts are gone (a later-loaded older delivery replaced them): withdrawn,
    not deleted; their evidence stays for the record, their amount at risk becomes 0; they come back as new
    if facts flag the person again."""
    if people:
        conn.execute(update(alert).where(alert.c.alert_id == bindparam("b_id")).values(
            status=WITHDRAWN, amount_at_risk_cents=0, last_changed=as_of),
            [{"b_id": alert_id(entry.code, p)} for p in people])
    return len(people)


def _new_alert(entry: Rule, person_id: str, now: Found, as_of: str) -> dict:
    return {"alert_id": alert_id(entry.code, person_id), "rule": entry.code.value, "rule_version": entry.version,
            "person_id": person_id, "village_code": now.village, "severity": entry.severity.value,
            "score": entry.score if now.score is None else now.score, "amount_at_risk_cents": now.amount_cents,
            "first_seen": as_of, "last_changed": as_of, "status": NEW, "evidence": now.evidence,
            "evidence_count": now.evidence_count, "explanation": now.explanation, "raised_at": datetime.now(),
            "level": VILLAGE}


def _followed(conn: Connection, entry: Rule, person_id: str, before, now: Found, as_of: str) -> dict | None:
    """The new values of an alert the person has, as the facts make it now (None: unchanged); a reopening
    goes to the audit log."""
    if (before.evidence == now.evidence and before.amount_at_risk_cents == now.amount_cents
            and before.village_code == now.village and before.status != WITHDRAWN):
        return None
    status = before.status
    reopenable = status == WITHDRAWN or status in REOPENED_BY_NEW_FACTS
    fresh = _new_flagged_facts(before.evidence, now.flagged) if reopenable else []
    if status == WITHDRAWN or (status in REOPENED_BY_NEW_FACTS and fresh):
        status = NEW  # a dismissed or closed alert is not raised again for the same facts, only new ones
        log_event(conn, alert_id(entry.code, person_id), SYSTEM, Action.REOPEN, before.status, status,
                  "新的事实 / new facts", {"new_facts": fresh})
    values = {"b_id": alert_id(entry.code, person_id), "amount_at_risk_cents": now.amount_cents,
              "evidence": now.evidence, "evidence_count": now.evidence_count, "last_changed": as_of,
              "village_code": now.village, "rule_version": entry.version, "status": status}
    if status != before.status:
        values.update(raised_at=datetime.now(), level=VILLAGE, escalated_at=None)
    return values


def _new_flagged_facts(old_evidence: str, now: frozenset[tuple[str, str]]) -> list[str]:
    """Flagged facts that the alert's evidence did not name before (another overpaid month, another card use)."""
    before = {(e["fact"], e["id"]) for e in json.loads(old_evidence or "[]") if e.get("flagged")}
    return sorted(f"{f}:{i}" for f, i in now if (f, i) not in before)
