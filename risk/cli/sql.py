"""`risk sql …`: the auditors' SQL: the views, read-only database logins, and the saved queries of
sql/queries."""
from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from risk.cli import display
from risk.cli.common import Db, Out, dict_csv, read_password, say, warehouse, write

app = typer.Typer(help="审计人员的 SQL 视图与查询 / auditors' SQL views and queries", no_args_is_help=True)

WHOLE_NUMBERS = ("top", "year", "limit")  # the saved queries' parameters that are numbers
ABOUT = "说明与参数 what it answers, and its parameters"


@app.command("install", help="建立视图（PostgreSQL 上还有只读角色）/ install the views (and, on PostgreSQL, the "
                             "read-only roles)")
def install(db: Db = None) -> int:
    from risk.db import sql_access

    with warehouse(db) as conn:
        roles = sql_access.install(conn)
    say(f"视图已建立 / views installed: {', '.join(sql_access.VIEWS)}"
        + (f"; 角色 roles {', '.join(roles)}" if roles else ""))
    return 0


@app.command("add-user", help="为某用户建立只读数据库账号 / a read-only database login for a user (PostgreSQL)")
def add_user(
    login: Annotated[str, typer.Argument(metavar="LOGIN")],
    as_user: Annotated[str, typer.Option("--as", metavar="USER_ID",
                                         help="supervisors.csv 中的登录名 / their user_id")],
    ask: Annotated[bool, typer.Option("--password", help="询问密码 / ask for a password")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    db: Db = None,
) -> int:
    from risk.alerts import lifecycle as workflow
    from risk.db import sql_access

    password = None
    if password_stdin or ask:
        password = read_password(f"{login} 的数据库密码 / database password: ", password_stdin)
    with warehouse(db) as conn:
        u = workflow.user(conn, as_user)
        sql_access.add_sql_user(conn, login, u.role, u.region_code, password)
    city = u.role == "auditor"
    say(f"{login}: {u.role} {u.region_code}（{'只读全市' if city else '只读本区域'} / read-only, "
        f"{'the whole city' if city else 'their area'}）")
    return 0


@app.command("drop-user", help="删除数据库账号 / drop a database login")
def drop_user(login: Annotated[str, typer.Argument(metavar="LOGIN")], db: Db = None) -> int:
    from risk.db import sql_access

    with warehouse(db) as conn:
        sql_access.drop_sql_user(conn, login)
    say(f"{login}: 已删除 / dropped")
    return 0


@app.command("queries", help="列出保存的查询 / the saved queries and their parameters")
def queries() -> int:
    from risk.db import sql_access

    saved = sql_access.saved_queries()
    if console := display.terminal():
        display.table(console, f"保存的查询 / saved queries: {len(saved)}", ["查询 query", ABOUT],
                      ([name, description] for name, (description, _) in saved.items()))
        return 0
    for name, (description, _) in saved.items():
        print(f"{name}\n    " + "\n    ".join(description.splitlines()))
    return 0


@app.command("run", help="运行保存的查询 / run a saved query")
def run(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    param: Annotated[list[str], typer.Option("--param", metavar="NAME=VALUE",
                                             help="名称=值 / name=value (repeat)")] = [],  # noqa: B006 (Typer's default)
    fmt: Annotated[Literal["csv", "json"], typer.Option("--format")] = "csv",
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.db import sql_access
    from risk.errors import InputError

    params: dict[str, object] = {}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"参数须为 名称=值 / a parameter is name=value, got {item!r}")
        params[key] = int(value) if value.isdigit() and key in WHOLE_NUMBERS else value
    with warehouse(db) as conn:
        rows = sql_access.run_saved(conn, name, params)
    if fmt == "json":
        write(json.dumps(rows, ensure_ascii=False, default=str, indent=1) + "\n", out)
    else:
        write(dict_csv(list(rows[0]) if rows else [], rows), out)
    return 0
