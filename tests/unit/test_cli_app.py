"""The `risk` command on Typer, as a person meets it: what it exits with and says when something goes wrong
(one plain line, never a traceback)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from risk.cli import main
from risk.db import sql_access
from risk.errors import InputError


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
