"""The `risk` command (contract §6) on Typer: the root, its groups (one module each), and `main`, the one
place where what a command raises becomes an exit code and a message.

A person never sees a stack trace: a known error (risk.errors) prints its message and exits with its
`exit_code`, an interrupted command exits 130, a file that cannot be read or written 2, anything else 1
with a short line that points at the log file, where the details are."""
from __future__ import annotations

import logging
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from risk.cli import alerts, db, logs, model, privacy, quality, run, scores, serve, sql, synthetic, users
from risk.cli.common import say
from risk.errors import RiskError

log = logging.getLogger("risk")

app = typer.Typer(name="risk", help="社保基金风险监测 / social-security fund risk monitoring", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(run.app)  # run, notify
app.add_typer(synthetic.app)  # generate, evaluate, demo
app.add_typer(serve.app)  # serve
for group in (alerts, users, sql, privacy, scores, model, quality, db):
    app.add_typer(group.app, name=group.__name__.rsplit(".", 1)[-1])


@dataclass
class Invocation:
    """What `main` needs to know of the command it runs, should it fail."""

    command: str = ""
    log_path: Path | None = None


@app.callback()
def root(ctx: typer.Context,
         verbose: Annotated[bool, typer.Option("-v", "--verbose", help="更多日志 / more logging")] = False) -> None:
    invocation: Invocation = ctx.obj
    invocation.command = ctx.invoked_subcommand or ""
    invocation.log_path = logs.setup(verbose)


def main(argv: list[str] | None = None) -> int:
    """Run `risk` with `argv` (default: the process's arguments); return its exit code."""
    from risk import privacy as masking

    masking.install()
    invocation = Invocation()
    command = typer.main.get_command(app)
    try:
        with command.make_context("risk", list(sys.argv[1:] if argv is None else argv), obj=invocation) as ctx:
            return int(command.invoke(ctx) or 0)
    except typer.Exit as e:  # --help
        return e.exit_code
    except typer.TyperException as e:  # the command line itself is wrong: a missing option, a bad value
        from typer import rich_utils

        rich_utils.rich_format_error(e)  # type: ignore[arg-type]
        return getattr(e, "exit_code", 2)
    except RiskError as e:
        say(f"错误 / error: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        say("已中断 / interrupted")
        return 130
    except OSError as e:  # a folder that is read-only or full, a file that is gone
        log.error("`risk %s`: %s\n%s", invocation.command, e, traceback.format_exc(), extra={"file_only": True})
        where = f" {e.filename}" if e.filename else ""
        say(f"错误 / error: 无法读写文件 / cannot read or write{where}: {e.strerror or e}" + _details(invocation))
        return 2
    except Exception as e:  # the details go to the log, not to the person
        log.error("unexpected error in `risk %s`:\n%s", invocation.command, traceback.format_exc(),
                  extra={"file_only": True})
        say(f"内部错误 / internal error: {type(e).__name__}: {masking.redact(str(e)[:300])}" + _details(invocation))
        return 1


def _details(invocation: Invocation) -> str:
    return f"\n详情见 / details in {invocation.log_path}" if invocation.log_path else ""
