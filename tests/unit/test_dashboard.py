"""The dashboard's figures on a real generated city: every user sees exactly their area, the parts add up to
the whole, recorded recoveries and escalations show, and SQLite and PostgreSQL give the same answers.

The expectations are computed here from the alert, recovery and audit tables read plainly (pandas), never
with risk.web.dashboard itself.
"""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Connection, select, update
from warehouses import pg_database

from risk import domain, pipeline
from risk.alerts import lifecycle as workflow
from risk.alerts.lifecycle import OPEN, User
from risk.db import gateway
from risk.db.tables import alert, alert_event, recovery, region, supervisor
from risk.settings import Settings
from risk.synth import generate
from risk.web import dashboard

MIDDLE_DAY = "2025-03-15"  # the city is loaded in two runs, so its alerts are first seen in two months
PREFIX = {"village": 12, "township": 9, "county": 6, "city": 4, "auditor": 4}
SUMMARY_KEYS = ["alerts", "open_alerts", "open_at_risk_cents", "confirmed_alerts", "confirmed_at_risk_cents",
                "recovered_cents", "escalated_alerts", "overdue_alerts"]


def load(url: str, landing: Path, var: Path) -> None:
    settings = Settings(database_url=url, var_dir=var)
    pipeline.run(settings, landing, until=MIDDLE_DAY, send_digests=False)
    pipeline.run(settings, landing, send_digests=False)
    gateway.engine_for(url).dispose()


def copy_sqlite(src: Path, dst: Path) -> str:
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{dst}"


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    """A generated city loaded once into SQLite (`w.db`); tests work on copies of it (see `url`)."""
    out = tmp_path_factory.mktemp("dashboard-city")
    generate(out, people=1200, months=5, seed=13)
    load(f"sqlite:///{out / 'w.db'}", out / "landing", out / "var")
    return out


@pytest.fixture
def url(city, tmp_path) -> str:
    """This test's own copy of the city's warehouse: what one test records, no other sees."""
    return copy_sqlite(city / "w.db", tmp_path / "w.db")


# ---------------------------------------------------------------- expectations, read plainly

def alerts_frame(conn: Connection) -> pd.DataFrame:
    """Every alert that is not withdrawn, with its county and month."""
    frame = pd.read_sql(select(alert.c.alert_id, alert.c.village_code, alert.c.status, alert.c.level,
                               alert.c.first_seen, alert.c.amount_at_risk_cents), conn)
    frame = frame[frame["status"] != "withdrawn"].copy()
    frame["county_code"] = frame["village_code"].str[:6] + "000000"
    frame["month"] = frame["first_seen"].str[:7]
    return frame


def in_area(frame: pd.DataFrame, u: User) -> pd.DataFrame:
    n = PREFIX[u.role]
    return frame[frame["village_code"].str[:n] == u.region_code[:n]]


def users(conn: Connection, role: str) -> list[User]:
    ids = conn.execute(select(supervisor.c.user_id).where(supervisor.c.role == role)
                       .order_by(supervisor.c.user_id)).scalars()
    return [workflow.user(conn, i) for i in ids]


def busiest_village_user(conn: Connection, frame: pd.DataFrame) -> User:
    return max(users(conn, "village"), key=lambda u: (len(in_area(frame, u)), u.user_id))


def county_names(conn: Connection) -> dict[str, str]:
    return dict(conn.execute(select(region.c.code, region.c.name).where(region.c.level == "county")).all())


def added(summaries: list[dashboard.Summary]) -> dict[str, int]:
    return {k: sum(s[k] for s in summaries) for k in SUMMARY_KEYS}


def month_totals(rows: list[dashboard.CountyMonth]) -> Counter:
    out: Counter = Counter()
    for r in rows:
        out[r["county_code"], r["month"], "alerts"] += r["alerts"]
        out[r["county_code"], r["month"], "cents"] += r["amount_at_risk_cents"]
    return out


# ---------------------------------------------------------------- each user's area

def test_a_village_user_sees_exactly_their_village(url):
    with gateway.transaction(url) as conn:
        frame = alerts_frame(conn)
        u = busiest_village_user(conn, frame)
        mine = frame[frame["village_code"] == u.region_code]
        assert len(mine) >= 2
        s = dashboard.summary(conn, u)
        assert s["alerts"] == len(mine)
        assert s["open_alerts"] == mine["status"].isin(OPEN).sum() == len(mine)
        assert s["open_at_risk_cents"] == mine["amount_at_risk_cents"].sum()
        rows = dashboard.by_county_month(conn, u)
        assert {r["county_code"] for r in rows} == {u.region_code[:6] + "000000"}
        assert Counter({r["month"]: r["alerts"] for r in rows}) == Counter(mine["month"])
        assert sum(r["amount_at_risk_cents"] for r in rows) == mine["amount_at_risk_cents"].sum()
        [county] = dashboard.recovered_vs_at_risk(conn, u)
        assert county["at_risk_cents"] == mine["amount_at_risk_cents"].sum()
        assert county["county_name"] == county_names(conn)[county["county_code"]]


def test_by_county_month_is_the_alert_table_grouped(url):
    with gateway.transaction(url) as conn:
        frame = alerts_frame(conn)
        names = county_names(conn)
        [city] = users(conn, "city")
        got = dashboard.by_county_month(conn, city)
    grouped = frame.groupby(["county_code", "month"])["amount_at_risk_cents"].agg(["count", "sum"])
    expected = [{"county_code": c, "county_name": names[c], "month": m, "alerts": int(n),
                 "amount_at_risk_cents": int(cents)} for (c, m), (n, cents) in grouped.iterrows()]
    assert got == expected
    assert len({r["month"] for r in got}) >= 2 and len({r["county_code"] for r in got}) >= 3


def test_a_county_is_the_sum_of_its_villages_and_of_its_townships(url):
    with gateway.transaction(url) as conn:
        frame = alerts_frame(conn)
        villages = users(conn, "village")
        assert set(frame["village_code"]) <= {v.region_code for v in villages}  # every alert has its supervisor
        for county in users(conn, "county"):
            for role in ("village", "township"):
                parts = [p for p in users(conn, role) if p.region_code[:6] == county.region_code[:6]]
                assert added([dashboard.summary(conn, p) for p in parts]) == dashboard.summary(conn, county)
                assert month_totals([r for p in parts for r in dashboard.by_county_month(conn, p)]) == \
                    month_totals(dashboard.by_county_month(conn, county))
            assert dashboard.summary(conn, county)["alerts"] == len(in_area(frame, county))


def test_the_city_and_auditors_see_everything_not_withdrawn(url):
    with gateway.transaction(url) as conn:
        gone = conn.execute(select(alert.c.alert_id).order_by(alert.c.alert_id)).scalars().first()
        conn.execute(update(alert).where(alert.c.alert_id == gone).values(status="withdrawn"))
    with gateway.transaction(url) as conn:
        every = pd.read_sql(select(alert.c.alert_id, alert.c.status, alert.c.amount_at_risk_cents), conn)
        live = every[every["status"] != "withdrawn"]
        assert len(live) == len(every) - 1
        [city], [auditor] = users(conn, "city"), users(conn, "auditor")
        s = dashboard.summary(conn, city)
        assert s["alerts"] == len(live)
        assert s["open_at_risk_cents"] == live["amount_at_risk_cents"].sum()
        counties = dashboard.recovered_vs_at_risk(conn, city)
        assert sum(c["at_risk_cents"] for c in counties) == live["amount_at_risk_cents"].sum()
        assert sum(r["alerts"] for r in dashboard.by_county_month(conn, city)) == len(live)
        for figure in (dashboard.summary, dashboard.by_county_month, dashboard.recovered_vs_at_risk,
                       dashboard.escalations):
            assert figure(conn, auditor) == figure(conn, city)


def test_a_user_without_alerts_sees_zeros(url):
    with gateway.transaction(url) as conn:
        frame = alerts_frame(conn)
        quiet = [u for u in users(conn, "village") if in_area(frame, u).empty]
        if not quiet:
            pytest.skip("every village has alerts")
        u = quiet[0]
        assert dashboard.summary(conn, u) == dict.fromkeys(SUMMARY_KEYS, 0)
        assert dashboard.by_county_month(conn, u) == []
        assert dashboard.recovered_vs_at_risk(conn, u) == []
        assert dashboard.escalations(conn, u) == []


# ---------------------------------------------------------------- work on the alerts shows

def confirm(conn: Connection, who: str, alert_id: str) -> None:
    workflow.act(conn, who, alert_id, "acknowledge")
    workflow.act(conn, who, alert_id, "investigate")
    workflow.act(conn, who, alert_id, "confirm", comment="上门核实属实 / checked on the spot")


def test_recovered_amounts_match_what_was_recorded(url):
    with gateway.transaction(url) as conn:
        frame = alerts_frame(conn)
        me = busiest_village_user(conn, frame)
        first, second, third = in_area(frame, me).sort_values("alert_id").head(3).itertuples()
        before = dashboard.summary(conn, me)
        confirm(conn, me.user_id, first.alert_id)
        workflow.record_recovery(conn, me.user_id, first.alert_id, "100.10", date(2026, 11, 20), "bank_return")
        workflow.record_recovery(conn, me.user_id, first.alert_id, "0.20", date(2026, 11, 21), "repayment")
        workflow.act(conn, me.user_id, first.alert_id, "close")
        confirm(conn, me.user_id, second.alert_id)
        workflow.record_recovery(conn, me.user_id, second.alert_id, "55.55", date(2026, 11, 22), "deduction")
        workflow.act(conn, me.user_id, third.alert_id, "acknowledge")
        workflow.act(conn, me.user_id, third.alert_id, "dismiss", comment="合法 / lawful", reason="lawful")
    recovered = 10010 + 20 + 5555
    confirmed = first.amount_at_risk_cents + second.amount_at_risk_cents
    with gateway.transaction(url) as conn:
        assert pd.read_sql(select(recovery.c.amount_cents), conn)["amount_cents"].sum() == recovered
        s = dashboard.summary(conn, me)
        assert s["recovered_cents"] == recovered
        assert s["confirmed_alerts"] == 2 and s["confirmed_at_risk_cents"] == confirmed
        assert s["open_alerts"] == before["open_alerts"] - 3
        assert s["open_at_risk_cents"] == before["open_at_risk_cents"] - confirmed - third.amount_at_risk_cents
        assert s["alerts"] == before["alerts"]  # dismissed and closed alerts still count, only withdrawn do not
        mine = me.region_code[:6] + "000000"
        for viewer in (me, *users(conn, "county"), *users(conn, "city")):
            for row in dashboard.recovered_vs_at_risk(conn, viewer):
                ours = row["county_code"] == mine
                assert row["recovered_cents"] == (recovered if ours else 0)
                assert row["confirmed_at_risk_cents"] == (confirmed if ours else 0)
        [city] = users(conn, "city")
        assert dashboard.summary(conn, city)["recovered_cents"] == recovered


def escalations_expected(conn: Connection, u: User) -> list[dict[str, Any]]:
    events = pd.read_sql(select(alert_event.c.at, alert_event.c.details, alert.c.village_code)
                         .join(alert, alert.c.alert_id == alert_event.c.alert_id)
                         .where(alert_event.c.action == "escalate"), conn)
    counts = Counter((at.strftime("%Y-%m"), json.loads(details)["to_level"])
                     for at, details, village in events.itertuples(index=False)
                     if village[:PREFIX[u.role]] == u.region_code[:PREFIX[u.role]])
    return [{"month": m, "level": level, "escalations": n}
            for (m, level), n in sorted(counts.items(), key=lambda kv: (kv[0][0], domain.ESCALATION.index(kv[0][1])))]


def test_escalations_appear_after_the_sla_is_missed(url):
    with gateway.transaction(url) as conn:
        frame = alerts_frame(conn)
        [city] = users(conn, "city")
        me = busiest_village_user(conn, frame)
        assert dashboard.escalations(conn, city) == []
        assert dashboard.summary(conn, city)["escalated_alerts"] == 0
        first = workflow.escalate(conn, now=datetime.now() + timedelta(days=30))
        second = workflow.escalate(conn, now=datetime.now() + timedelta(days=60))
    assert len(first) == len(frame) and len(second) == len(frame)  # everything new moves up twice
    with gateway.transaction(url) as conn:
        viewers = [city, me, *users(conn, "county"), *users(conn, "township")[:3]]
        for u in viewers:
            assert dashboard.escalations(conn, u) == escalations_expected(conn, u), u.user_id
        got = dashboard.escalations(conn, city)
        assert {r["level"] for r in got} == {"township", "county"}
        assert sum(r["escalations"] for r in got) == len(first) + len(second)
        s = dashboard.summary(conn, city)
        assert s["escalated_alerts"] == s["overdue_alerts"] == len(frame)
        some = in_area(frame, me)["alert_id"].iloc[0]
        workflow.act(conn, me.user_id, some, "acknowledge")
        s = dashboard.summary(conn, city)
        assert s["escalated_alerts"] == len(frame) and s["overdue_alerts"] == len(frame) - 1


# ---------------------------------------------------------------- SQLite and PostgreSQL

def work(url: str) -> None:
    """The same day's work in any warehouse: a confirmed alert with two recoveries, a dismissed one, and
    two rounds of escalation for what nobody acknowledged."""
    with gateway.transaction(url) as conn:
        frame = alerts_frame(conn)
        me = busiest_village_user(conn, frame)
        a, b = sorted(in_area(frame, me)["alert_id"])[:2]
        confirm(conn, me.user_id, a)
        workflow.record_recovery(conn, me.user_id, a, "321.09", date(2026, 11, 20), "bank_return")
        workflow.record_recovery(conn, me.user_id, a, "0.01", date(2026, 11, 21), "repayment")
        workflow.act(conn, me.user_id, b, "acknowledge")
        workflow.act(conn, me.user_id, b, "dismiss", comment="数据有误 / wrong data", reason="data_error")
        workflow.escalate(conn, now=datetime.now() + timedelta(days=30))
        workflow.escalate(conn, now=datetime.now() + timedelta(days=60))


@pytest.fixture(scope="module")
def twins(city, tmp_path_factory):
    """The city's landing loaded into SQLite and into PostgreSQL, then worked the same way in both."""
    folder = tmp_path_factory.mktemp("dashboard-twins")
    with pg_database() as pg:
        load(pg, city / "landing", folder / "var-pg")
        lite = copy_sqlite(city / "w.db", folder / "w.db")
        for url in (lite, pg):
            work(url)
        yield lite, pg


@pytest.mark.postgres
@pytest.mark.parametrize("figure", [dashboard.by_county_month, dashboard.recovered_vs_at_risk,
                                    dashboard.escalations, dashboard.summary], ids=lambda f: f.__name__)
def test_sqlite_and_postgres_give_the_same_figures(twins, figure: Callable[[Connection, User], Any]):
    lite, pg = twins
    answers = []
    for url in (lite, pg):
        with gateway.transaction(url) as conn:
            viewers = [u for role in PREFIX for u in users(conn, role)]
            answers.append({u.user_id: figure(conn, u) for u in viewers})
    assert answers[0] == answers[1]
    assert any(answers[0].values())  # not equal because both are empty
