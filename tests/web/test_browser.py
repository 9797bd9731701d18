"""A real browser (Debian's Chromium, headless, driven by Playwright) against a real `risk serve`: a village
supervisor logs in, opens an alert and confirms it with a comment; an auditor finds that decision in the
audit log. Every page is photographed on a desktop and a phone screen into var/screenshots/."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSWORD, running_server
from sqlalchemy import select

from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.db.tables import alert, alert_event

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(city, tmp_path_factory) -> Iterator[str]:
    with running_server(city, tmp_path_factory.mktemp("browser") / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, base: str, user_id: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("登录名").fill(user_id)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}/alerts")


def test_a_supervisor_confirms_an_alert_and_an_auditor_finds_the_decision(city, server, browser):
    with gateway.transaction(city.url) as conn:
        village = workflow.user(conn, city.users["village"]).region_code
        target = conn.execute(select(alert.c.alert_id).where(alert.c.village_code == village,
                                                             alert.c.status == "new")
                              .order_by(alert.c.alert_id.desc())).scalar()
    comment = "已上门核实：本人已于去年去世，家属代领"

    desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = desk.new_page()
    page.goto(f"{server}/alerts")
    shoot(page, "01-login")
    log_in(page, server, city.users["village"])
    assert page.get_by_role("heading", name="我的预警").is_visible()
    shoot(page, "02-queue")

    page.locator(f'a[href="/alerts/{target}"]').first.click()
    page.wait_for_url(f"{server}/alerts/{target}")
    assert (page.get_by_role("heading", name="请核实").is_visible()
            or page.get_by_role("heading", name="为什么异常").is_visible())
    shoot(page, "03-case-new")
    page.get_by_role("button", name="接收").click()
    page.get_by_text("已更新为「已接收」").wait_for()
    page.get_by_role("button", name="开始核查").click()
    page.get_by_text("已更新为「核查中」").wait_for()
    page.locator("form.action-confirm textarea[name=comment]").fill(comment)
    shoot(page, "04-case-investigating")
    page.locator("form.action-confirm button").click()
    page.get_by_text("已更新为「已确认」").wait_for()
    assert page.locator("form.action-recover").is_visible()  # next: record what is recovered
    shoot(page, "05-case-confirmed")

    for path, name in (("/dashboard", "06-dashboard"), ("/quality", "07-quality"), ("/audit", "08-audit-village")):
        page.goto(f"{server}{path}")
        shoot(page, name)

    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                locale="zh-CN").new_page()
    log_in(phone, server, city.users["village"])
    shoot(phone, "09-phone-queue")
    phone.goto(f"{server}/alerts/{target}")
    shoot(phone, "10-phone-case")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the case page scrolls sideways on a phone ({width}px)"

    auditor = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    log_in(auditor, server, city.users["auditor"])
    auditor.goto(f"{server}/audit")
    auditor.get_by_label("操作").select_option("confirm")
    auditor.get_by_role("button", name="筛选").click()
    row = auditor.locator("table.audit tbody tr", has_text=comment)
    row.wait_for()
    assert city.users["village"] in row.inner_text() and target in row.inner_text()
    shoot(auditor, "11-audit-auditor")
    auditor.goto(f"{server}/search?rule=deceased_payment")
    shoot(auditor, "12-search")
    auditor.goto(f"{server}/alerts?lang=en")
    shoot(auditor, "13-queue-english")
    auditor.goto(f"{server}/alerts?lang=zh")  # the choice is remembered: leave the auditor in Chinese

    with gateway.transaction(city.url) as conn:
        decided = conn.execute(select(alert_event).where(alert_event.c.alert_id == target,
                                                         alert_event.c.action == "confirm")).first()
    assert decided.user_id == city.users["village"] and decided.comment == comment
