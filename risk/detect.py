"""Detection: run every rule in the warehouse and keep one alert per (rule, person).

A new alert is raised with `first_seen` = the newest delivery day loaded; new evidence extends the open
alert (its facts and amount_at_risk) instead of opening another; a rerun on the same facts changes nothing.

Detection can run in parts, one per county (so that several workers share one night): every person belongs
to exactly one part, the county of their recipients row, or NO_COUNTY when they are not a recipient (a
death record of someone who draws nothing); a part sees the facts and alerts of its people only, so the
parts together do exactly what one run over the whole city does.
"""
from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, bindparam, func, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from risk.db.tables import alert, recipient
from risk.rules import EVIDENCE_COLUMNS, RULES, Rule
from risk.workflow import log_event

NO_COUNTY = "-"  # the part of people who are not recipients
COUNTY_DIGITS = 6
WITHDRAWN = "withdrawn"  # the system's own status: the facts behind the alert are no longer in the warehouse
REOPENED_BY_NEW_FACTS = ("dismissed", "closed")


def _new_flagged_facts(old_evidence: str, facts: pd.DataFrame) -> list[str]:
    """Flagged facts that the alert's evidence did not name before (another overpaid month, another card use)."""
    before = {(e["fact"], e["id"]) for e in json.loads(old_evidence or "[]") if e.get("flagged")}
    now = facts[facts["flagged"] == 1]
    return sorted(f"{f}:{i}" for f, i in zip(now["fact"], now["fact_id"], strict=True) if (f, i) not in before)


def alert_id(rule: str, person_id: str) -> str:
    """Stable across reruns and databases: derived from the rule and the person."""
    return "A" + hashlib.sha256(f"{rule}|{person_id}".encode()).hexdigest()[:15].upper()


@dataclass
class RuleOutcome:
    rule: str
    alerts: int = 0
    raised: int = 0
    extended: int = 0
    withdrawn: int = 0
    amount_cents: int = 0
    seconds: float = 0.0


def parts(conn: Connection) -> list[str]:
    """The counties of the recipients, and NO_COUNTY: the parts detection and scoring can be split into."""
    counties = conn.execute(select(func.substr(recipient.c.village_code, 1, COUNTY_DIGITS)).distinct()).scalars()
    return sorted(c for c in counties if c) + [NO_COUNTY]


def _people_of(county: str) -> ColumnElement[bool]:
    """The condition 'person in this part', on the alert table's person_id."""
    members = select(recipient.c.person_id)
    if county == NO_COUNTY:
        return alert.c.person_id.not_in(members)
    return alert.c.person_id.in_(members.where(func.substr(recipient.c.village_code, 1, COUNTY_DIGITS) == county))


def _rule_sql(rule: Rule, dialect: str, county: str | None) -> str:
    sql = rule.sql(dialect).strip().rstrip(";")
    if county is None:
        return sql
    members = "SELECT person_id FROM recipient"
    if county == NO_COUNTY:
        return f"SELECT e.* FROM ({sql}\n) e WHERE e.person_id NOT IN ({members})"
    return (f"SELECT e.* FROM ({sql}\n) e WHERE e.person_id IN ({members} "
            f"WHERE substr(village_code, 1, {COUNTY_DIGITS}) = :county)")


PERSON_FACTS = ("payment", "card_event", "death", "incarceration", "certification")  # tables keyed by person


@contextmanager
def _only_the_part(conn: Connection, county: str):
    """For the statements run inside: each table of a person's facts shows the part's people only.
    Temporary views of the same names shadow the tables (SQLite and PostgreSQL both look in the session's
    temporary schema first), so a per-person rule's SQL, unchanged, reads a county's facts instead of the
    city's; they are dropped afterwards, also on error."""
    if not (county == NO_COUNTY or (county.isdigit() and len(county) == COUNTY_DIGITS)):
        raise ValueError(f"not a county part: {county!r}")
    postgres = conn.dialect.name == "postgresql"
    schema = conn.execute(text("SELECT current_schema()")).scalar() if postgres else "main"
    temp = "pg_temp" if postgres else "temp"
    members = f"SELECT person_id FROM {schema}.recipient"
    part = (f"person_id NOT IN ({members})" if county == NO_COUNTY else
            f"person_id IN ({members} WHERE substr(village_code, 1, {COUNTY_DIGITS}) = '{county}')")
    try:
        for table in PERSON_FACTS:
            conn.exec_driver_sql(f"CREATE TEMP VIEW {table} AS SELECT * FROM {schema}.{table} WHERE {part}")
        yield
    finally:
        for table in PERSON_FACTS:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {temp}.{table}")


def evidence_of(rule: Rule, conn: Connection, county: str | None = None) -> pd.DataFrame:
    query = text(_rule_sql(rule, conn.dialect.name, county))
    if county not in (None, NO_COUNTY):
        query = query.bindparams(bindparam("county", county))
    if county is not None and rule.per_person:
        with _only_the_part(conn, county):
            rows = conn.execute(query).all()
    else:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))
    if frame.empty:
        return frame
    frame["flagged"] = frame["flagged"].astype(int)
    frame["at_risk_cents"] = frame["at_risk_cents"].astype("int64")
    frame["source_line"] = frame["source_line"].astype(int)
    return frame.drop_duplicates(["person_id", "fact", "fact_id", "source_file", "source_line"])


def _facts_json(facts: pd.DataFrame) -> str:
    ordered = facts.sort_values(["flagged", "fact", "source_file", "source_line", "fact_id"],
                                ascending=[False, True, True, True, True])
    out = [{"fact": r.fact, "id": r.fact_id, "flagged": bool(r.flagged),
            "amount_at_risk": f"{r.at_risk_cents / 100:.2f}", "detail": r.detail,
            "file": r.source_file, "line": int(r.source_line), "delivery_day": r.delivery_day}
           for r in ordered.itertuples(index=False)]
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def _withdraw(conn: Connection, rule: Rule, existing: dict, still_flagged: set, as_of: str) -> int:
    """Alerts whose facts are gone (a later-loaded older delivery replaced them) are withdrawn, not
    deleted: their evidence stays for the record, their amount at risk becomes 0; they come back as new
    if facts flag the person again."""
    gone = [p for p, r in existing.items() if p not in still_flagged and r.status != WITHDRAWN]
    for person_id in gone:
        conn.execute(update(alert).where(alert.c.alert_id == alert_id(rule.code, person_id)).values(
            status=WITHDRAWN, amount_at_risk_cents=0, last_changed=as_of))
    return len(gone)


def run_rule(conn: Connection, rule: Rule, as_of: str, county: str | None = None) -> RuleOutcome:
    """Run one rule over the whole city, or over one part (`county`, see `parts`)."""
    started = time.monotonic()
    outcome = RuleOutcome(rule.code)
    evidence = evidence_of(rule, conn, county)
    mine = alert.c.rule == rule.code
    if county is not None:
        mine = mine & _people_of(county)
    if evidence.empty:
        current: dict = {r.person_id: r for r in conn.execute(select(alert.c.person_id, alert.c.status).where(mine))}
        outcome.withdrawn = _withdraw(conn, rule, current, set(), as_of)
        outcome.seconds = time.monotonic() - started
        return outcome
    flagged_people = evidence.loc[evidence["flagged"] == 1, "person_id"].unique()
    evidence = evidence[evidence["person_id"].isin(flagged_people)]
    existing = {r.person_id: r for r in conn.execute(
        select(alert.c.person_id, alert.c.evidence, alert.c.amount_at_risk_cents, alert.c.village_code,
               alert.c.status).where(mine))}
    outcome.withdrawn = _withdraw(conn, rule, existing, set(flagged_people), as_of)
    villages = dict(conn.execute(select(recipient.c.person_id, recipient.c.village_code).where(
        recipient.c.person_id.in_(list(flagged_people)))).all()) if len(flagged_people) < 30000 else \
        dict(conn.execute(select(recipient.c.person_id, recipient.c.village_code)).all())
    new_rows = []
    for person_id, facts in evidence.groupby("person_id", sort=True):
        amount = int(facts["at_risk_cents"].sum())
        facts_json = _facts_json(facts)
        outcome.alerts += 1
        outcome.amount_cents += amount
        before = existing.get(person_id)
        if before is None:
            new_rows.append({
                "alert_id": alert_id(rule.code, person_id), "rule": rule.code, "rule_version": rule.version,
                "person_id": person_id, "village_code": villages.get(person_id), "severity": rule.severity,
                "score": rule.score, "amount_at_risk_cents": amount, "first_seen": as_of, "last_changed": as_of,
                "status": "new", "evidence": facts_json, "evidence_count": len(facts), "explanation": None,
                "raised_at": datetime.now(), "level": "village"})
        elif (before.evidence != facts_json or before.amount_at_risk_cents != amount
              or before.village_code != villages.get(person_id) or before.status == WITHDRAWN):
            status = before.status
            fresh = _new_flagged_facts(before.evidence, facts)
            if before.status == WITHDRAWN or (before.status in REOPENED_BY_NEW_FACTS and fresh):
                status = "new"  # a dismissed or closed alert is not raised again for the same facts, only new ones
                log_event(conn, alert_id(rule.code, person_id), "system", "reopen", before.status, status,
                          "新的事实 / new facts", {"new_facts": fresh})
            conn.execute(update(alert).where(alert.c.alert_id == alert_id(rule.code, person_id)).values(
                amount_at_risk_cents=amount, evidence=facts_json, evidence_count=len(facts), last_changed=as_of,
                village_code=villages.get(person_id), rule_version=rule.version, status=status,
                **({"raised_at": datetime.now(), "level": "village", "escalated_at": None} if status != before.status
                   else {})))
            outcome.extended += 1
    if new_rows:
        conn.execute(alert.insert(), new_rows)
    outcome.raised = len(new_rows)
    outcome.seconds = time.monotonic() - started
    return outcome


def detect(conn: Connection, as_of: str, rules: tuple[Rule, ...] = RULES,
           county: str | None = None) -> list[RuleOutcome]:
    return [run_rule(conn, rule, as_of, county) for rule in rules]
