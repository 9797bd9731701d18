"""Settings from the environment: every RISK_* variable read and checked, with a plain message, the same
way for the three DAGs, read nowhere else, and documented as the code has it."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from risk.errors import ConfigError
from risk.settings import DEFAULT_SLA_DAYS, Settings, parse_parts, parse_sla_days, variables


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


# -- every RISK_* variable is a field of Settings, read and checked -----------------------------------------

ROOT_DIR = Path(__file__).resolve().parents[2]

# every setting: a value for its variable, and what Settings.load makes of it
FROM_ENVIRONMENT = {
    "home": ("/opt/risk", Path("/opt/risk")),
    "database_url": ("postgresql+psycopg://risk@db:5432/risk", "postgresql+psycopg://risk@db:5432/risk"),
    "var_dir": ("/srv/risk/var", Path("/srv/risk/var")),
    "landing": ("/srv/landing", Path("/srv/landing")),
    "window_days": ("30", 30),
    "anomaly_budget": ("0.01", 0.01),
    "sla_days": ("high=1", {"high": 1, "medium": 7, "low": 14}),
    "outbox": ("/srv/outbox", Path("/srv/outbox")),
    "base_url": ("https://risk.example.gov.cn", "https://risk.example.gov.cn"),
    "smtp_url": ("mailtos://u:pw@smtp.example.org", "mailtos://u:pw@smtp.example.org"),
    "operator_notify": ("json://ops:8080/", "json://ops:8080/"),
    "parts": ("3", 3),
    "memory_mib": ("2048", 2048),
    "max_file_mib": ("50", 50),
    "secret_key": ("s3cret", "s3cret"),
    "https_only": ("TRUE", True),
    "session_hours": ("2.5", 2.5),
    "session_idle_minutes": ("5", 5.0),
    "celery_worker": ("worker-1@host", "worker-1@host"),
}


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_setting_is_in_this_test() -> None:
    assert list(FROM_ENVIRONMENT) == list(Settings.model_fields)


@pytest.mark.parametrize("name", list(FROM_ENVIRONMENT))
def test_each_variable_is_read_from_the_environment(name: str, tmp_path: Path) -> None:
    raw, expected = FROM_ENVIRONMENT[name]
    variable = "RISK_" + name.upper()
    assert Settings.variable(name) == variable
    loaded = Settings.load(env={variable: raw})
    assert _plain(getattr(loaded, name)) == expected
    assert _plain(Settings.read(name, {variable: raw})) == expected
    default = Settings.load(env={}, var_dir=tmp_path)
    assert getattr(default, name) == getattr(Settings.load(env={variable: ""}, var_dir=tmp_path), name)  # empty: unset


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_WINDOW_DAYS", "45")
    monkeypatch.setenv("risk_parts", "7")  # not RISK_PARTS
    assert Settings.load().window_days == 45 == Settings.read("window_days")
    assert Settings.load().parts == 2


@pytest.mark.parametrize("variable, value, expected", [
    ("RISK_WINDOW_DAYS", "abc", "whole number ≥ 1"),
    ("RISK_WINDOW_DAYS", "0", "whole number ≥ 1"),
    ("RISK_PARTS", "0", "whole number ≥ 1"),
    ("RISK_PARTS", "two", "whole number ≥ 1"),
    ("RISK_ANOMALY_BUDGET", "2", "> 0 and ≤ 1"),
    ("RISK_ANOMALY_BUDGET", "0", "> 0 and ≤ 1"),
    ("RISK_ANOMALY_BUDGET", "half", "> 0 and ≤ 1"),
    ("RISK_SLA_DAYS", "urgent=1", "high, medium, low"),
    ("RISK_SLA_DAYS", "high=soon", "≥ 1"),
    ("RISK_MEMORY_MIB", "-5", "whole number ≥ 256"),
    ("RISK_MEMORY_MIB", "100", "whole number ≥ 256"),
    ("RISK_MAX_FILE_MIB", "0", "whole number ≥ 1"),
    ("RISK_MAX_FILE_MIB", "1.5", "whole number ≥ 1"),
    ("RISK_SESSION_HOURS", "x", "number > 0"),
    ("RISK_SESSION_HOURS", "0", "number > 0"),
    ("RISK_SESSION_IDLE_MINUTES", "-1", "number > 0"),
    ("RISK_HTTPS_ONLY", "maybe", "1, true, yes or 0, false, no"),
])
def test_a_bad_value_stops_the_start_with_a_message_naming_the_variable(variable: str, value: str,
                                                                         expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.load(env={variable: value})
    message = str(error.value)
    assert variable in message and value in message and expected in message
    assert re.search(r"[\u4e00-\u9fff]", message), "the message is in Chinese too"
    assert "pydantic" not in message and "validation error" not in message
    with pytest.raises(ConfigError, match=variable):  # the same when read alone
        Settings.read(variable.removeprefix("RISK_").lower(), {variable: value})


def test_the_command_shows_a_bad_setting_as_a_plain_message_and_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "RISK_VAR_DIR": str(tmp_path), "RISK_WINDOW_DAYS": "abc"}
    risk = Path(sys.executable).parent / "risk"
    proc = subprocess.run([str(risk), "db", "migrate"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "RISK_WINDOW_DAYS='abc'" in proc.stderr and "Traceback" not in proc.stderr


def test_argument_beats_environment_beats_default(tmp_path: Path) -> None:
    env = {"RISK_DATABASE_URL": "sqlite:////env/risk.db", "RISK_VAR_DIR": str(tmp_path / "env-var"),
           "RISK_OUTBOX": str(tmp_path / "env-box"), "RISK_LANDING": "/env/landing", "RISK_PARTS": "3"}
    given = Settings.load(db="sqlite:////arg/risk.db", var_dir=tmp_path / "arg-var", outbox=tmp_path / "arg-box",
                          landing="/arg/landing", parts=5, env=env)
    assert (given.database_url, given.var_dir, given.outbox, given.landing, given.parts) == (
        "sqlite:////arg/risk.db", tmp_path / "arg-var", tmp_path / "arg-box", Path("/arg/landing"), 5)
    from_env = Settings.load(env=env)
    assert (from_env.database_url, from_env.var_dir, from_env.outbox, from_env.landing, from_env.parts) == (
        "sqlite:////env/risk.db", tmp_path / "env-var", tmp_path / "env-box", Path("/env/landing"), 3)
    assert Settings.load(db="", var_dir="", env=env).database_url == "sqlite:////env/risk.db"  # empty: not given
    default = Settings.load(env={}, var_dir=tmp_path)
    assert (default.database_url, default.outbox, default.landing, default.parts) == (
        f"sqlite:///{tmp_path / 'risk.db'}", None, None, 2)
    assert Settings.load(env={}).var_dir == Path.cwd() / "var"
    relative = Settings.load(var_dir="rel", outbox="box", env={})  # the folders are made absolute
    assert (relative.var_dir, relative.outbox) == (Path.cwd() / "rel", Path.cwd() / "box")


def test_settings_made_in_code_take_no_environment_and_stay_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, (raw, _) in FROM_ENVIRONMENT.items():
        monkeypatch.setenv("RISK_" + name.upper(), raw)
    made = Settings("sqlite://", Path("v"))
    assert made.window_days == 90 and made.sla_days == DEFAULT_SLA_DAYS and made.https_only is False
    assert made.secret_key is None and made.var_dir == Path("v") and made.reports_dir == Path("v/reports")
    with pytest.raises(ValidationError):
        made.parts = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="RISK_PARTS"):
        Settings("sqlite://", Path("v"), parts=0)


def test_secrets_never_show(tmp_path: Path) -> None:
    loaded = Settings.load(env={"RISK_DATABASE_URL": "postgresql+psycopg://risk:pw-in-url@db:5432/risk",
                                "RISK_SECRET_KEY": "key-123", "RISK_SMTP_URL": "mailtos://u:smtp-pw@x",
                                "RISK_OPERATOR_NOTIFY": "dingtalk://token-456/"}, var_dir=tmp_path)
    for shown in (repr(loaded), str(loaded)):
        assert not {"pw-in-url", "key-123", "smtp-pw", "token-456"} & set(re.split(r"[^\w-]+", shown)), shown
        assert "risk:***@db:5432" in shown
    assert loaded.database_url == "postgresql+psycopg://risk:pw-in-url@db:5432/risk"  # the code still has it
    with pytest.raises(ConfigError) as error:
        Settings.check("smtp_url", 42)
    assert "RISK_SMTP_URL=***" in str(error.value) and "42" not in str(error.value)


def test_one_variable_is_read_alone_when_another_is_wrong() -> None:
    """The operators still hear of a failed task when the failure is a wrong setting."""
    from risk.orchestration.ops_notify import apprise_urls

    env = {"RISK_PARTS": "0", "RISK_OPERATOR_NOTIFY": "json://ops:8080/, mailto://a@b"}
    assert apprise_urls(env) == ["json://ops:8080/", "mailto://a@b"]
    assert Settings.read("parts", {}) == 2


def test_the_three_dags_resolve_their_settings_in_one_function(tmp_path: Path) -> None:
    from risk.errors import RunConfigError
    from risk.orchestration.runs import resolve_run, run_settings

    env = {"RISK_DATABASE_URL": "sqlite:////env/risk.db", "RISK_LANDING": str(tmp_path), "RISK_SLA_DAYS": "low=20"}
    conf = {"db": "sqlite:////conf/risk.db", "var_dir": str(tmp_path / "var"), "parts": 4}
    settings = run_settings(conf, env)
    assert (settings.database_url, settings.var_dir, settings.parts, settings.sla_days["low"]) == (
        "sqlite:////conf/risk.db", tmp_path / "var", 4, 20)
    assert resolve_run(conf, None, env).settings == settings
    assert run_settings({"db": None, "outbox": None}, env).database_url == "sqlite:////env/risk.db"
    with pytest.raises(RunConfigError, match="RISK_PARTS"):
        run_settings({"parts": 0}, env)
    for dag in ("fund_risk_nightly", "fund_risk_model", "fund_risk_escalation"):
        source = (ROOT_DIR / "dags" / f"{dag}.py").read_text(encoding="utf-8")
        assert "Settings" not in source and re.search(r"\b(run_settings|resolve_run)\(", source), dag


# -- no module but risk/settings.py reads a RISK_* variable -------------------------------------------------

# (file, variable) read outside risk.settings, and why
READ_ELSEWHERE: set[tuple[str, str]] = set()  # none (testbed/ picks the test suite's Redis: not the product)


def _risk_reads(path: Path) -> set[str]:
    """RISK_* names a module looks up: `x.get("RISK_…")`, `getenv("RISK_…")`, `x["RISK_…"]`, also through a
    module constant that holds the name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}

    def name(node: ast.AST) -> str | None:
        value = node.value if isinstance(node, ast.Constant) else constants.get(getattr(node, "id", ""))
        return value if isinstance(value, str) and value.startswith("RISK_") else None

    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and (
                isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "getenv", "pop", "setdefault")
                or isinstance(node.func, ast.Name) and node.func.id == "getenv"):
            found.add(name(node.args[0]))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            found.add(name(node.slice))
    return found - {None}  # type: ignore[arg-type]


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('import os\nNAME = "RISK_B"\nos.environ.get("RISK_A")\nos.environ.get(NAME, "")\n'
                      'os.getenv("RISK_C")\nos.environ["RISK_D"]\nenv = {"RISK_E": "1"}\n')
    assert _risk_reads(module) == {"RISK_A", "RISK_B", "RISK_C", "RISK_D"}


def test_no_module_but_settings_reads_a_risk_variable() -> None:
    reads = {(str(path.relative_to(ROOT_DIR)), variable)
             for folder in ("risk", "dags") for path in sorted((ROOT_DIR / folder).rglob("*.py"))
             if path != ROOT_DIR / "risk" / "settings.py" for variable in _risk_reads(path)}
    assert reads == READ_ELSEWHERE, "read it through risk.settings.Settings (load, or read for one variable)"


# -- the operations guide's table of variables is the fields' ---------------------------------------------


def settings_table() -> str:
    rows = [f"| `{name}` | {f'`{default}`' if default else '空 / empty'} | {meaning} |"
            for name, default, meaning in variables()]
    return "\n".join(["| 变量 / variable | 默认 / default | 含义 / meaning |", "|---|---|---|", *rows])


def test_the_operations_guide_lists_every_setting_as_the_code_has_it() -> None:
    guide = (ROOT_DIR / "docs" / "operations.md").read_text(encoding="utf-8")
    assert settings_table() in guide, "docs/operations.md §9 should have this table:\n" + settings_table()
    assert len(set(re.findall(r"`(RISK_[A-Z_]+)`", settings_table()))) == len(Settings.model_fields)
