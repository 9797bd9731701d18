"""Settings from the environment: escalation deadlines, digests' outbox and links."""
from __future__ import annotations

import pytest

from risk.errors import ConfigError
from risk.settings import DEFAULT_SLA_DAYS, Settings, parse_parts, parse_sla_days


def test_sla_days_default_to_the_issue_s_three_seven_fourteen() -> None:
    assert parse_sla_days(None) == parse_sla_days("") == {"high": 3, "medium": 7, "low": 14} == DEFAULT_SLA_DAYS


def test_sla_days_can_be_changed_one_severity_at_a_time() -> None:
    assert parse_sla_days("high=2") == {"high": 2, "medium": 7, "low": 14}
    assert parse_sla_days(" low = 30 , medium=10") == {"high": 3, "medium": 10, "low": 30}


@pytest.mark.parametrize("text, says", [("urgent=1", "unknown severity 'urgent'"),
                                        ("high=0", "≥ 1, got '0'"), ("high=soon", "got 'soon'")])
def test_a_wrong_sla_setting_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_sla_days(text)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("RISK_SLA_DAYS", "medium=5")
    monkeypatch.setenv("RISK_OUTBOX", str(tmp_path / "box"))
    monkeypatch.setenv("RISK_BASE_URL", "https://risk.example.gov.cn")
    s = Settings.load(db="sqlite://", var_dir=tmp_path)
    assert s.sla_days["medium"] == 5 and s.outbox == tmp_path / "box"
    assert s.base_url == "https://risk.example.gov.cn"
    assert Settings.load(db="sqlite://", var_dir=tmp_path, outbox=tmp_path / "x").outbox == tmp_path / "x"


def test_a_night_splits_into_two_parts_unless_risk_parts_says_otherwise(monkeypatch, tmp_path) -> None:
    assert Settings.load(db="sqlite://", var_dir=tmp_path).parts == 2 == parse_parts("") == parse_parts(None)
    monkeypatch.setenv("RISK_PARTS", " 4 ")
    assert Settings.load(db="sqlite://", var_dir=tmp_path).parts == 4
    for wrong in ("0", "-1", "two"):
        with pytest.raises(ConfigError, match=f"RISK_PARTS .* got '{wrong}'"):
            parse_parts(wrong)


def test_risk_home_points_an_installed_package_at_its_rules_and_suites(tmp_path) -> None:
    """The Docker image installs the package into site-packages and keeps sql/, checks/ and dags/ in
    RISK_HOME."""
    import os
    import shutil
    import subprocess
    import sys

    from risk.settings import ROOT

    home = tmp_path / "home"
    for folder in ("sql", "checks"):
        shutil.copytree(ROOT / folder, home / folder)
    code = ("from risk.detection.registry import RULES_DIR; from risk.ingest.checks import CHECKS_DIR; "
            "print(RULES_DIR); print(CHECKS_DIR)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "RISK_HOME": str(home)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(home / "sql" / "rules"), str(home / "checks")]
