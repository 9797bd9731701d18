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

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from risk.alerts.raising import Found, raise_alerts
from risk.db.dialect import Dialect
from risk.db.tables import alert
from risk.detection import scope as scoping
from risk.detection import touched
from risk.detection.registry import EVIDENCE_COLUMNS, RULES, Rule
from risk.detection.scope import NO_COUNTY, Scope, part_of_alert, parts
from risk.domain import Status

__all__ = ["NO_COUNTY", "RuleOutcome", "detect", "parts", "run_rule"]

_ORDER = {name: i for i, name in enumerate(EVIDENCE_COLUMNS)}
PERSON, FACT, FACT_ID, FLAGGED, AT_RISK, DAY, FILE, LINE, DETAIL = (_ORDER[c] for c in EVIDENCE_COLUMNS)
VILLAGE = len(EVIDENCE_COLUMNS)  # the evidence query adds the person's village


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


def _evidence(conn: Connection, rule: Rule, scope: Scope) -> dict[str, Found]:
    """The rule's facts per person it flags (people with context facts only are left out), in person order."""
    sql = (f"SELECT e.*, r.village_code FROM ({rule.sql(Dialect.of(conn)).strip().rstrip(';')}\n) e "
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
    for person_id in sorted(by_person):
        facts = by_person[person_id]
        if not any(int(f[FLAGGED]) for f in facts):
            continue
        facts.sort(key=lambda f: (-int(f[FLAGGED]), f[FACT], f[FILE], int(f[LINE]), f[FACT_ID]))
        out = [{"fact": f[FACT], "id": f[FACT_ID], "flagged": bool(int(f[FLAGGED])),
                "amount_at_risk": _yuan(int(f[AT_RISK])), "detail": f[DETAIL], "file": f[FILE],
                "line": int(f[LINE]), "delivery_day": f[DAY]} for f in facts]
        found[person_id] = Found(
            evidence=json.dumps(out, ensure_ascii=False, separators=(",", ":")),
            amount_cents=sum(int(f[AT_RISK]) for f in facts), evidence_count=len(facts), village=facts[0][VILLAGE],
            flagged=frozenset((f[FACT], f[FACT_ID]) for f in facts if int(f[FLAGGED])))
    return found


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


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
    done = raise_alerts(conn, rule, found, as_of, among=scoping.in_scope(scope))
    outcome.raised, outcome.extended, outcome.withdrawn = done.raised, done.extended, done.withdrawn
    outcome.seconds = time.monotonic() - started
    return outcome


def _count_open(conn: Connection, outcomes: list[RuleOutcome], part: Sequence[str] | None) -> None:
    """Each rule's open alerts in the part after the run, and their amount at risk."""
    q = select(alert.c.rule, func.count(), func.sum(alert.c.amount_at_risk_cents)).where(
        alert.c.rule.in_([o.rule for o in outcomes]) & (alert.c.status != Status.WITHDRAWN)).group_by(alert.c.rule)
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
    Dialect.of(conn).one_at_a_time(conn, "detection")
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
    Dialect.of(conn).prefer_index_reads(conn)
    city_wide = {o.rule: o for o in prepare(conn, as_of, rules)}
    night = scoping.Night.plan(conn, rules, part)
    night.begin(conn)
    outcomes = [city_wide.get(rule.code) or run_rule(conn, rule, as_of, night.scope_of(rule)) for rule in rules]
    night.end(conn)
    _count_open(conn, outcomes, part)
    scoping.mark(conn, night.parts, rules, night.upto)
    touched.forget_seen(conn, night.parts if part is None else None)
    return outcomes
