"""`risk users …`: the supervisors' accounts: who they are, their language, their web password."""
from __future__ import annotations

from typing import Annotated, Literal

import typer

from risk.cli import display
from risk.cli.common import Db, Out, csv_text, read_password, say, warehouse, write
from risk.domain import Language

app = typer.Typer(help="监督人员账户 / supervisors' accounts", no_args_is_help=True)

COLUMNS = [("user_id", "用户 user"), ("role", "角色 role"), ("region_code", "区域 area"), ("language", "语言 language"),
           ("email", "邮件 email"), ("notify_url", "通知地址 webhook")]


@app.command("list", help="列出用户及其语言 / users, their area and language")
def listing(out: Out = None, db: Db = None) -> int:
    from risk import accounts

    with warehouse(db) as conn:
        users = accounts.listing(conn)
    rows = [[u["user_id"], u["role"], u["region_code"], u["language"], "yes" if u["email"] else "",
             "yes" if u["notify_url"] else ""] for u in users]
    if out is None and (console := display.terminal()):
        display.table(console, f"监督人员 / supervisors: {len(rows)}", [heading for _, heading in COLUMNS], rows)
        return 0
    write(csv_text([name for name, _ in COLUMNS], rows), out)
    return 0


@app.command("set-language", help="设置摘要和页面的语言 / the language of a user's digests and pages")
def set_language(
    user_id: Annotated[str, typer.Argument(metavar="USER_ID")],
    language: Annotated[Literal["zh", "en"], typer.Argument(metavar="{zh,en}")],
    db: Db = None,
) -> int:
    from risk import accounts

    with warehouse(db) as conn:
        accounts.set_language(conn, user_id, language)
    say(f"{user_id}: {accounts.LANGUAGES[Language(language)]}")
    return 0


@app.command("set-password", help="设置网页登录密码 / set a user's web password (argon2)")
def set_password(
    user_id: Annotated[str, typer.Argument(metavar="USER_ID")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="从标准输入读取 / read it from standard input")] = False,
    db: Db = None,
) -> int:
    import getpass

    from risk import accounts
    from risk.errors import InputError

    password = read_password(f"{user_id} 的新密码 / new password: ", password_stdin)
    if not password_stdin and getpass.getpass("再输入一次 / again: ") != password:
        raise InputError("两次输入的密码不一致 / the two passwords differ")
    with warehouse(db) as conn:
        accounts.set_password(conn, user_id, password)
    say(f"{user_id}: 密码已设置 / password set")
    return 0
