"""The system's words (risk.domain): the strings the warehouse holds, the region hierarchy, and the registry of
alert kinds."""
from __future__ import annotations

import pytest

from risk import domain
from risk.detection import registry
from risk.domain import ESCALATION, Action, Level, Role, RuleCode, Status

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
