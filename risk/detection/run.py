"""Detection: run every rule in the warehouse and keep one alert per (rule, person).

A new alert is raised with `first_seen` = the newest delivery day loaded; new evidence extends the open
alert (its facts and amount_at_risk) instead of opening another; a rerun on the same facts changes nothing.

A night costs what it brings: once a detection has run, the next one looks only at the people whose alerts
the facts loaded since can change (risk.detection.touched records the loads, risk.detection.scope works out whom they concern),
and decides their alerts from all their facts, exactly as a run over the whole city would. A first
detection, a new rule or a rule of a new version runs whole.

Detection can run in parts (so that several workers share one night): every person belongs to exactly one
county, the county of their recipients row, or NO_COUNTY when they are not a recipient (a death record of
someone who draws nothing); a part is one or more of these (risk.detection.scope.groups makes a few of about equal
size) and decides the alerts of its people only, reading their facts (and, for shared_account, every
payment into the accounts they were paid into), so the parts together do exactly what one run over the
whole city does.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select, update

from risk.alerts.lifecycle import SYSTEM, log_event
from risk.db import gateway
from risk.db.tables import alert
from risk.detection import scope as scoping
from risk.detection import touched
from risk.detection.registry import EVIDENCE_COLUMNS, RULES, Rule
from risk.detection.scope import NO_COUNTY, Scope, part_of_alert, parts
from risk.domain import Action, Level, Status

__all__ = ["NO_COUNTY", "RuleOutcome", "alert_id", "detect", "parts", "run_rule"]

# plain strings for the rows of many alerts: SQLite's driver binds a str subclass (an enum member) several
# times slower than a str, which a night's thousands of rows would feel
NEW, WITHDRAWN, FIRST_LEVEL = Status.NEW.value, Status.WITHDRAWN.value, Level.VILLAGE.value
REOPENED_BY_NEW_FACTS = (Status.DISMISSED, Status.CLOSED)
_ORDER = {name: i for i, name in enumerate(EVIDENCE_COLUMNS)}
PERSON, FACT, FACT_ID, FLAGGED, AT_RISK, DAY, FILE, LINE, DETAIL = (_ORDER[c] for c in EVIDENCE_COLUMNS)
VILLAGE = len(EVIDENCE_COLUMNS)  # the evidence query adds the person's village


def alert_id(rule: str, person_id: str) -> str:
    """Stable across reruns and databases: derived from the rule and the person."""
    return "A" + hashlib.sha256(f"{rule}|{person_id}".encode()).hexdigest()[:15].upper()


@dataclass
class RuleOutcome:
    rule: str
    alerts: int = 0  # open (not withdrawn) alerts of the rule in the part after the run
    raised: int = 0
    extended: int = 0
    withdrawn: int = 0
    amount_cents: int = 0  # their amount at risk
    people: int = -1  # how many people the run looked at (-1: the whole city)
    touched_only: bool = False  # only the people the facts loaded since the last detection can concern
    seconds: float = 0.0


@dataclass(frozen=True)
class Evidence:
    """One person's alert as the facts make it now."""
    facts_json: str
    amount: int
    count: int
    village: str | None
    flagged: frozenset[tuple[str, str]]  # (fact, id) of the facts the rule flags


def _evidence(conn: Connection, rule: Rule, scope: Scope) -> dict[str, Evidence]:
    """The rule's facts per person it flags (people with context facts only are left out)."""
    sql = (f"SELECT e.*, r.village_code FROM ({rule.sql(conn.dialect.name).strip().rstrip(';')}\n) e "
           f"LEFT JOIN recipient r ON r.person_id = e.person_id")
    rows = conn.execute(scoping.bind(scope, sql)).all()
    by_person: dict[str, list] = defaultdict(list)
    seen: set[tuple] = set()
    for r in rows:
        key = (r[PERSON], r[FACT], r[FACT_ID], r[FILE], r[LINE])
        if key not in seen:
            seen.add(key)
            by_person[r[PERSON]].append(r)
    found = {}
    for person_id, facts in by_person.items():
        if not any(int(f[FLAGGED]) for f in facts):
            continue
        facts.sort(key=lambda f: (-int(f[FLAGGED]), f[FACT], f[FILE], int(f[LINE]), f[FACT_ID]))
        out = [{"fact": f[FACT], "id": f[FACT_ID], "flagged": bool(int(f[FLAGGED])),
                "amount_at_risk": _yuan(int(f[AT_RISK])), "detail": f[DETAIL], "file": f[FILE],
                "line": int(f[LINE]), "delivery_day": f[DAY]} for f in facts]
        found[person_id] = Evidence(
            facts_json=json.dumps(out, ensure_ascii=False, separators=(",", ":")),
            amount=sum(int(f[AT_RISK]) for f in facts), count=len(facts), village=facts[0][VILLAGE],
            flagged=frozenset((f[FACT], f[FACT_ID]) for f in facts if int(f[FLAGGED])))
    return found


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _new_flagged_facts(old_evidence: str, now: frozenset[tuple[str, str]]) -> list[str]:
    """Flagged facts that the alert's evidence did not name before (another overpaid month, another card use)."""
    before = {(e["fact"], e["id"]) for e in json.loads(old_evidence or "[]") if e.get("flagged")}
    return sorted(f"{f}:{i}" for f, i in now if (f, i) not in before)


def run_rule(conn: Connection, rule: Rule, as_of: str, scope: Scope = scoping.CITY) -> RuleOutcome:
    """Decide the alerts of one rule for the people of `scope` (the whole city unless told)."""
    started = time.monotonic()
    outcome = RuleOutcome(rule.code, touched_only=scope.touched_only)
    with scoping.shadowed(conn, rule, scope) as people:
        outcome.people = people
        found = _evidence(conn, rule, scope) if people != 0 else {}
    if people == 0:
        outcome.seconds = time.monotonic() - started
        return outcome
    mine = alert.c.rule == rule.code
    decided = scoping.in_scope(scope)
    if decided is not None:
        mine = mine & decided
    existing = {r.person_id: r for r in conn.execute(
        select(alert.c.person_id, alert.c.evidence, alert.c.amount_at_risk_cents, alert.c.village_code,
               alert.c.status).where(mine))}
    gone = [p for p, r in existing.items() if p not in found and r.status != WITHDRAWN]
    if gone:
        # the facts behind these alerts are gone (a later-loaded older delivery replaced them): withdrawn,
        # not deleted; their evidence stays for the record, their amount at risk becomes 0; they come back
        # as new if facts flag the person again
        conn.execute(update(alert).where(alert.c.alert_id == bindparam("b_id")).values(
            status=WITHDRAWN, amount_at_risk_cents=0, last_changed=as_of),
            [{"b_id": alert_id(rule.code, p)} for p in gone])
    outcome.withdrawn = len(gone)
    new_rows, changed = [], []
    for person_id in sorted(found):
        now = found[person_id]
        before = existing.get(person_id)
        if before is None:
            new_rows.append({
                "alert_id": alert_id(rule.code, person_id), "rule": rule.code.value, "rule_version": rule.version,
                "person_id": person_id, "village_code": now.village, "severity": rule.severity.value,
                "score": rule.score, "amount_at_risk_cents": now.amount, "first_seen": as_of, "last_changed": as_of,
                "status": NEW, "evidence": now.facts_json, "evidence_count": now.count, "explanation": None,
                "raised_at": datetime.now(), "level": FIRST_LEVEL})
        elif (before.evidence != now.facts_json or before.amount_at_risk_cents != now.amount
              or before.village_code != now.village or before.status == WITHDRAWN):
            status = before.status
            reopenable = status == WITHDRAWN or status in REOPENED_BY_NEW_FACTS
            fresh = _new_flagged_facts(before.evidence, now.flagged) if reopenable else []
            if status == WITHDRAWN or (status in REOPENED_BY_NEW_FACTS and fresh):
                status = NEW  # a dismissed or closed alert is not raised again for the same facts, only new ones
                log_event(conn, alert_id(rule.code, person_id), SYSTEM, Action.REOPEN, before.status, status,
                          "新的事实 / new facts", {"new_facts": fresh})
            values = {"b_id": alert_id(rule.code, person_id), "amount_at_risk_cents": now.amount,
                      "evidence": now.facts_json, "evidence_count": now.count, "last_changed": as_of,
                      "village_code": now.village, "rule_version": rule.version, "status": status}
            if status != before.status:
                values.update(raised_at=datetime.now(), level=FIRST_LEVEL, escalated_at=None)
            changed.append(values)
    for columns in {tuple(sorted(v)) for v in changed}:
        batch = [v for v in changed if tuple(sorted(v)) == columns]
        conn.execute(update(alert).where(alert.c.alert_id == bindparam("b_id")).values(
            {c: bindparam(c) for c in columns if c != "b_id"}), batch)
    if new_rows:
        conn.execute(alert.insert(), new_rows)
    outcome.raised, outcome.extended = len(new_rows), len(changed)
    outcome.seconds = time.monotonic() - started
    return outcome


def _count_open(conn: Connection, outcomes: list[RuleOutcome], part: Sequence[str] | None) -> None:
    """Each rule's open alerts in the part after the run, and their amount at risk."""
    q = select(alert.c.rule, func.count(), func.sum(alert.c.amount_at_risk_cents)).where(
        alert.c.rule.in_([o.rule for o in outcomes]) & (alert.c.status != WITHDRAWN)).group_by(alert.c.rule)
    if part is not None:
        q = q.where(part_of_alert(part))
    found = {rule: (int(n), int(cents or 0)) for rule, n, cents in conn.execute(q)}
    for o in outcomes:
        o.alerts, o.amount_cents = found.get(o.rule, (0, 0))


def prepare(conn: Connection, as_of: str, rules: tuple[Rule, ...] = RULES) -> list[RuleOutcome]:
    """The city-wide step of a night, done by whichever detection comes first: turn the loads' touches into
    people (scoping.translate), and run city-wide the rules no part has run in their version yet (a first
    detection, a new rule, a new version), marking every part. Parts that run at once (on PostgreSQL) take
    turns here; once it is done they find nothing to do and go on side by side."""
    if not scoping.untranslated(conn) and not scoping.Marks.read(conn).never_detected(rules):
        return []
    gateway.one_at_a_time(conn, "detection")
    scoping.translate(conn, rules)
    current = parts(conn)
    marks = scoping.Marks.read(conn)
    first = marks.never_detected(rules, current)
    outcomes = [run_rule(conn, rule, as_of) for rule in first]
    scoping.mark(conn, current, first, marks.translated)
    return outcomes


def detect(conn: Connection, as_of: str, rules: tuple[Rule, ...] = RULES,
           part: Sequence[str] | None = None) -> list[RuleOutcome]:
    """Run the rules over the whole city, or over one part (a list of counties from `parts`, see `groups`):
    each on the people the facts loaded since its last detection can concern, or whole when it never ran
    (in one of the part's counties, in this version)."""
    gateway.prefer_index_reads(conn)
    city_wide = {o.rule: o for o in prepare(conn, as_of, rules)}
    night = scoping.Night.plan(conn, rules, part)
    night.begin(conn)
    outcomes = [city_wide.get(rule.code) or run_rule(conn, rule, as_of, night.scope_of(rule)) for rule in rules]
    night.end(conn)
    _count_open(conn, outcomes, part)
    scoping.mark(conn, night.parts, rules, night.upto)
    touched.forget_seen(conn, night.parts if part is None else None)
    return outcomes
