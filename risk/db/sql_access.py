"""The auditors' SQL: views over the warehouse (`sql/views/`), saved queries (`sql/queries/`) and, on
PostgreSQL, the read-only roles that may use them.

- Views: one plain `CREATE VIEW` per file, the same SQL on SQLite and PostgreSQL. On PostgreSQL they are
  created `WITH (security_invoker = true)`, so whoever queries them is held to their own privileges and
  row-level security, not to the owner's.
- Roles (PostgreSQL only): two NOLOGIN group roles. `risk_auditor` reads every row; `risk_supervisor`
  members read only the rows of their area: alerts whose village code starts with their region prefix
  (risk.domain.area_prefix: 12 digits village, 9 township, 6 county, 4 city, as `workflow.scope`), and the audit log entries and
  recoveries of those alerts. Both get SELECT on the views and on the tables the views read, nothing
  else. Each SQL login is a LOGIN role in one group, its region in `sql_user_region`, which only the
  owner writes. The policies name the groups, so the table owner (the app's connection) is not
  restricted (row-level security is not FORCEd).

Everything here is idempotent: running it again leaves the same roles, grants, policies and views.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import Connection, text

from risk import domain
from risk.db.dialect import Dialect
from risk.domain import Role
from risk.errors import ConfigError, InputError
from risk.settings import ROOT

log = logging.getLogger(__name__)

VIEWS_DIR = ROOT / "sql" / "views"
QUERIES_DIR = ROOT / "sql" / "queries"
VIEWS = ("flagged_cases", "decisions", "recoveries", "amounts_by_county_month")  # in dependency order

AUDITOR_ROLE = "risk_auditor"
SUPERVISOR_ROLE = "risk_supervisor"
AUDITOR_POLICY = "risk_auditor_reads_all"
SUPERVISOR_POLICY = "risk_supervisor_reads_area"
OWN_REGION_POLICY = "risk_supervisor_reads_own_region"
REGION_TABLE = "sql_user_region"
BASE_TABLES = ("alert", "alert_event", "recovery", "region")  # what the views read

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
REGION_CODE = re.compile(r"^[0-9]{12}$")
SCRAM = re.compile(r"^SCRAM-SHA-256\$[A-Za-z0-9+/=:$]+$")

# A supervisor's area: the alert's village starts with the prefix recorded for the logged-in role.
_IN_AREA = (f"EXISTS (SELECT 1 FROM {REGION_TABLE} u WHERE u.login = current_user "
            "AND starts_with({village}, u.region_prefix))")
_VIA_ALERT = "EXISTS (SELECT 1 FROM alert a WHERE a.alert_id = {table}.alert_id AND " + \
    _IN_AREA.format(village="a.village_code") + ")"
SUPERVISOR_ROWS = {
    "alert": _IN_AREA.format(village="alert.village_code"),
    "alert_event": _VIA_ALERT.format(table="alert_event"),
    "recovery": _VIA_ALERT.format(table="recovery"),
}

_CREATE_VIEW = re.compile(r"\bCREATE\s+VIEW\s+(\w+)\s+AS\b", re.IGNORECASE)


# ---------------------------------------------------------------- views and saved queries

def view_sql(name: str, dialect: Dialect) -> str:
    """The view's CREATE statement for `dialect`."""
    sql = (VIEWS_DIR / f"{name}.sql").read_text(encoding="utf-8")
    found = _CREATE_VIEW.search(sql)
    if found is None or found.group(1) != name:
        raise ConfigError(f"{name}.sql: 须为 CREATE VIEW {name} AS SELECT … / must be CREATE VIEW {name} AS SELECT …")
    return dialect.view_sql(name, sql, found.start(), found.end())


def install_views(conn: Connection) -> None:
    """(Re)create every view of sql/views: dropped newest first, created in dependency order. On
    PostgreSQL each view keeps the SELECT grants it had."""
    files = {p.stem for p in VIEWS_DIR.glob("*.sql")}
    if files != set(VIEWS):
        raise ConfigError(f"sql/views 与 VIEWS 不一致 / sql/views and VIEWS differ: {sorted(files ^ set(VIEWS))}")
    dialect = Dialect.of(conn)
    grantees = {name: _select_grantees(conn, name) for name in VIEWS} if dialect.has_roles else {}
    for statement in dialect.view_functions():
        conn.exec_driver_sql(statement)
    drop_views(conn)
    for name in VIEWS:
        conn.exec_driver_sql(view_sql(name, dialect))
        for role in grantees.get(name, []):  # names from the catalog, quoted as they are
            quoted = '"' + role.replace('"', '""') + '"'
            conn.exec_driver_sql(f"GRANT SELECT ON {name} TO {quoted}")


def install(conn: Connection) -> tuple[str, ...]:
    """`risk sql install`: the views, and on PostgreSQL the auditors' and supervisors' read-only group
    roles; returns the roles granted (none on SQLite)."""
    install_views(conn)
    if not Dialect.of(conn).has_roles:
        return ()
    grant_auditor(conn)
    grant_supervisor(conn)
    return AUDITOR_ROLE, SUPERVISOR_ROLE


def views_installed(conn: Connection) -> bool:
    from sqlalchemy import inspect

    return bool(set(VIEWS) & set(inspect(conn).get_view_names()))


def drop_views(conn: Connection) -> None:
    """Drop the views (newest first), e.g. before a migration alters the tables they read."""
    for name in reversed(VIEWS):
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")


@cache
def saved_queries() -> dict[str, tuple[str, str]]:
    """name → (description, sql): the header comment of each sql/queries file (the question in Chinese
    and English, then its parameters), and the SQL after it, with :name bind parameters."""
    out = {}
    for path in sorted(QUERIES_DIR.glob("*.sql")):
        lines = path.read_text(encoding="utf-8").splitlines()
        n = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
        description = "\n".join(line[2:].strip() for line in lines[:n])
        out[path.stem] = (description, "\n".join(lines[n:]).strip())
    return out


def run_saved(conn: Connection, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Run a saved query with its bind parameters (exactly those it names); its rows as dicts."""
    queries = saved_queries()
    if name not in queries:
        raise InputError(f"没有这个查询 / no saved query {name!r}: {', '.join(queries)}")
    stmt = text(queries[name][1])
    wanted = set(stmt.compile().params)
    if wanted != set(params):
        raise InputError(f"查询 {name} 的参数 / the parameters of {name} are {', '.join(sorted(wanted))}"
                         f" (got {', '.join(sorted(params)) or 'none'})")
    return [dict(r) for r in conn.execute(stmt, dict(params)).mappings()]


# ---------------------------------------------------------------- PostgreSQL roles

def grant_auditor(conn: Connection, role: str = AUDITOR_ROLE) -> None:
    """The auditors' group: every row of the views (and of the tables they read), read-only."""
    _group(conn, role)
    _read_only(conn, role)
    for table in SUPERVISOR_ROWS:
        _policy(conn, AUDITOR_POLICY, table, role, "true")


def grant_supervisor(conn: Connection, role: str = SUPERVISOR_ROLE) -> None:
    """The supervisors' group: the rows of each member's area only, read-only."""
    _group(conn, role)
    _region_table(conn)
    _read_only(conn, role)
    conn.exec_driver_sql(f"GRANT SELECT ON {REGION_TABLE} TO {_ident(role)}")
    _policy(conn, OWN_REGION_POLICY, REGION_TABLE, role, "login = current_user")
    for table, condition in SUPERVISOR_ROWS.items():
        _policy(conn, SUPERVISOR_POLICY, table, role, condition)


def add_sql_user(conn: Connection, login: str, role: str, region_code: str, password: str | None = None, *,
                 auditor_group: str = AUDITOR_ROLE, supervisor_group: str = SUPERVISOR_ROLE) -> None:
    """A LOGIN role for one person: `role` as in supervisors.csv (village, township, county, city or
    auditor; auditors join `auditor_group`, the others `supervisor_group`), `region_code` their 12-digit
    region. Without a password it can only log in where the server trusts it."""
    _require_roles(conn)
    name = _ident(login)
    if role not in tuple(Role):
        raise InputError(f"角色须为 / role must be one of {', '.join(Role)}: {role!r}")
    level = conn.execute(text("SELECT level FROM region WHERE code = :c"), {"c": region_code}).scalar() \
        if REGION_CODE.match(region_code) else None
    if level != Role(role).level:
        raise InputError(f"{region_code} 不是{role}级区划 / is not a known {role} region")
    _region_table(conn)
    existing = conn.execute(text("SELECT rolsuper OR rolbypassrls OR rolcreaterole FROM pg_roles "
                                 "WHERE rolname = :r"), {"r": login}).first()
    ours = conn.execute(text(f"SELECT 1 FROM {REGION_TABLE} WHERE login = :r"), {"r": login}).first()
    if existing is not None and (existing[0] or ours is None):
        raise InputError(f"角色 {login} 已存在且不是本系统的 SQL 用户 / role {login} exists and is not one of ours")
    group, other = (auditor_group, supervisor_group) if role == Role.AUDITOR else (supervisor_group, auditor_group)
    if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :g"), {"g": group}).first():
        raise ConfigError(f"先建立组角色 / grant the group {group} first (grant_auditor, grant_supervisor)")
    if existing is None:
        conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN INHERIT")
    if password is not None:
        conn.exec_driver_sql(f"ALTER ROLE {name} PASSWORD '{_scram(conn, login, password)}'")
    _log_statements(conn, login)
    if _member(conn, login, other):
        conn.exec_driver_sql(f"REVOKE {_ident(other)} FROM {name}")
    if not _member(conn, login, group):
        conn.exec_driver_sql(f"GRANT {_ident(group)} TO {name}")
    conn.execute(text(f"INSERT INTO {REGION_TABLE} (login, level, region_code, region_prefix) "
                      "VALUES (:l, :v, :c, :p) ON CONFLICT (login) DO UPDATE SET level = EXCLUDED.level, "
                      "region_code = EXCLUDED.region_code, region_prefix = EXCLUDED.region_prefix"),
                 {"l": login, "v": role, "c": region_code, "p": domain.area_prefix(region_code, role)})


def drop_sql_user(conn: Connection, login: str) -> None:
    """Remove a login made by add_sql_user (and nothing else)."""
    _require_roles(conn)
    name = _ident(login)
    if conn.execute(text(f"DELETE FROM {REGION_TABLE} WHERE login = :l"), {"l": login}).rowcount:
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")


def _ident(name: str) -> str:
    if not ROLE_NAME.match(name) or name.startswith("pg_"):
        raise InputError(f"名称须为小写字母、数字、下划线 / a role name is [a-z_][a-z0-9_]{{0,62}}: {name!r}")
    return f'"{name}"'


def _require_roles(conn: Connection) -> None:
    if not Dialect.of(conn).has_roles:
        raise ConfigError("SQL 用户和权限只用于 PostgreSQL / SQL users and grants need PostgreSQL")


def _group(conn: Connection, role: str) -> None:
    """A NOLOGIN group role (made if missing; refused if it could log in or bypass security)."""
    _require_roles(conn)
    name = _ident(role)
    row = conn.execute(text("SELECT rolcanlogin OR rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb "
                            "FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if row is None:
        conn.exec_driver_sql(f"CREATE ROLE {name} NOLOGIN")
    elif row[0]:
        raise ConfigError(f"角色 {role} 权限过大，不能作为只读组 / role {role} can log in or has powers: "
                          "not usable as a read-only group")


def _read_only(conn: Connection, role: str) -> None:
    """SELECT on the views and the tables they read; any other table privilege the role had goes."""
    name = _ident(role)
    conn.exec_driver_sql(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA "
                         f"public FROM {name}")
    conn.exec_driver_sql(f"REVOKE CREATE ON SCHEMA public FROM {name}")
    conn.exec_driver_sql(f"GRANT SELECT ON {', '.join((*VIEWS, *BASE_TABLES))} TO {name}")
    for table in SUPERVISOR_ROWS:
        conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")


def _policy(conn: Connection, policy: str, table: str, role: str, condition: str) -> None:
    exists = conn.execute(text("SELECT 1 FROM pg_policies WHERE schemaname = current_schema() "
                               "AND tablename = :t AND policyname = :p"), {"t": table, "p": policy}).first()
    verb = "ALTER POLICY" if exists else "CREATE POLICY"
    command = "" if exists else " FOR SELECT"
    conn.exec_driver_sql(f"{verb} {policy} ON {table}{command} TO {_ident(role)} USING ({condition})")


def _region_table(conn: Connection) -> None:
    """Each SQL login's region; only the owner writes it, a supervisor reads their own row."""
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {REGION_TABLE} (login VARCHAR(63) PRIMARY KEY, level VARCHAR(10) NOT NULL, "
        "region_code VARCHAR(12) NOT NULL, region_prefix VARCHAR(12) NOT NULL)")
    conn.exec_driver_sql(f"ALTER TABLE {REGION_TABLE} ENABLE ROW LEVEL SECURITY")


def logs_statements(conn: Connection, login: str) -> bool:
    """Whether every statement of this login goes to the server's log."""
    return conn.execute(text("SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
                             "WHERE r.rolname = :r AND 'log_statement=all' = ANY(s.setconfig)"),
                        {"r": login}).first() is not None


def _log_statements(conn: Connection, login: str) -> None:
    """The views show whole ID numbers: every statement a database login runs goes to PostgreSQL's log, the
    SQL counterpart of the web app's logged 'show'. Setting it needs a superuser (or GRANT SET ON PARAMETER
    log_statement); without that right the login is still made, and the log says what the DBA must run."""
    statement = f"ALTER ROLE {_ident(login)} SET log_statement = 'all'"
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(statement)
    except Exception:  # insufficient privilege: the rest of the grant stands
        log.warning("could not make the server log %s's statements; a database superuser must run: %s",
                    login, statement)


def _member(conn: Connection, login: str, group: str) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                             "JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = :g AND u.rolname = :u"),
                        {"g": group, "u": login}).first() is not None


def _select_grantees(conn: Connection, view: str) -> list[str]:
    """The roles (other than the owner) that may SELECT from `view`, if it exists."""
    return list(conn.execute(text(
        "SELECT DISTINCT g.rolname FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "JOIN pg_roles g ON g.oid = a.grantee WHERE c.oid = to_regclass(:v) AND a.privilege_type = 'SELECT' "
        "AND a.grantee <> c.relowner ORDER BY g.rolname"), {"v": view}).scalars())


def _scram(conn: Connection, login: str, password: str) -> str:
    """The password as a SCRAM verifier computed here, so the clear password never reaches the server's
    statement log."""
    raw: Any = conn.connection.dbapi_connection
    verifier = raw.pgconn.encrypt_password(password.encode(), login.encode(), b"scram-sha-256").decode()
    if not SCRAM.match(verifier):
        raise ConfigError("无法生成口令校验值 / could not make the password verifier")
    return verifier
