"""The alert lifecycle from the command line, every role's scope, and the audit log."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from warehouses import warehouse

from risk import domain, errors, pipeline
from risk.alerts import lifecycle as workflow
from risk.cli import main
from risk.db import gateway
from risk.db.tables import alert, alert_event, recovery, supervisor
from risk.settings import Settings
from risk.synth import generate


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def city(request, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A generated city's warehouse, on SQLite and on PostgreSQL: the workflow runs on both."""
    out = tmp_path_factory.mktemp("workflow-city")
    generate(out, people=1500, months=6, seed=9)
    with warehouse(request.param, out, "w.db") as url:
        pipeline.run(Settings(database_url=url, var_dir=out / "var"), out / "landing")
        yield url, out


def people(url: str) -> dict:
    """An alert with its village, and a user of each role whose area holds it (and a village user whose
    area does not)."""
    with gateway.transaction(url) as conn:
        a = conn.execute(select(alert).where(alert.c.rule != "anomaly", alert.c.status == "new")
                         .order_by(alert.c.alert_id)).first()
        users = conn.execute(select(supervisor)).all()
    v = a.village_code

    def of(role: str, same: bool = True) -> str:
        n = {"village": 12, "township": 9, "county": 6, "city": 4, "auditor": 4}[role]
        for u in users:
            if u.role == role and (u.region_code[:n] == v[:n]) == same:
                return u.user_id
        pytest.skip(f"no {role} user {'in' if same else 'outside'} the area")

    return {"alert": a, "village": of("village"), "other_village": of("village", same=False),
            "township": of("township"), "county": of("county"), "city": of("city"), "auditor": of("auditor")}


def cli(url: str, *args: str, capsys) -> tuple[int, str, str]:
    code = main([*args, "--db", url])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_role_sees_exactly_its_area(city):
    url, _ = city
    p = people(url)
    with gateway.transaction(url) as conn:
        every = conn.execute(select(alert.c.alert_id, alert.c.village_code).where(alert.c.status != "withdrawn")).all()
        for role in ("village", "township", "county", "city", "auditor", "other_village"):
            u = workflow.user(conn, p[role])
            n = {"village": 12, "township": 9, "county": 6, "city": 4, "auditor": 4}[u.role]
            expected = {a for a, village in every if village and village[:n] == u.region_code[:n]}
            got = {r.alert_id for r in workflow.queue(conn, u.user_id)}
            assert got == expected, role
            assert (p["alert"].alert_id in got) == (role != "other_village")


def test_a_supervisors_day_from_ack_to_closed_recovery(city, capsys):
    url, _ = city
    p = people(url)
    a, me = p["alert"].alert_id, p["village"]
    assert cli(url, "alerts", "ack", a, "--user", me, capsys=capsys)[0] == 0
    assert cli(url, "alerts", "investigate", a, "--user", me, capsys=capsys)[0] == 0
    assert cli(url, "alerts", "decide", a, "--user", me, "--outcome", "confirmed", "--comment", "上门核实属实",
               capsys=capsys)[0] == 0
    assert cli(url, "alerts", "recover", a, "--user", me, "--amount", "100.10", "--date", "2026-11-20",
               "--method", "bank_return", capsys=capsys)[0] == 0
    code, _, err = cli(url, "alerts", "recover", a, "--user", me, "--amount", "0.2", "--date", "2026-11-21",
                       "--method", "repayment", capsys=capsys)
    assert code == 0 and "100.30" in err
    assert cli(url, "alerts", "close", a, "--user", me, capsys=capsys)[0] == 0
    code, out, _ = cli(url, "alerts", "history", a, capsys=capsys)
    log = list(csv.DictReader(io.StringIO(out)))
    assert [(r["action"], r["from_status"], r["to_status"], r["user_id"]) for r in log] == [
        ("acknowledge", "new", "acknowledged", me), ("investigate", "acknowledged", "investigating", me),
        ("confirm", "investigating", "confirmed", me), ("recover", "confirmed", "confirmed", me),
        ("recover", "confirmed", "confirmed", me), ("close", "confirmed", "closed", me)]
    with gateway.transaction(url) as conn:
        assert sorted(conn.execute(select(recovery.c.amount_cents).where(recovery.c.alert_id == a)).scalars()) == [20, 10010]


def test_other_transitions_are_refused_with_a_clear_message(city, capsys):
    url, _ = city
    p = people(url)
    with gateway.transaction(url) as conn:
        fresh = conn.execute(select(alert.c.alert_id).where(alert.c.village_code == p["alert"].village_code,
                                                             alert.c.status == "new")).scalar()
    if fresh is None:
        pytest.skip("no second new alert in that village")
    code, _, err = cli(url, "alerts", "confirm", fresh, "--user", p["village"], "--comment", "x", capsys=capsys)
    assert code == 2 and "only investigating alerts can be confirmed" in err and "Traceback" not in err
    cli(url, "alerts", "ack", fresh, "--user", p["village"], capsys=capsys)
    code, _, err = cli(url, "alerts", "dismiss", fresh, "--user", p["village"], "--reason", "lawful", capsys=capsys)
    assert code == 2 and "needs a comment" in err
    code, _, err = cli(url, "alerts", "dismiss", fresh, "--user", p["village"], "--reason", "nonsense",
                       "--comment", "x", capsys=capsys)
    assert code == 2 and "needs a reason" in err
    code, _, err = cli(url, "alerts", "decide", fresh, "--user", p["village"], "--outcome", "dismissed",
                       "--comment", "x", capsys=capsys)
    assert code == 2 and "needs a reason" in err


def test_nobody_acts_outside_their_area_and_auditors_change_nothing(city, capsys):
    url, _ = city
    p = people(url)
    with gateway.transaction(url) as conn:
        before = conn.execute(select(alert_event)).all()
    a = p["alert"].alert_id
    for who in ("other_village", "auditor"):
        code, _, err = cli(url, "alerts", "snooze", a, "--user", p[who], "--days", "30", "--reason", "x",
                           capsys=capsys)
        assert code == 2
    code, _, err = cli(url, "alerts", "show", a, "--user", p["other_village"], capsys=capsys)
    assert code == 2 and "in your area" in err
    with gateway.transaction(url) as conn:
        assert conn.execute(select(alert_event)).all() == before


def test_show_masks_identity_and_an_unmasked_view_is_logged(city, capsys):
    url, _ = city
    p = people(url)
    a = p["alert"]
    code, out, _ = cli(url, "alerts", "show", a.alert_id, "--user", p["county"], capsys=capsys)
    assert code == 0 and a.person_id not in out and a.person_id[:6] + "********" + a.person_id[-4:] in out
    code, out, _ = cli(url, "alerts", "show", a.alert_id, "--user", p["county"], "--unmask", capsys=capsys)
    assert code == 0 and a.person_id in out
    with gateway.transaction(url) as conn:
        views = conn.execute(select(alert_event).where(alert_event.c.alert_id == a.alert_id,
                                                       alert_event.c.action == "view_unmasked")).all()
    assert [v.user_id for v in views][-1] == p["county"]


def test_snooze_is_capped_audited_and_hides_the_alert_until_then(city):
    url, _ = city
    p = people(url)
    with gateway.transaction(url) as conn:
        target = conn.execute(select(alert.c.alert_id).where(
            alert.c.village_code == p["alert"].village_code, alert.c.status == "new")).scalar()
        if target is None:
            pytest.skip("no new alert left in that village")
        with pytest.raises(errors.NotAllowed, match="1 to 180 days"):
            workflow.snooze(conn, p["township"], target, 181, "too long")
        until = workflow.snooze(conn, p["township"], target, 30, "本人住院，出院后核实", today=date(2026, 1, 1))
        assert until == date(2026, 1, 31)
        with pytest.raises(errors.NotAllowed, match="already snoozed until 2026-01-31"):  # not pushed on and on
            workflow.snooze(conn, p["township"], target, 30, "again", today=date(2026, 1, 15))
        assert target not in {r.alert_id for r in workflow.queue(conn, p["village"], today=date(2026, 1, 15))}
        assert target in {r.alert_id for r in workflow.queue(conn, p["village"], today=date(2026, 2, 1))}
        last = workflow.history(conn, target)[-1]
    assert last["action"] == "snooze" and last["user_id"] == p["township"]


def test_list_is_the_users_area_in_export_columns(city, capsys):
    url, _ = city
    p = people(url)
    code, out, _ = cli(url, "alerts", "list", "--user", p["village"], "--format", "csv", capsys=capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows
    assert list(rows[0])[:10] == ["alert_id", "rule", "person_id", "village_code", "severity", "score",
                                  "amount_at_risk", "first_seen", "status", "evidence"]
    assert {r["village_code"] for r in rows} == {p["alert"].village_code}


def test_unacknowledged_alerts_move_up_one_level_per_missed_deadline(city):
    from datetime import datetime, timedelta

    url, _ = city
    with gateway.transaction(url) as conn:
        a = conn.execute(select(alert).where(alert.c.status == "new", alert.c.severity == "high",
                                             alert.c.snoozed_until.is_(None))).first()
        start = a.raised_at
        assert a.level == "village" and start is not None
        moved = {m["alert_id"]: m for m in workflow.escalate(conn, now=start + timedelta(days=2, hours=23))}
        assert a.alert_id not in moved  # high: 3 days
        moved = {m["alert_id"]: m for m in workflow.escalate(conn, now=start + timedelta(days=3, hours=1))}
        assert moved[a.alert_id]["to"] == "township"
        again = {m["alert_id"] for m in workflow.escalate(conn, now=start + timedelta(days=4))}
        assert a.alert_id not in again  # the clock restarted at the township
        moved = {m["alert_id"]: m for m in workflow.escalate(conn, now=start + timedelta(days=6, hours=2))}
        assert moved[a.alert_id]["to"] == "county"
        assert a.alert_id not in {m["alert_id"] for m in workflow.escalate(conn, now=start + timedelta(days=30))}
        log = [e for e in workflow.history(conn, a.alert_id) if e["action"] == "escalate"]
    assert [e["user_id"] for e in log] == ["system", "system"]
    assert isinstance(start, datetime)


def test_a_dismissed_alert_stays_dismissed_until_new_facts_reopen_it(tmp_path, db_url):
    from rulecity import City

    c = City(tmp_path)
    p = c.person("1950-03-03", "F")
    c.death("2025-04-01", p, "2025-02-10")
    c.pay("2025-04-10", p, "resident_pension", "2025-03", "200.00")
    url = db_url
    c.run(url)
    with gateway.transaction(url) as conn:
        a = conn.execute(select(alert).where(alert.c.rule == "deceased_payment")).first()
        u = conn.execute(select(supervisor).where(supervisor.c.region_code == a.village_code)).first()
        if u is None:  # the small city has no village supervisor: act as one
            conn.execute(supervisor.insert().values(user_id="vx", name="测试", role="village",
                                                    region_code=a.village_code, delivery_day="2025-01-01",
                                                    source_file="-", source_line=0))
            uid = "vx"
        else:
            uid = u.user_id
        workflow.act(conn, uid, a.alert_id, "acknowledge")
        workflow.act(conn, uid, a.alert_id, "dismiss", comment="家属已退回", reason="already_handled")
    c.run(url)  # detection again on the same facts
    with gateway.transaction(url) as conn:
        assert conn.execute(select(alert.c.status).where(alert.c.alert_id == a.alert_id)).scalar() == "dismissed"
    c.pay("2025-05-10", p, "resident_pension", "2025-04", "200.00", payment_id="PAY-APR")
    c.run(url)
    with gateway.transaction(url) as conn:
        status = conn.execute(select(alert.c.status).where(alert.c.alert_id == a.alert_id)).scalar()
        reopen = [e for e in workflow.history(conn, a.alert_id) if e["action"] == "reopen"]
    assert status == "new"
    assert len(reopen) == 1 and "PAY-APR" in reopen[0]["details"]


def test_an_area_is_every_code_that_begins_with_its_digits_and_no_other():
    """The area is found through the village-code index as a range: codes at its edges fall on the right side."""
    from sqlalchemy import Column, MetaData, String, Table, create_engine

    codes = ["431102209998", "431102209999", "43110221000", "431102210000", "431102200000", "4311022099",
             "431102209", "431102208999", "431199999999", "431200000000", "431100000000", "431099999999"]
    places = Table("places", MetaData(), Column("code", String))
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        places.create(conn)
        conn.execute(places.insert(), [{"code": c} for c in codes])
        for role, region in (("township", "431102209000"), ("village", "431102209999"), ("county", "431199000000"),
                             ("city", "431100000000"), ("county", "431102000000")):
            u = workflow.User("u", "u", role, region)
            found = set(conn.execute(select(places.c.code).where(workflow.in_area(places.c.code, u))).scalars())
            digits = domain.area_digits(role)
            assert found == {c for c in codes if c.startswith(region[:digits])}, (role, region)
