"""Nobody sees or changes what is not theirs, by URL or by a tampered form; forms need their CSRF token;
filters are values, not SQL; logins are rate-limited; the server's log holds no ID number or name."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import DATABASES, PASSWORD, both_databases, csrf_of, log_in, running_server
from sqlalchemy import func, select

from risk import privacy
from risk.alerts import lifecycle as workflow
from risk.db import gateway
from risk.db.tables import alert, alert_event, login_attempt, recipient
from risk.identity.numbers import mask_id

city = pytest.fixture(params=DATABASES, scope="module")(both_databases)  # every test here on both databases


def events(city) -> int:
    with gateway.transaction(city.url) as conn:
        return conn.execute(select(func.count()).select_from(alert_event)).scalar()


def status_of(city, alert_id: str) -> str:
    with gateway.transaction(city.url) as conn:
        return conn.execute(select(alert.c.status).where(alert.c.alert_id == alert_id)).scalar()


def ids_in(html: str) -> set[str]:
    return set(re.findall(r'href="/alerts/([0-9A-F]{16})"', html))


def test_every_page_needs_a_login(client_for):
    c = client_for()
    for path in ("/alerts", "/alerts/X", "/dashboard", "/quality", "/search", "/audit"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path


PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/")}  # "/" redirects to /alerts


def test_every_route_of_every_router_needs_a_login(client_for):
    """Read from the app's routes, so that a new router cannot forget it: every route but logging in and out
    and the home page (a redirect to the queue) sends an anonymous request to the login page and back, a
    form with its CSRF token included. The static files (a mount, not a route) need no login."""
    from fastapi.routing import APIRoute

    c = client_for()
    token = csrf_of(c.get("/login").text)
    routes = {(method, route.path) for route in c.app.routes if isinstance(route, APIRoute) for method in route.methods}
    assert PUBLIC < routes and len(routes - PUBLIC) >= 10
    for method, template in sorted(routes - PUBLIC):
        path = re.sub(r"\{[^}]*\}", "X", template)
        r = c.request(method, path, data={"csrf_token": token} if method == "POST" else None, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={quote(path)}", (method, path)
    assert c.get("/", follow_redirects=False).headers["location"] == "/alerts"
    assert c.get("/static/app.css").status_code == 200


def test_a_village_user_sees_exactly_their_village(city, client_for):
    c = client_for("village")
    with gateway.transaction(city.url) as conn:
        me = workflow.user(conn, city.users["village"])
        expected = {r.alert_id for r in workflow.queue(conn, me.user_id)}
    assert ids_in(c.get("/alerts").text) == expected and city.alert_id in expected


def test_another_village_s_alert_cannot_be_read_by_url(city, client_for):
    c = client_for("village")
    r = c.get(f"/alerts/{city.other_alert_id}")
    assert r.status_code == 404 and city.other_alert_id not in r.text
    # the same answer as for an alert that does not exist
    assert c.get("/alerts/0000000000000000").text == r.text.replace(city.other_alert_id, "0000000000000000")
    assert c.post(f"/alerts/{city.other_alert_id}/unmask", data={"csrf_token": csrf_of(c.get("/alerts").text)}
                  ).status_code == 404


def test_a_tampered_form_cannot_act_on_another_village_s_alert(city, client_for):
    c = client_for("village")
    token = csrf_of(c.get(f"/alerts/{city.alert_id}").text)
    before, status = events(city), status_of(city, city.other_alert_id)
    for action in ("acknowledge", "dismiss", "snooze"):
        r = c.post(f"/alerts/{city.other_alert_id}/act", follow_redirects=False,
                   data={"csrf_token": token, "action": action, "reason": "lawful", "comment": "x", "days": "30"})
        assert r.status_code == 404
    assert events(city) == before and status_of(city, city.other_alert_id) == status


def test_an_auditor_sees_everything_and_changes_nothing(city, client_for):
    c = client_for("auditor")
    page = c.get(f"/alerts/{city.alert_id}").text
    assert "/act" not in page and ("审计人员只能查看" in page)
    token = csrf_of(page)
    before, status = events(city), status_of(city, city.alert_id)
    r = c.post(f"/alerts/{city.alert_id}/act", data={"csrf_token": token, "action": "acknowledge"})
    assert r.status_code == 200 and "审计人员只能查看，不能修改" in r.text
    assert events(city) == before and status_of(city, city.alert_id) == status
    assert c.get("/search?rule=deceased_payment").status_code == 200


def test_only_auditors_and_city_staff_search_the_city(client_for):
    for role, code in (("village", 403), ("township", 403), ("county", 403), ("city", 200), ("auditor", 200)):
        c = client_for(role)
        assert c.get("/search").status_code == code, role
        assert c.post("/search.csv", data={"csrf_token": csrf_of(c.get("/alerts").text)}).status_code == code, role


def test_forms_without_their_csrf_token_are_refused(city, client_for):
    c = client_for("village")
    before = events(city)
    for data in ({}, {"csrf_token": "forged"}):
        r = c.post(f"/alerts/{city.alert_id}/act", data={"action": "acknowledge", **data})
        assert r.status_code == 403 and "表单已过期" in r.text
    assert events(city) == before
    # another session's token does not work either
    other = client_for("township")
    foreign = csrf_of(other.get("/alerts").text)
    assert c.post(f"/alerts/{city.alert_id}/act", data={"action": "acknowledge", "csrf_token": foreign}
                  ).status_code == 403
    assert client_for().post("/login", data={"user_id": city.users["village"], "password": PASSWORD}
                             ).status_code == 403
    assert c.post("/logout").status_code == 403


@pytest.mark.parametrize("query", [
    "village=' OR '1'='1", "rule=deceased_payment' OR 1=1 --", "status=new'; DROP TABLE alert; --",
    "from=2025-01' UNION SELECT * FROM recipient --", "sort=amount; DELETE FROM alert", "page=1 OR 1=1",
    "severity=high\") OR (\"1\"=\"1",
])
def test_sql_in_filters_does_nothing(city, client_for, query):
    c = client_for("village")
    everything = ids_in(c.get("/alerts").text)
    r = c.get(f"/alerts?{query}")
    assert r.status_code == 200 and "已忽略无效的筛选条件" in r.text
    assert ids_in(r.text) <= everything  # never more than the user's own alerts
    auditor = client_for("auditor")
    for path in ("/search", "/audit", "/quality"):
        assert auditor.get(f"{path}?{query}&person_id=1' OR '1'='1&user=' OR 1=1 --").status_code == 200
    with gateway.transaction(city.url) as conn:  # the tables are all still there
        assert conn.execute(select(func.count()).select_from(alert)).scalar() > 0
        assert conn.execute(select(func.count()).select_from(recipient)).scalar() > 0


def test_identity_is_masked_until_shown_and_every_showing_is_logged(city, client_for):
    with gateway.transaction(city.url) as conn:
        person = conn.execute(select(alert.c.person_id).where(alert.c.alert_id == city.alert_id)).scalar()
        name = conn.execute(select(recipient.c.name).where(recipient.c.person_id == person)).scalar()
    c = client_for("village")
    page = c.get(f"/alerts/{city.alert_id}").text
    assert person not in page and name not in page and person[:6] + "********" + person[-4:] in page
    shown = c.post(f"/alerts/{city.alert_id}/unmask", data={"csrf_token": csrf_of(page)}).text
    assert person in shown and name in shown
    with gateway.transaction(city.url) as conn:
        views = conn.execute(select(alert_event).where(alert_event.c.alert_id == city.alert_id,
                                                       alert_event.c.action == "view_unmasked")).all()
    assert views and views[-1].user_id == city.users["village"]
    assert person not in c.get(f"/alerts/{city.alert_id}").text  # a reload is masked again


def test_logins_are_rate_limited_and_recorded(city, client_for):
    from datetime import datetime

    user = city.users["other_village"]  # nobody else logs in as them: the lock hurts no other test
    started = datetime.now()
    c = client_for()
    for _ in range(5):
        r = log_in(c, user, "wrong password!")
        assert r.status_code == 401 and "登录名或密码不对" in r.text
    r = log_in(c, user)  # the right password, but locked now
    assert r.status_code == 429 and "15分钟" in r.text
    with gateway.transaction(city.url) as conn:
        rows = conn.execute(select(login_attempt.c.ok).where(login_attempt.c.user_id == user,
                                                            login_attempt.c.at >= started)).scalars().all()
    assert rows.count(False) == 5 and True not in rows
    # an unknown name gets the same answer as a wrong password
    assert "登录名或密码不对" in log_in(client_for(), "nobody-here", "whatever123").text


def test_session_cookie_and_headers(city, client_for, monkeypatch):
    c = client_for()
    r = log_in(c, city.users["village"])
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = c.get("/alerts")
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in page.headers
    assert page.headers["cache-control"] == "no-store"
    monkeypatch.setenv("RISK_HTTPS_ONLY", "1")
    from fastapi.testclient import TestClient

    from risk.web.app import create_app

    secure = TestClient(create_app(city.settings), base_url="https://testserver")
    assert "secure" in log_in(secure, city.users["village"]).headers["set-cookie"].lower()


def test_login_never_redirects_to_another_site(city, client_for):
    c = client_for()
    token = csrf_of(c.get("/login").text)
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        r = c.post("/login", data={"user_id": city.users["village"], "password": PASSWORD, "csrf_token": token,
                                    "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/alerts"
        token = csrf_of(c.get("/login").text)


@pytest.mark.slow
def test_the_server_s_log_holds_no_id_number_or_name(city, tmp_path: Path):
    """A real `risk serve`, a real HTTP client: searches by whole ID number, unmasked views, a bad request;
    then the server's whole output is scanned for every resident's ID number and name."""
    import httpx

    log_path = tmp_path / "server.log"
    with gateway.transaction(city.url) as conn:
        person = conn.execute(select(alert.c.person_id).where(alert.c.alert_id == city.alert_id)).scalar()
    with running_server(city, log_path) as base, httpx.Client(base_url=base, timeout=10) as c:
        assert log_in(c, city.users["auditor"]).status_code == 303
        assert c.get("/search", params={"person_id": person}).status_code == 200
        token = csrf_of(c.get("/search").text)
        assert c.post("/search.csv", data={"person_id": person, "csrf_token": token}).status_code == 200
        page = c.get(f"/alerts/{city.alert_id}").text
        assert person in c.post(f"/alerts/{city.alert_id}/unmask", data={"csrf_token": csrf_of(page)}).text
        c.get(f"/alerts/{person}")  # an ID where an alert id belongs
    written = log_path.read_text(encoding="utf-8")
    assert "GET /search" in written, "the access log was not captured"
    # the access log keeps the line of a URL with an ID number in it, the number masked
    assert f"GET /search?person_id={mask_id(person)} HTTP/1.1\" 200 OK" in written
    assert "Logging error" not in written
    with gateway.transaction(city.url) as conn:
        ids, names = privacy.residents(conn)
    leaks = privacy.scan([log_path], ids, names)
    assert not leaks, "\n".join(map(str, leaks[:5]))


def test_an_unexpected_error_shows_a_plain_page_not_a_stack_trace(city, caplog):
    from fastapi.testclient import TestClient

    from risk.web.app import create_app

    app = create_app(city.settings)

    def broken() -> None:
        raise RuntimeError("database exploded for 11010519491231002X")

    app.add_api_route("/broken", broken)
    c = TestClient(app, raise_server_exceptions=False)
    r = c.get("/broken")
    assert r.status_code == 500 and "出错了" in r.text
    assert "Traceback" not in r.text and "RuntimeError" not in r.text and "11010519491231002X" not in r.text
    logged = "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records)
    assert "unexpected error on GET /broken" in logged and "11010519491231002X" not in logged


def test_an_error_meant_for_people_answers_its_http_status_with_its_message(city, caplog):
    """risk.web.errors, the one place errors become answers: a RiskError that a route lets through is a
    plain page with its message in the user's language and its `http_status`; nothing is logged as a bug."""
    from fastapi.testclient import TestClient

    from risk import errors
    from risk.web.app import create_app

    def raising(kind: type[errors.RiskError]):
        def route() -> None:
            raise kind(f"不行：{kind.__name__} / no: {kind.__name__}")
        return route

    app = create_app(city.settings)
    kinds = {"not-allowed": (errors.NotAllowed, 403), "busy": (errors.WarehouseBusy, 409),
             "refused": (errors.LoginRefused, 429), "input": (errors.InputError, 400), "config": (errors.ConfigError, 400)}
    for name, (kind, _) in kinds.items():
        app.add_api_route(f"/raise/{name}", raising(kind))
    c = TestClient(app, raise_server_exceptions=False)
    for name, (kind, status) in kinds.items():
        r = c.get(f"/raise/{name}?lang=zh")  # the session remembers the language chosen last
        assert r.status_code == status == kind.http_status and f"不行：{kind.__name__}" in r.text, name
        assert "Traceback" not in r.text and "no:" not in r.text
        english = c.get(f"/raise/{name}?lang=en")
        assert english.status_code == status and f"no: {kind.__name__}" in english.text and "不行" not in english.text
    assert not [rec for rec in caplog.records if "unexpected error" in rec.getMessage()]
