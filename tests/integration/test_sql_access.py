"""The auditors' SQL (risk/db/sql_access.py, sql/views, sql/queries).

One generated city is loaded into SQLite and into a PostgreSQL database of its own, and the same
decisions, recoveries and escalations are recorded in both through risk.alerts.lifecycle. Then:

- every view and saved query gives the same rows on both databases (money compared as text);
- on PostgreSQL, SQL logins for an auditor, a village and a county supervisor connect as themselves: the
  auditor sees every row of every view, each supervisor exactly the rows workflow.scope gives them
  through the app, and none of them can write anything;
- installing the views and granting again changes nothing.

Roles are cluster-wide, so every role made here (the groups too) carries a random suffix and is dropped
at the end, after the database.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from warehouses import PG_URL, pg_database

from risk import domain, pipeline
from risk.alerts import lifecycle as workflow
from risk.db import gateway, sql_access
from risk.db.tables import alert, supervisor
from risk.errors import InputError
from risk.settings import Settings
from risk.synth import generate
from risk.web import dashboard

# not what was recorded but when (the test's wall clock) and in which order the system's escalations were
# numbered (workflow.escalate takes alerts in the database's order): they differ between the two loads
WALL_CLOCK = {"acted_at", "recorded_at", "event_id"}
KEY_OF = {"alert": "alert_id", "alert_event": "alert_id", "recovery": "alert_id", "region": "code",
          "recipient": "person_id", "supervisor": "user_id", "payment": "payment_id", sql_access.REGION_TABLE: "login"}
INSUFFICIENT_PRIVILEGE = "42501"
NOT_UPDATABLE = "55000"  # "cannot insert into view": PostgreSQL says so before it checks privileges


# ---------------------------------------------------------------- the city, worked the same way twice

@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sql-city")
    generate(out, people=1200, months=5, seed=13)
    return out


@dataclass(frozen=True)
class Worked:
    village_user: str
    county_user: str
    auditor_user: str
    county_code: str  # the county of village_user (12 digits)
    year: str


def load_and_work(url: str, landing: Path, var: Path) -> Worked:
    """Load the city, then record the same decisions and recoveries, and escalate, in a fixed order."""
    pipeline.run(Settings(database_url=url, var_dir=var), landing / "landing", send_digests=False)
    with gateway.transaction(url) as conn:
        village, _ = conn.execute(select(alert.c.village_code, func.count())
                                  .where(alert.c.status == "new", alert.c.rule != "anomaly")
                                  .group_by(alert.c.village_code)
                                  .order_by(func.count().desc(), alert.c.village_code)).first()
        staff = conn.execute(select(supervisor).order_by(supervisor.c.user_id)).all()
        vu = next(s.user_id for s in staff if s.role == "village" and s.region_code == village)
        cu = next(s.user_id for s in staff if s.role == "county" and s.region_code[:6] == village[:6])
        au = next(s.user_id for s in staff if s.role == "auditor")
        mine = conn.execute(select(alert.c.alert_id).where(alert.c.village_code == village, alert.c.status == "new")
                            .order_by(alert.c.amount_at_risk_cents.desc(), alert.c.alert_id)).scalars().all()
        nearby = conn.execute(select(alert.c.alert_id).where(func.substr(alert.c.village_code, 1, 6) == village[:6],
                                                              alert.c.village_code != village, alert.c.status == "new")
                              .order_by(alert.c.alert_id)).scalars().all()
        assert len(mine) >= 3 and nearby
        for a, who in ((mine[0], vu), (nearby[0], cu)):
            for action in ("acknowledge", "investigate"):
                workflow.act(conn, who, a, action)
            workflow.act(conn, who, a, "confirm", comment="上门核实属实 / checked on the spot")
            workflow.record_recovery(conn, who, a, "100.10", date(2026, 3, 2), "bank_return")
            workflow.record_recovery(conn, who, a, "0.20", date(2026, 3, 9), "repayment")
        workflow.act(conn, vu, mine[1], "acknowledge")
        workflow.act(conn, vu, mine[1], "dismiss", comment="法定例外 / a legal exception", reason="lawful")
        workflow.act(conn, vu, mine[2], "acknowledge")
        workflow.snooze(conn, vu, mine[2], 30, "等待材料 / waiting for papers", today=date(2026, 3, 1))
        workflow.escalate(conn, now=datetime(2100, 1, 1))  # every other new alert: up to the township
        workflow.escalate(conn, now=datetime(2100, 2, 1))  # and to the county
        sql_access.install_views(conn)
        year = conn.execute(select(func.max(alert.c.first_seen))).scalar()[:4]
    return Worked(vu, cu, au, village[:6] + "000000", year)


@pytest.fixture(scope="module")
def sqlite_city(landing) -> tuple[str, Worked]:
    url = f"sqlite:///{landing / 'city.db'}"
    return url, load_and_work(url, landing, landing / "var-sqlite")


@dataclass(frozen=True)
class PgCity:
    url: str
    worked: Worked
    auditor_group: str
    supervisor_group: str
    logins: dict[str, tuple[str, str]]  # auditor | village | county -> (login, the supervisor's user_id)


@contextlib.contextmanager
def dropped_afterwards(names: list[str]) -> Iterator[None]:
    """Drop these cluster-wide roles at the end (members first), whatever happened."""
    try:
        yield
    finally:
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with contextlib.suppress(Exception), admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(scope="module")
def pg_city(landing) -> Iterator[PgCity]:
    suffix = uuid.uuid4().hex[:8]
    groups = {"auditor": f"risk_auditor_{suffix}", "supervisor": f"risk_supervisor_{suffix}"}
    logins = {"auditor": f"t_auditor_{suffix}", "village": f"t_village_{suffix}", "county": f"t_county_{suffix}"}
    with dropped_afterwards([*logins.values(), *groups.values()]), pg_database() as url:
        worked = load_and_work(url, landing, landing / "var-pg")
        users = {"auditor": worked.auditor_user, "village": worked.village_user, "county": worked.county_user}
        with gateway.transaction(url) as conn:
            grant_and_add(conn, groups, logins, users)
        yield PgCity(url, worked, groups["auditor"], groups["supervisor"],
                     {k: (logins[k], users[k]) for k in logins})


def grant_and_add(conn, groups: dict[str, str], logins: dict[str, str], users: dict[str, str]) -> None:
    sql_access.install_views(conn)
    sql_access.grant_auditor(conn, groups["auditor"])
    sql_access.grant_supervisor(conn, groups["supervisor"])
    for key, login in logins.items():
        u = workflow.user(conn, users[key])
        sql_access.add_sql_user(conn, login, u.role, u.region_code, auditor_group=groups["auditor"],
                                supervisor_group=groups["supervisor"])


@contextlib.contextmanager
def connected_as(url: str, login: str) -> Iterator[Engine]:
    engine = create_engine(make_url(url).set(username=login, password=None), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


# ---------------------------------------------------------------- comparing rows

def plain(value: Any) -> Any:
    """One form per value whatever the database: money as text with two decimals, days and times as text."""
    if isinstance(value, float | Decimal):
        return f"{Decimal(str(value)):.2f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def rows_of(conn, sql: str, params: dict | None = None) -> list[tuple]:
    result = conn.execute(text(sql), params or {}).mappings().all()
    return sorted((tuple((k, plain(v)) for k, v in r.items() if k not in WALL_CLOCK) for r in result), key=repr)


def view_rows(conn, view: str) -> list[tuple]:
    return rows_of(conn, f"SELECT * FROM {view}")


def saved_params(w: Worked) -> dict[str, dict[str, Any]]:
    return {"biggest_open_cases": {"county": w.county_code, "top": 10},
            "decisions_by_user": {"user_id": w.village_user, "since": "2000-01-01"},
            "dismissed_by_reason_per_rule": {"reason": "lawful"},
            "recovered_vs_at_risk_by_county": {"year": w.year},
            "escalated_not_acknowledged": {"level": "county"}}


# ---------------------------------------------------------------- SQLite

def test_views_install_twice_and_saved_queries_name_their_parameters(sqlite_city):
    url, w = sqlite_city
    with gateway.transaction(url) as conn:
        before = {v: view_rows(conn, v) for v in sql_access.VIEWS}
        sql_access.install_views(conn)
        assert {v: view_rows(conn, v) for v in sql_access.VIEWS} == before
        assert all(before.values())
        assert set(saved_params(w)) == set(sql_access.saved_queries())
        for name, (description, sql) in sql_access.saved_queries().items():
            assert " / " in description.splitlines()[0] and "--" not in sql, name  # Chinese / English
        with pytest.raises(InputError, match="county, top"):
            sql_access.run_saved(conn, "biggest_open_cases", {"county": w.county_code})
        with pytest.raises(InputError, match="no saved query"):
            sql_access.run_saved(conn, "drop_everything", {})
        lawful = sql_access.run_saved(conn, "dismissed_by_reason_per_rule", {"reason": "lawful"})
        assert sum(r["alerts"] for r in lawful) == 1
        mine = sql_access.run_saved(conn, "decisions_by_user", {"user_id": w.village_user, "since": "2000-01-01"})
        assert [r["action"] for r in mine] == ["acknowledge", "investigate", "confirm", "recover", "recover",
                                               "acknowledge", "dismiss", "acknowledge", "snooze"]
        assert [r["reason"] for r in mine if r["action"] == "dismiss"] == ["lawful"]
        case = conn.execute(text("SELECT * FROM flagged_cases WHERE recovered_fen > 0 ORDER BY alert_id")).mappings().all()
        assert [(r["recovered_fen"], plain(r["recovered_yuan"])) for r in case] == [(10030, "100.30")] * 2


def test_sql_user_functions_are_postgresql_only(sqlite_city):
    url, _ = sqlite_city
    with gateway.transaction(url) as conn, pytest.raises(Exception, match="PostgreSQL"):
        sql_access.grant_auditor(conn)


# ---------------------------------------------------------------- PostgreSQL

pg = pytest.mark.postgres


@pg
def test_views_and_saved_queries_agree_on_sqlite_and_postgresql(sqlite_city, pg_city):
    url, w = sqlite_city
    with gateway.transaction(url) as lite, gateway.transaction(pg_city.url) as post:
        for view in sql_access.VIEWS:
            assert view_rows(lite, view) == view_rows(post, view), view
        for name, params in saved_params(w).items():
            got = sql_access.run_saved(post, name, params)
            assert got, name
            assert [tuple((k, plain(v)) for k, v in r.items() if k not in WALL_CLOCK) for r in got] == \
                [tuple((k, plain(v)) for k, v in r.items() if k not in WALL_CLOCK)
                 for r in sql_access.run_saved(lite, name, params)], name


@pg
def test_the_auditor_sees_every_row_and_changes_nothing(pg_city):
    login, _ = pg_city.logins["auditor"]
    with gateway.transaction(pg_city.url) as owner:
        everything = {v: view_rows(owner, v) for v in sql_access.VIEWS}
        # the views show whole ID numbers: every statement of a database login goes to the server's log
        assert all(sql_access.logs_statements(owner, name) for name, _ in pg_city.logins.values())
    with connected_as(pg_city.url, login) as engine:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == login
            for view in sql_access.VIEWS:
                assert view_rows(conn, view) == everything[view], view
        cannot_write(engine, pg_city.url, login)
        refused(engine, "SELECT count(*) FROM recipient")  # only what the views need
        refused(engine, f"SELECT count(*) FROM {sql_access.REGION_TABLE}")


@pg
@pytest.mark.parametrize("who", ["village", "county"])
def test_a_supervisor_sees_exactly_their_area_and_changes_nothing(pg_city, who):
    login, user_id = pg_city.logins[who]
    with gateway.transaction(pg_city.url) as owner:
        u = workflow.user(owner, user_id)
        in_scope = set(owner.execute(select(alert.c.alert_id).where(workflow.scope(u))).scalars())
        live = set(owner.execute(select(alert.c.alert_id).where(workflow.scope(u), alert.c.status != "withdrawn"))
                   .scalars())
        every = {v: view_rows(owner, v) for v in sql_access.VIEWS}
        by_month = dashboard.by_county_month(owner, u)
        per_county = dashboard.recovered_vs_at_risk(owner, u)
        all_alerts = owner.execute(select(func.count()).select_from(alert)).scalar()

    def of_area(view: str, allowed: set[str]) -> list[tuple]:
        return [r for r in every[view] if dict(r)["alert_id"] in allowed]

    with connected_as(pg_city.url, login) as engine:
        with engine.connect() as conn:
            for view, allowed in (("flagged_cases", live), ("decisions", in_scope), ("recoveries", in_scope)):
                got = view_rows(conn, view)
                assert got == of_area(view, allowed), view
                assert got, view  # the test recorded decisions and recoveries in this area
            seen = set(conn.execute(text("SELECT alert_id FROM alert")).scalars())
            assert seen == in_scope and len(seen) < all_alerts
            sums = conn.execute(text(
                "SELECT county_code, month, alerts, amount_at_risk_fen, confirmed_fen, recovered_fen "
                "FROM amounts_by_county_month ORDER BY county_code, month")).all()
            assert [(r.county_code, r.month, r.alerts, r.amount_at_risk_fen) for r in sums] == \
                [(m["county_code"], m["month"], m["alerts"], m["amount_at_risk_cents"]) for m in by_month]
            assert [(c["county_code"], c["confirmed_at_risk_cents"], c["recovered_cents"]) for c in per_county] == \
                [(code, sum(r.confirmed_fen for r in sums if r.county_code == code),
                  sum(r.recovered_fen for r in sums if r.county_code == code))
                 for code in sorted({r.county_code for r in sums})]
            own = conn.execute(text(f"SELECT login, region_prefix FROM {sql_access.REGION_TABLE}")).all()
            assert own == [(login, u.region_code[:domain.area_digits(u.role)])]
        cannot_write(engine, pg_city.url, login)
        refused(engine, "SELECT count(*) FROM recipient")


@pg
def test_the_village_sees_less_than_the_county_and_the_county_less_than_the_city(pg_city):
    counts = {}
    for who in ("village", "county", "auditor"):
        with connected_as(pg_city.url, pg_city.logins[who][0]) as engine, engine.connect() as conn:
            counts[who] = conn.execute(text("SELECT count(*) FROM flagged_cases")).scalar()
    assert 0 < counts["village"] < counts["county"] < counts["auditor"]


@pg
def test_granting_again_changes_nothing_and_the_owner_is_not_restricted(pg_city):
    groups = {"auditor": pg_city.auditor_group, "supervisor": pg_city.supervisor_group}
    logins = {k: v[0] for k, v in pg_city.logins.items()}
    users = {k: v[1] for k, v in pg_city.logins.items()}
    with gateway.transaction(pg_city.url) as conn:
        before = security_state(conn)
        grant_and_add(conn, groups, logins, users)
        assert security_state(conn) == before
        assert before["rls"] == [("alert", True, False), ("alert_event", True, False), ("recovery", True, False),
                                 (sql_access.REGION_TABLE, True, False)]  # enabled, not forced on the owner
        assert {p[3] for p in before["policies"]} == {f"{{{g}}}" for g in groups.values()}
    with pytest.raises(InputError, match="not one of ours"):
        with gateway.transaction(pg_city.url) as conn:
            sql_access.add_sql_user(conn, "postgres", "auditor", "431100000000")
    with pytest.raises(InputError, match="role name"):
        with gateway.transaction(pg_city.url) as conn:
            sql_access.add_sql_user(conn, 'x"; DROP TABLE alert; --', "auditor", "431100000000")


# ---------------------------------------------------------------- helpers

def security_state(conn) -> dict[str, list]:
    """Everything the grants set: privileges on every relation, policies, RLS flags, memberships, logins."""
    q = {
        "acl": "SELECT c.relname, g.rolname, a.privilege_type FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
               "JOIN pg_roles g ON g.oid = a.grantee WHERE c.relnamespace = 'public'::regnamespace "
               "AND a.grantee <> c.relowner",
        "policies": "SELECT tablename, policyname, cmd, CAST(roles AS text), qual FROM pg_policies",
        "rls": "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relrowsecurity "
               "AND relnamespace = 'public'::regnamespace",
        "members": "SELECT g.rolname, u.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                   "JOIN pg_roles u ON u.oid = m.member WHERE g.rolname LIKE 'risk\\_%'",
        "logins": f"SELECT * FROM {sql_access.REGION_TABLE}",
        "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'",
    }
    return {k: sorted(tuple(r) for r in conn.execute(text(sql)).all()) for k, sql in q.items()}


def refused(engine: Engine, sql: str, also: str | None = None) -> None:
    with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
        conn.execute(text(sql))
    assert getattr(caught.value.orig, "sqlstate", None) in (INSUFFICIENT_PRIVILEGE, also), sql


def cannot_write(engine: Engine, url: str, login: str) -> None:
    """No table takes a write, no view or table grants one, and nothing can be created."""
    for table, key in KEY_OF.items():
        refused(engine, f"DELETE FROM {table}")
        refused(engine, f"UPDATE {table} SET {key} = {key}")
        refused(engine, f"INSERT INTO {table} SELECT * FROM {table} LIMIT 0")
        refused(engine, f"TRUNCATE {table}")
    for view in sql_access.VIEWS:  # none is updatable (joins, sums) and none grants a write
        for sql in (f"INSERT INTO {view} SELECT * FROM {view} LIMIT 0", f"DELETE FROM {view}"):
            refused(engine, sql, also=NOT_UPDATABLE)
    refused(engine, "CREATE TABLE mine (x int)")
    refused(engine, "CREATE VIEW mine AS SELECT 1 AS x")
    with gateway.transaction(url) as owner:
        granted = owner.execute(text(
            "SELECT c.relname, p.kind FROM pg_class c CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', "
            "'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(kind) WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind IN ('r', 'v') AND has_table_privilege(:login, c.oid, p.kind)"), {"login": login}).all()
        assert granted == []
        assert owner.execute(text("SELECT has_schema_privilege(:login, 'public', 'CREATE')"),
                             {"login": login}).scalar() is False


def test_the_sql_commands_install_list_and_run_on_sqlite(tmp_path, capsys):
    """`risk sql install | queries | run` on the default database, and a later migration keeps the views."""
    from alembic import command

    from risk.cli import main
    from risk.db import gateway, sql_access

    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert main(["sql", "install", "--db", url]) == 0
    assert main(["sql", "queries"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in sql_access.saved_queries())
    assert main(["sql", "run", "biggest_open_cases", "--param", "county=431102000000", "--param", "top=5",
                 "--db", url]) == 0
    assert main(["sql", "run", "biggest_open_cases", "--db", url]) == 2  # its parameters are named
    assert "county" in capsys.readouterr().err
    # an upgrade that has work to do drops the views and installs them again
    cfg = gateway.alembic_config(url)
    with gateway.engine_for(url).begin() as conn:
        sql_access.drop_views(conn)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        sql_access.install_views(conn)
    gateway.migrate(url)
    with gateway.transaction(url) as conn:
        assert sql_access.views_installed(conn)
        assert conn.exec_driver_sql("SELECT count(*) FROM flagged_cases").scalar() == 0
