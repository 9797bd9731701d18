"""The pages do what a supervisor and an auditor expect: the queue's filters, sorting and pages, working a
case from new to a recorded recovery through the forms, the language, data quality, search and exports."""
from __future__ import annotations

import csv
import io
import re

from conftest import csrf_of, log_in
from sqlalchemy import func, select

from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.db.tables import account, alert, quality_issue, recovery
from risk.web.queries.listing import PAGE_SIZE


def amounts(html: str) -> list[float]:
    return [float(a) for a in re.findall(r'class="money"><a href="/alerts/[0-9A-F]+">¥([\d.]+)</a>', html)]


def act(c, alert_id: str, **data: str):
    token = csrf_of(c.get(f"/alerts/{alert_id}").text)
    return c.post(f"/alerts/{alert_id}/act", data={"csrf_token": token, **data})


def test_a_supervisor_works_an_alert_from_new_to_a_closed_recovery(city, client_for):
    c = client_for("village")
    with gateway.transaction(city.url) as conn:  # a rule's alert: an anomaly has no "what to check"
        a = conn.execute(select(alert.c.alert_id).where(
            alert.c.village_code == workflow.user(conn, city.users["village"]).region_code, alert.c.rule != "anomaly",
            alert.c.status == "new", alert.c.alert_id != city.alert_id).order_by(alert.c.alert_id)).scalar()
    page = c.get(f"/alerts/{a}").text
    assert "请核实" in page and "证据" in page and ".csv" in page  # what to check, evidence with its file
    r = act(c, a, action="acknowledge")
    assert "已更新为「已接收」" in r.text
    assert "已更新为「核查中」" in act(c, a, action="investigate").text
    r = act(c, a, action="confirm", comment="")  # a decision needs a comment: refused, nothing changes
    assert "须填写说明" in r.text and "核查中" in r.text
    assert "已更新为「已确认」" in act(c, a, action="confirm", comment="上门核实，确属冒领").text
    assert "合计 ¥100.00" in act(c, a, action="recover", amount="100", date="2026-11-20", method="bank_return").text
    assert "合计 ¥150.50" in act(c, a, action="recover", amount="50.50", date="2026-11-21", method="repayment").text
    r = act(c, a, action="recover", amount="1.234", date="2026-11-21", method="repayment")
    assert "最多两位小数" in r.text
    unconfirmed = act(c, a, action="close").text  # money not yet recovered: closing asks to confirm it
    assert "已更新为「已结案」" not in unconfirmed and "未追回" in unconfirmed
    final = act(c, a, action="close", confirm_unrecovered="yes").text
    assert "已更新为「已结案」" in final and "/act" not in final.split("处理记录")[0].split("处理</h2>")[-1]
    for step in ("接收", "开始核查", "确认属实", "登记追回", "结案", "上门核实，确属冒领"):
        assert step in final.split("处理记录")[1]
    with gateway.transaction(city.url) as conn:
        assert sorted(conn.execute(select(recovery.c.amount_cents).where(recovery.c.alert_id == a)).scalars()) \
            == [5050, 10000]
    audit = client_for("auditor").get(f"/audit?alert={a}").text
    assert "上门核实，确属冒领" in audit and "¥50.50" in audit


def test_the_queue_filters_sorts_and_pages(city, client_for):
    c = client_for("county")
    by_amount = amounts(c.get("/alerts").text)
    assert by_amount == sorted(by_amount, reverse=True) and len(by_amount) <= PAGE_SIZE
    with gateway.transaction(city.url) as conn:
        me = workflow.user(conn, city.users["county"])
        mine = workflow.queue(conn, me.user_id)
    high = [a for a in mine if a.severity == "high"]
    page = c.get("/alerts?severity=high").text
    assert f"共 {len(high)} 条" in page
    if len(mine) > PAGE_SIZE:
        second = c.get("/alerts?page=2").text
        assert "第 2 /" in second and set(amounts(second)).isdisjoint(set()) and "上一页" in second
    assert "共 0 条" in c.get("/alerts?from=2099-01").text
    assert c.get("/alerts?sort=age").status_code == 200


def test_chinese_first_english_by_choice_and_remembered(city, client_for):
    c = client_for("township")  # logged in, in Chinese
    assert "我的预警" in c.get("/alerts").text
    english = c.get("/alerts?lang=en").text
    assert "My alerts" in english and "我的预警" not in english
    assert "Log out" in c.get("/dashboard").text
    with gateway.transaction(city.url) as conn:
        assert conn.execute(select(account.c.language).where(account.c.user_id == city.users["township"])
                            ).scalar() == "en"
    fresh = client_for()  # a new login comes back in English
    log_in(fresh, city.users["township"])
    assert "My alerts" in fresh.get("/alerts").text
    fresh.get("/alerts?lang=zh")


def test_data_quality_lists_rejected_rows_with_reasons_and_masked_keys(city, client_for):
    with gateway.transaction(city.url) as conn:
        total = conn.execute(select(func.count()).select_from(quality_issue)).scalar()
        keys = conn.execute(select(quality_issue.c.record_key).where(quality_issue.c.source == "recipients"
                                                                      ).limit(20)).scalars().all()
    page = client_for("city").get("/quality").text  # city staff see every rejected row (a village its own)
    assert f"共 {total} 条" in page and "身份证号" in page
    for key in keys:
        if key and re.fullmatch(r"\d{17}[\dX]", key):
            assert key not in page


def test_search_exports_csv_and_excel_with_identity_masked(city, client_for):
    from openpyxl import load_workbook

    c = client_for("auditor")
    with gateway.transaction(city.url) as conn:
        expected = conn.execute(select(func.count()).select_from(alert).where(
            alert.c.rule == "deceased_payment", alert.c.status != "withdrawn")).scalar()
        person = conn.execute(select(alert.c.person_id).where(alert.c.alert_id == city.alert_id)).scalar()
    token = csrf_of(c.get("/search").text)
    r = c.post("/search.csv", data={"rule": "deceased_payment", "csrf_token": token})
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert r.headers["content-type"].startswith("text/csv") and len(rows) == expected > 0
    assert all("*" in row["身份证号（脱敏）person (masked)"] for row in rows)
    wb = load_workbook(io.BytesIO(c.post("/search.xlsx", data={"rule": "deceased_payment", "csrf_token": token}
                                         ).content))
    sheet = list(wb.active.values)
    assert len(sheet) == expected + 1 and sheet[0][0] == "预警编号 alert_id"
    found = c.get("/search", params={"person_id": person}).text
    results = found[found.index('<table class="alerts">'):]
    assert city.alert_id in results and person not in results  # shown masked; the export form keeps it
    by_person = c.post("/search.csv", data={"person_id": person, "csrf_token": token}).content.decode("utf-8-sig")
    assert city.alert_id in by_person and person not in by_person
    assert c.get("/search.csv").status_code == 405  # exports are POSTed with the CSRF token


def test_the_search_export_has_the_rows_the_search_finds(city):
    """The export reads its columns straight from the driver: cell for cell what the search's rows say,
    in the same order, for the whole city and for a filter, identity masked."""
    from risk.web.queries.listing import AlertFilter
    from risk.web.queries.search import EXPORT_FIELDS, search_columns, search_rows

    with gateway.transaction(city.url) as conn:
        auditor = workflow.user(conn, city.users["auditor"])
        for form in ({}, {"rule": "deceased_payment"}, {"min_amount": "100"}):
            f = AlertFilter.from_query(form)
            rows = search_rows(conn, auditor, f)
            columns = search_columns(conn, auditor, f)
            assert len(rows) > 0 and set(columns) == {k for k, _ in EXPORT_FIELDS}
            assert {k: [r[k] for r in rows] for k in columns} == columns, form
    assert all("*" in p for p in columns["person"])
