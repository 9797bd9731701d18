"""What the command modules share: the options every command takes the same way (`--db`, `--out`, …),
where output goes (an export to standard output unless `--out`, messages and progress to standard error),
the settings and the warehouse of a command."""
from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

from risk.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

Db = Annotated[str | None, typer.Option("--db", metavar="URL",
                                        help="数据库URL / database URL (default: RISK_DATABASE_URL, else var/risk.db)")]
Out = Annotated[str | None, typer.Option("--out", metavar="FILE",
                                         help="写入文件而不是标准输出 / write to this file instead of standard output")]
UserId = Annotated[str, typer.Option("--user", metavar="USER")]
CsvOnly = Annotated[Literal["csv"], typer.Option("--format")]
AlertId = Annotated[str, typer.Argument(metavar="ALERT_ID")]


def say(message: str) -> None:
    """A message for the person at the terminal (and the nightly log): standard error."""
    print(message, file=sys.stderr, flush=True)


def write(text: str, out: str | None) -> None:
    """An export: to the file `out` (its folder made), saying so, else to standard output."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        say(f"已写入 / written: {out}")
    else:
        sys.stdout.write(text)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV, no cell a live formula (risk.spreadsheet)."""
    from risk import spreadsheet

    buf = io.StringIO()
    w = spreadsheet.writer(buf, lineterminator="\n")
    w.writerow(list(header))
    w.writerows(rows)
    return buf.getvalue()


def dict_csv(columns: Sequence[str], rows: Iterable[dict]) -> str:
    """Dicts as CSV in `columns`, no cell a live formula (risk.spreadsheet)."""
    from risk import spreadsheet

    buf = io.StringIO()
    w = spreadsheet.dict_writer(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def settings(db: str | None = None, outbox: str | None = None) -> Settings:
    return Settings.load(db=db, outbox=outbox)


@contextmanager
def warehouse(db: str | None) -> Iterator[Connection]:
    """The warehouse of `--db` (else RISK_DATABASE_URL …), migrated, in one transaction."""
    from risk.db import gateway

    url = settings(db).database_url
    gateway.migrate(url)
    with gateway.transaction(url) as conn:
        yield conn


T = TypeVar("T")


def in_warehouse(db: str | None, work: Callable[[Connection], T]) -> T:
    """`work(conn)` in one transaction of the warehouse of `--db`; what it returns."""
    with warehouse(db) as conn:
        return work(conn)


def read_password(prompt: str, from_stdin: bool) -> str:
    """A password from the first line of standard input, or asked for at the terminal without echo."""
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)
