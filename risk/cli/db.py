"""`risk db migrate`: the warehouse's schema."""
from __future__ import annotations

import typer

from risk.cli.common import Db, say, settings

app = typer.Typer(help="数据库 / warehouse", no_args_is_help=True)


@app.command("migrate", help="迁移到最新结构 / migrate to the newest schema")
def migrate(db: Db = None) -> int:
    from risk.db import gateway

    url = settings(db).database_url
    gateway.migrate(url)
    say(f"数据库已是最新结构 / warehouse schema is up to date: {gateway.safe_url(url)}")
    return 0
