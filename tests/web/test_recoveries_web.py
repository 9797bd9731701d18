"""Money entries on the case page: what remains is shown, a recovery past the amount at risk needs a reason,
a future date is refused, a wrong entry is reversed from the ledger, and closing with money left needs the
user's confirmation. On SQLite and PostgreSQL."""
from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
import tinycity
from sqlalchemy import select

from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.db.tables import alert, recovery


@pytest.fixture
def case(db_url, tmp_path):
    """A confirmed alert of ¥749.40 in village v1, and a client logged in as v1's supervisor."""
    alerts = tinycity.build(db_url)
    a = alerts["v1"][0]
    with gateway.transaction(db_url) as conn:
        for action in ("acknowledge", "investigate"):
            workflow.act(conn, "v1", a, action)
        workflow.act(conn, "v1", a, "confirm", comment="上门核实属实")
    client = tinycity.web_client(db_url, tmp_path / "var", "v1")
    yield db_url, a, client
    client.close()


def act(client, alert_id: str, **data: str) -> str:
    token = tinycity.csrf(client.get(f"/alerts/{alert_id}").text)
    return client.post(f"/alerts/{alert_id}/act", data={"csrf_token": token, **data}).text


def flash(page: str) -> str:
    """The messages at the top of the page (what the last action said)."""
    return " ".join(re.findall(r'<p class="flash [^"]*" role="status">(.*?)</p>', page, re.S))


def amounts(url: str, alert_id: str) -> list[int]:
    with gateway.transaction(url) as conn:
        return list(conn.execute(select(recovery.c.amount_cents).where(recovery.c.alert_id == alert_id)
                                 .order_by(recovery.c.id)).scalars())


def test_the_case_page_shows_what_remains_and_refuses_what_is_not_right(case):
    url, a, c = case
    page = c.get(f"/alerts/{a}").text
    assert "涉及金额 ¥749.40 · 已追回 ¥0.00 · 尚余 ¥749.40" in page and 'name="over_reason"' in page
    page = act(c, a, action="recover", amount="874.70", date="2026-11-20", method="bank_return")
    assert "超出涉及金额 ¥749.40 共 ¥125.30：如确需登记，须写明原因" in flash(page) and amounts(url, a) == []
    tomorrow = (workflow.business_today() + timedelta(days=1)).isoformat()
    page = act(c, a, action="recover", amount="10", date=tomorrow, method="bank_return")
    assert "晚于今天" in flash(page) and amounts(url, a) == []
    page = act(c, a, action="recover", amount="700", date="2026-11-20", method="bank_return")
    assert "已登记追回，合计 ¥700.00，尚余 ¥49.40" in flash(page)
    assert re.search(r"尚余</dt><dd class=\"money remaining\">¥49.40", page)
    page = act(c, a, action="recover", amount="174.70", date="2026-11-21", method="repayment",
               over_reason="家属多退，待退还差额")
    assert "合计 ¥874.70，超出涉及金额 ¥125.30" in flash(page) and amounts(url, a) == [70000, 17470]
    assert "家属多退，待退还差额" in page  # the reason, on the ledger and in the timeline
    with gateway.transaction(url) as conn:
        logged = workflow.history(conn, a)[-1]
    assert json.loads(logged["details"])["reason"] == "家属多退，待退还差额"


def test_a_wrong_entry_is_reversed_from_the_ledger(case):
    url, a, c = case
    act(c, a, action="recover", amount="500", date="2026-11-20", method="deduction")
    entry = str(max(_ids(url, a)))
    page = c.get(f"/alerts/{a}").text
    assert f'name="entry" value="{entry}"' in page  # a reverse form on the entry
    page = act(c, a, action="reverse_recovery", entry=entry, reason="")
    assert "冲正须填写原因" in flash(page) and amounts(url, a) == [50000]
    page = act(c, a, action="reverse_recovery", entry=entry, reason="录入错误，应为50元")
    assert f"已冲正第 {entry} 笔，合计 ¥0.00，尚余 ¥749.40" in flash(page)
    assert amounts(url, a) == [50000, -50000]
    assert f"冲正第 {entry} 笔" in page and "已冲正" in page and f'name="entry" value="{entry}"' not in page
    page = act(c, a, action="reverse_recovery", entry=entry, reason="again")
    assert "already reversed" in flash(page) or "已冲正过" in flash(page)
    assert amounts(url, a) == [50000, -50000]


def _ids(url: str, alert_id: str) -> list[int]:
    with gateway.transaction(url) as conn:
        return list(conn.execute(select(recovery.c.id).where(recovery.c.alert_id == alert_id)).scalars())


def test_closing_with_money_left_needs_the_users_confirmation(case):
    url, a, c = case
    act(c, a, action="recover", amount="100", date="2026-11-20", method="bank_return")
    page = c.get(f"/alerts/{a}").text
    assert "尚有 ¥649.40 未追回（涉及 ¥749.40）" in page and 'name="confirm_unrecovered"' in page
    page = act(c, a, action="close")
    assert "尚有 ¥649.40 未追回" in flash(page) and "请勾选确认" in flash(page)
    with gateway.transaction(url) as conn:
        assert conn.execute(select(alert.c.status).where(alert.c.alert_id == a)).scalar() == "confirmed"
    page = act(c, a, action="close", confirm_unrecovered="yes")
    assert "已更新为「已结案」" in flash(page)
    with gateway.transaction(url) as conn:
        close = workflow.history(conn, a)[-1]
    assert close["action"] == "close" and json.loads(close["details"]) == {"unrecovered": "649.40"}


def test_an_auditor_sees_the_ledger_but_reverses_nothing(case, tmp_path):
    url, a, c = case
    act(c, a, action="recover", amount="100", date=date(2026, 11, 20).isoformat(), method="bank_return")
    entry = str(max(_ids(url, a)))
    auditor = tinycity.web_client(url, tmp_path / "var", "aud")
    page = auditor.get(f"/alerts/{a}").text
    assert "¥100.00" in page and "尚余" in page and 'value="reverse_recovery"' not in page
    token = tinycity.csrf(page)
    page = auditor.post(f"/alerts/{a}/act", data={"csrf_token": token, "action": "reverse_recovery",
                                                  "entry": entry, "reason": "x"}).text
    assert "审计人员只能查看" in flash(page) and amounts(url, a) == [10000]
    auditor.close()
