"""The system's words (risk.domain) and the warehouse: every column that holds one of them takes each word and
refuses any other, on SQLite and PostgreSQL; a warehouse filled before migration 0016 keeps its rows; the
region hierarchy; the registry of alert kinds."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Table, inspect, select, update
from sqlalchemy.exc import IntegrityError

from risk import domain
from risk.db import gateway
from risk.db.tables import (
    account,
    alert,
    alert_event,
    detection_mark,
    metadata,
    notification,
    recovery,
    region,
    supervisor,
    touched_person,
)
from risk.detection import registry
from risk.domain import (
    ESCALATION,
    Action,
    Channel,
    DeliveryStatus,
    Language,
    Level,
    Method,
    Role,
    RuleCode,
    Severity,
    Status,
)

PROVENANCE = {"delivery_day": "2026-01-05", "source_file": "-", "source_line": 1}
AT = datetime(2026, 1, 5, 8, 0)

# (table, column) -> every word it may hold
WORDS: dict[tuple[Table, str], tuple[str, ...]] = {
    (alert, "status"): tuple(Status),
    (alert, "level"): ESCALATION,
    (alert, "rule"): tuple(RuleCode),
    (alert, "severity"): tuple(Severity),
    (alert_event, "action"): tuple(Action),
    (alert_event, "from_status"): tuple(Status),
    (alert_event, "to_status"): tuple(Status),
    (recovery, "method"): tuple(Method),
    (notification, "channel"): tuple(Channel),
    (notification, "status"): tuple(DeliveryStatus),
    (account, "language"): tuple(Language),
    (supervisor, "role"): tuple(Role),
    (region, "level"): tuple(Level),
    (touched_person, "rule"): tuple(RuleCode),
    (detection_mark, "rule"): (*RuleCode, "*"),
}


def fill(url: str) -> None:
    """One row in each table of WORDS, each word a legal one."""
    with gateway.transaction(url) as conn:
        conn.execute(region.insert().values(code="431100000000", name="永州市", level="city", parent_code=None,
                                            **PROVENANCE))
        conn.execute(supervisor.insert().values(user_id="u1", name="测试", role="village",
                                                region_code="431102001001", **PROVENANCE))
        conn.execute(alert.insert().values(
            alert_id="a1", rule="deceased_payment", rule_version=1, person_id="431102195001010011",
            village_code="431102001001", severity="high", score=1.0, amount_at_risk_cents=100,
            first_seen="2026-01-05", last_changed="2026-01-05", status="confirmed", evidence="[]",
            evidence_count=0, raised_at=AT, level="village"))
        conn.execute(alert_event.insert().values(alert_id="a1", at=AT, user_id="u1", action="confirm",
                                                 from_status="investigating", to_status="confirmed"))
        conn.execute(recovery.insert().values(alert_id="a1", amount_cents=100, recovered_on=date(2026, 1, 5),
                                              method="deduction", recorded_by="u1", recorded_at=AT))
        conn.execute(notification.insert().values(user_id="u1", channel="email", created_at=AT, status="due",
                                                  attempts=0, alerts=1, subject="s"))
        conn.execute(account.insert().values(user_id="u1", language="en", updated_at=AT))
        conn.execute(touched_person.insert().values(touch_seq=1, rule="dual_benefit", person_id="431102195001010011"))
        conn.execute(detection_mark.insert().values(part="431102", rule="dual_benefit", rule_version=1, touch_seq=1))


def test_every_enumerated_column_takes_its_words_and_refuses_others(db_url):
    gateway.migrate(db_url)
    fill(db_url)
    for (table, column), words in WORDS.items():
        for word in words:  # each word the code may write is taken
            with gateway.transaction(db_url) as conn:
                assert conn.execute(update(table).values({column: word})).rowcount == 1
        for wrong in ("xx", words[0].upper(), words[0][:-1]):  # short enough for every column
            with pytest.raises(IntegrityError), gateway.transaction(db_url) as conn:
                conn.execute(update(table).values({column: wrong}))


def test_a_fresh_warehouse_has_the_constraints_the_tables_declare(db_url):
    gateway.migrate(db_url)
    with gateway.engine_for(db_url).connect() as conn:
        found = {t: {c["name"] for c in inspect(conn).get_check_constraints(t)} for t in metadata.tables}
    declared = {t.name: {str(c.name) for c in t.constraints if c.__class__.__name__ == "CheckConstraint"}
                for t in metadata.sorted_tables}
    assert found == declared


def filled_before_0016(url: str) -> None:
    """A warehouse migrated up to 0015, with the rows of `fill`."""
    from alembic import command

    with gateway.engine_for(url).begin() as conn:
        cfg = gateway.alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0015")
    fill(url)


def test_an_upgrade_keeps_a_filled_warehouse(db_url):
    """A warehouse at 0015 with rows: after the upgrade every row is there as it was, and the words are checked."""
    filled_before_0016(db_url)
    tables = [table for table, _ in WORDS]
    with gateway.transaction(db_url) as conn:
        before = {t.name: sorted(map(tuple, conn.execute(select(t)))) for t in tables}
    gateway.migrate(db_url)
    with gateway.transaction(db_url) as conn:
        after = {t.name: sorted(map(tuple, conn.execute(select(t)))) for t in tables}
    assert after == before and all(before.values())
    for (table, column), _ in WORDS.items():
        with pytest.raises(IntegrityError), gateway.transaction(db_url) as conn:
            conn.execute(update(table).values({column: "xx"}))


def test_an_upgrade_stops_at_a_word_it_does_not_know(sqlite_url):
    filled_before_0016(sqlite_url)
    with gateway.transaction(sqlite_url) as conn:
        conn.execute(update(recovery).values(method="cash"))
    with pytest.raises(RuntimeError, match=r"recovery\.method .*'cash'"):
        gateway.migrate(sqlite_url)
    with gateway.transaction(sqlite_url) as conn:  # nothing changed: fix the value, and the upgrade goes through
        conn.execute(update(recovery).values(method="other"))
    gateway.migrate(sqlite_url)


# ---------------------------------------------------------------- the region hierarchy


def test_the_region_hierarchy():
    village = "431102001001"
    assert [domain.prefix(village, level) for level in domain.HIERARCHY] == ["4311", "431102", "431102001", village]
    assert [domain.area_code(village, level) for level in domain.HIERARCHY] == [
        "431100000000", "431102000000", "431102001000", village]
    assert [domain.parent(code, level) for code, level in (
        (village, "village"), ("431102001000", "township"), ("431102000000", "county"), ("431100000000", "city"))
    ] == ["431102001000", "431102000000", "431100000000", None]
    assert domain.parent("4311020010", "village") is None and domain.parent(village, "street") is None
    assert {role: domain.area_digits(role) for role in Role} == {
        "village": 12, "township": 9, "county": 6, "city": 4, "auditor": 4}
    assert domain.area_prefix(village, "county") == "431102" and domain.contains("431102", village)
    assert not domain.contains("431103", village)
    assert domain.code_range("431102") == ("431102", "431103")
    assert domain.code_range("431109") == ("431109", "43110:")  # ':' follows '9': every 431109… is below it
    assert domain.first_and_last("431102") == ("431102000000", "431102999999")
    assert [Role(r).level for r in Role] == ["village", "township", "county", "city", "city"]


def test_words_are_the_strings_the_warehouse_holds():
    assert Status.NEW == "new" and f"{Status.WITHDRAWN}" == "withdrawn" and str(Action.VIEW_UNMASKED) == "view_unmasked"
    assert domain.values(Level) == ("city", "county", "township", "village")
    assert ESCALATION == ("village", "township", "county") and domain.OPEN == ("new", "acknowledged", "investigating")


# ---------------------------------------------------------------- the registry of alert kinds


def test_every_rule_code_has_one_registry_entry_and_detection_runs_the_sql_ones():
    assert [e.code for e in registry.ENTRIES] == list(RuleCode)
    assert registry.ANOMALY.by_scoring and registry.ANOMALY not in registry.RULES
    assert all(not r.by_scoring and r.path.is_file() for r in registry.RULES)
    assert set(registry.BY_CODE) == set(RuleCode) - {RuleCode.ANOMALY}
    with pytest.raises(ValueError, match="behaviour scoring"):
        registry.ANOMALY.sql("sqlite")
    assert registry.listed() == [*sorted(registry.BY_CODE), "anomaly"]


def test_every_alert_has_its_title_from_the_registry():
    assert registry.title("anomaly", "zh") == "行为异常" and registry.title("anomaly", "en") == "Unusual behaviour"
    assert registry.title("deceased_payment", "en") == "Benefit paid after death"
    assert registry.title("no_such_rule", "zh") == "no_such_rule"
