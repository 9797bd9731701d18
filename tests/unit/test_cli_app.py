"""The `risk` command on Typer, as a person meets it: what it exits with and says when something goes wrong
(one plain line, never a traceback); at a terminal, Rich tables and a progress bar, and everywhere else
(a pipe, a file, the nightly log, a test) the CSV and the plain progress lines, unchanged; Python's
warnings in the log file; one case, the same data for the command line and the web."""
from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from pathlib import Path

import pytest
import tinycity
from rich.console import Console
from sqlalchemy import update

from risk.alerts import case as alert_case
from risk.alerts import lifecycle as workflow
from risk.cli import display, main
from risk.db import gateway, sql_access
from risk.db.tables import alert
from risk.errors import InputError
from risk.progress import Step
from risk.web.queries import case as queries


@pytest.fixture
def var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """var/ in tmp_path; the root logger as it was afterwards (main() adds its handlers to it)."""
    monkeypatch.setenv("RISK_VAR_DIR", str(tmp_path / "var"))
    root = logging.getLogger()
    before = list(root.handlers)
    yield tmp_path / "var"
    for h in [h for h in root.handlers if h not in before]:
        root.removeHandler(h)
        h.close()


@pytest.fixture
def city(var: Path, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    tinycity.build(url)
    return url


def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """From now on, an interactive terminal 160 columns wide, whose output is kept in what is returned."""
    shown = io.StringIO()
    console = Console(file=shown, force_terminal=True, color_system=None, width=160)
    monkeypatch.setattr(display, "terminal", lambda stderr=False: console)
    return shown


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    return terminal(monkeypatch)


# ---------------------------------------------------------------- exits


@pytest.mark.parametrize("raised, code, says, logged", [
    (InputError("参数不对 / a bad parameter"), 2, "错误 / error: 参数不对 / a bad parameter", False),
    (KeyboardInterrupt(), 130, "已中断 / interrupted", False),
    (PermissionError(13, "Permission denied", "/x/y"), 2, "无法读写文件 / cannot read or write /x/y: Permission denied",
     True),
    (RuntimeError("431102193209013359 went wrong"), 1, "内部错误 / internal error: RuntimeError: 431102********3359",
     True),
])
def test_what_a_command_raises_is_an_exit_code_and_one_plain_line(var, capsys, monkeypatch, raised, code, says,
                                                                   logged):
    def saved_queries():
        raise raised

    monkeypatch.setattr(sql_access, "saved_queries", saved_queries)
    assert main(["sql", "queries"]) == code
    out, err = capsys.readouterr()
    assert says in err and "Traceback" not in out + err
    log = (var / "logs" / "risk.log").read_text(encoding="utf-8")
    assert ("Traceback" in log) == logged and (f"details in {var / 'logs' / 'risk.log'}" in err) == logged
    assert "431102193209013359" not in log + err


def test_the_command_line_itself_wrong_is_exit_2_and_help_is_0(var, capsys):
    assert main(["alerts", "list"]) == 2
    assert "--user" in capsys.readouterr().err
    assert main(["alerts", "export", "--format", "xml"]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["alerts", "export", "-h"]) == 0
    assert "--format" in capsys.readouterr().out


# ---------------------------------------------------------------- tables at a terminal, CSV elsewhere


def test_users_at_a_terminal_are_a_table_and_piped_the_same_csv_as_before(city, var, capsys, monkeypatch):
    assert main(["users", "list", "--db", city]) == 0
    piped = capsys.readouterr().out
    rows = list(csv.reader(io.StringIO(piped)))
    assert rows[0] == ["user_id", "role", "region_code", "language", "email", "notify_url"]
    assert [r[0] for r in rows[1:]] == sorted(tinycity.USERS)

    shown = terminal(monkeypatch)
    assert main(["users", "list", "--db", city]) == 0
    assert capsys.readouterr().out == ""  # the table went to the terminal, nothing else to standard output
    table = shown.getvalue()
    assert "监督人员 / supervisors: 11" in table
    for heading in ("用户", "user", "角色", "role", "区域", "area", "语言", "language"):
        assert heading in table
    lines = {line.split("│")[1].strip(): line for line in table.splitlines() if line.startswith("│")}
    assert set(lines) == set(tinycity.USERS)
    assert "431102001000" in lines["t1"] and "township" in lines["t1"] and "zh" in lines["t1"]

    file = var / "users.csv"
    assert main(["users", "list", "--out", str(file), "--db", city]) == 0  # a file is CSV, terminal or not
    assert file.read_text(encoding="utf-8") == piped


def test_alerts_list_is_a_table_unless_a_format_is_asked_for(city, capsys, screen):
    assert main(["alerts", "list", "--user", "t1", "--db", city]) == 0
    assert capsys.readouterr().out == ""
    table = screen.getvalue()
    assert "t1 范围内的预警 / the alerts in t1's area: 4" in table
    assert {"a-v1-0", "a-v1-1", "a-v2-0", "a-v2-1"} <= set(table.split())
    assert "a-v3-0" not in table  # another township's
    assert "749.40" in table and "deceased_payment" in table

    assert main(["alerts", "list", "--user", "t1", "--format", "csv", "--db", city]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["alert_id"] for r in rows) == ["a-v1-0", "a-v1-1", "a-v2-0", "a-v2-1"]


def test_saved_queries_at_a_terminal_are_a_table(var, capsys, screen):
    assert main(["sql", "queries"]) == 0
    assert capsys.readouterr().out == ""
    table = screen.getvalue()
    for name, (description, _) in sql_access.saved_queries().items():
        assert name in table and description.splitlines()[0].split(" / ")[0] in table


def test_saved_queries_piped_are_the_plain_list(var, capsys):
    assert main(["sql", "queries"]) == 0
    expected = "".join(f"{name}\n    " + "\n    ".join(description.splitlines()) + "\n"
                       for name, (description, _) in sql_access.saved_queries().items())
    assert capsys.readouterr().out == expected


# ---------------------------------------------------------------- progress


def test_progress_without_a_terminal_is_the_plain_lines(capsys):
    with display.progress("加载交付日 / delivery days") as progress:
        progress(Step("待加载交付日 2 个 / 2 delivery days to load", 0, 2))
        progress(Step("[1/2] 2025-03-01: 1 个文件 files", 1, 2, rows=1000))
        progress("检测中 / running the rules …")
        progress(Step("[2/2] 2025-03-10: 1 个文件 files", 2, 2, rows=500))
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("待加载交付日 2 个 / 2 delivery days to load\n[1/2] 2025-03-01: 1 个文件 files\n"
                   "检测中 / running the rules …\n[2/2] 2025-03-10: 1 个文件 files\n")


def test_progress_at_a_terminal_is_a_bar_of_days_and_rows_with_the_lines_above_it(screen):
    with display.progress("加载交付日 / delivery days") as progress:
        progress(Step("待加载交付日 2 个 / 2 delivery days to load", 0, 2))
        progress(Step("[1/2] 2025-03-01", 1, 2, rows=1000))
        progress(Step("[2/2] 2025-03-10", 2, 2, rows=500))
        progress("检测中 / running the rules …")
    text = screen.getvalue()
    assert "加载交付日 / delivery days" in text and "2/2" in text and "1,500 行 rows" in text and "行/秒 rows/s" in text
    for line in ("[1/2] 2025-03-01", "[2/2] 2025-03-10", "检测中 / running the rules …"):
        assert line in text
    assert text.rindex("2/2 ") < text.index("检测中")  # the bar stopped when the days were done


def test_a_run_without_a_terminal_prints_one_plain_line_a_day(var, tmp_path, capsys):
    from helpers import base_day, make_id, payment, recipient, write

    landing = tmp_path / "landing"
    base_day(landing, "2025-03-01", people=[recipient(make_id(seq=1))])
    write(landing, "2025-03-10", "payments", [payment("P1", make_id(seq=1))])
    assert main(["run", "--landing", str(landing), "--no-digests", "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 0
    err = capsys.readouterr().err
    assert "━" not in err  # no bar
    assert "待加载交付日 2 个 / 2 delivery days to load: 2025-03-01 … 2025-03-10\n" in err
    assert "\n[1/2] 2025-03-01: " in err and "\n[2/2] 2025-03-10: 1 个文件 files, 读入 read 1, 拒收 rejected 0 (" in err


# ---------------------------------------------------------------- warnings


def test_warnings_go_to_the_log_file_and_known_noise_nowhere(var, capsys, monkeypatch):
    def saved_queries():
        warnings.warn("a library's warning nobody silenced", UserWarning, stacklevel=1)
        warnings.warn("module 'sre_constants' is deprecated", DeprecationWarning, stacklevel=1)
        return {}

    monkeypatch.setattr(sql_access, "saved_queries", saved_queries)
    assert main(["sql", "queries"]) == 0
    log = (var / "logs" / "risk.log").read_text(encoding="utf-8")
    assert "UserWarning: a library's warning nobody silenced" in log
    assert "sre_constants" not in log
    assert "nobody silenced" not in capsys.readouterr().err  # the log file's, not the terminal's

    assert main(["-v", "sql", "queries"]) == 0
    assert "UserWarning: a library's warning nobody silenced" in capsys.readouterr().err  # with -v, both


# ---------------------------------------------------------------- one case


def test_a_case_is_the_same_data_for_the_command_line_and_the_web(city, capsys):
    with gateway.transaction(city) as conn:
        a = conn.execute(alert.select().where(alert.c.alert_id == "a-v1-0")).one()
        person = a.person_id
        evidence = [{"fact": "death", "id": person, "flagged": False, "detail": f"同户 {person}"},
                    {"fact": "feature", "id": "age", "flagged": False, "detail": "window"}]
        conn.execute(update(alert).where(alert.c.alert_id == "a-v1-0").values(evidence=json.dumps(evidence)))
        u = workflow.user(conn, "t1")
        data = alert_case.case(conn, u, "a-v1-0")
        page = queries.case(conn, u, "a-v1-0")
    masked = person[:6] + "********" + person[-4:]
    assert data["person"] == masked and data["name"] == "张*"
    assert [e["id"] for e in data["evidence"]] == [masked, "age"] and data["evidence"][0]["detail"] == f"同户 {masked}"
    assert page == {**data, "evidence": data["evidence"][:1], "actions": page["actions"]}  # the web's view of it

    assert main(["alerts", "show", "a-v1-0", "--user", "t1", "--db", city]) == 0
    shown = capsys.readouterr().out
    assert person not in shown and f"○ death {masked} 同户 {masked}" in shown and "○ feature age window" in shown
    assert main(["alerts", "show", "a-v1-0", "--user", "t1", "--unmask", "--db", city]) == 0
    assert f"○ death {person} 同户 {person}" in capsys.readouterr().out
    with gateway.transaction(city) as conn:
        assert [e["action"] for e in workflow.history(conn, "a-v1-0")] == ["view_unmasked"]
