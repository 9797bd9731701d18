"""`risk alerts …`: the alerts as exports and lists, one case as text, the lifecycle (acknowledge …
close, decide, snooze), recoveries and their ledger, escalation, an alert's audit log."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import typer

from risk.cli import display
from risk.cli.common import (
    AlertId,
    CsvOnly,
    Db,
    Out,
    UserId,
    dict_csv,
    in_warehouse,
    say,
    settings,
    warehouse,
    write,
)

app = typer.Typer(help="预警 / alerts", no_args_is_help=True)

REASONS = "lawful | data_error | already_handled | not_found | other"
Comment = Annotated[str | None, typer.Option("--comment")]


@app.command("export", help="导出预警 / export alerts")
def export(
    fmt: Annotated[Literal["csv", "json"], typer.Option("--format")] = "csv",
    include_withdrawn: Annotated[bool, typer.Option(
        "--all", help="也导出因数据更正而撤销的预警 / also alerts withdrawn because later data replaced their facts")] = False,
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.alerts import export as alerts

    with warehouse(db) as conn:
        write(alerts.export(conn, fmt, include_withdrawn=include_withdrawn), out)
    return 0


LISTED = ["预警 alert", "规则 rule", "人员 person", "村 village", "严重程度 severity", "评分 score",
          "涉及金额 amount", "首次发现 first seen", "状态 status"]  # a table of the export's columns, no evidence


@app.command("list", help="某用户范围内的预警 / the alerts in a user's area")
def listing(
    user: UserId,
    fmt: Annotated[Literal["csv", "json"] | None, typer.Option(
        "--format", show_default="csv", help="在终端上不给出时显示为表格 / on a terminal, a table unless given")] = None,
    include_snoozed: Annotated[bool, typer.Option("--include-snoozed")] = False,
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.alerts import export as alerts
    from risk.alerts import lifecycle as workflow

    with warehouse(db) as conn:
        rows = alerts.as_export(workflow.queue(conn, user, include_snoozed=include_snoozed))
    if fmt is None and out is None and (console := display.terminal()):
        display.table(console, f"{user} 范围内的预警 / the alerts in {user}'s area: {len(rows)}", LISTED,
                      ([r["alert_id"], r["rule"], r["person_id"], r["village_code"], r["severity"],
                        "" if r["score"] is None else f"{r['score']:.3f}", r["amount_at_risk"], r["first_seen"],
                        r["status"]] for r in rows))
        return 0
    write(alerts.render(rows, fmt or "csv"), out)
    return 0


def case_text(c: dict) -> str:
    """A case (risk.alerts.case) as `risk alerts show` prints it."""
    from risk.words import word

    lines = [f"预警 alert {c['alert_id']}  {c['title_zh'] + ' / ' + c['title_en'] if c['registered'] else c['rule']}",
             f"状态 status: {word('lifecycle.status', c['status'], 'zh')} ({c['status']})  严重程度 severity: {c['severity']}"
             f"  涉及金额 amount at risk: ¥{c['amount']}  首次发现 first seen: {c['first_seen']}",
             f"人员 person: {c['person']}  {c['name']}  村 village: {c['village_code']}"]
    if c["registered"]:
        lines.append(f"请核实 what to check: {c['explain_zh']}")
    for r in (c["explanation"] or {}).get("reasons", []):
        lines.append(f"  · {r['zh']}")
    lines.append("证据 evidence:")
    for e in c["evidence"]:
        where = f"{e['file']} 第{e['line']}行" if e.get("file") else ""
        lines.append(f"  {'●' if e.get('flagged') else '○'} {e['fact']} {e['id']} {e.get('detail', '')} "
                     f"¥{e.get('amount_at_risk', '')} {where}".rstrip())
    return "\n".join(lines) + "\n"


@app.command("show", help="查看一条预警 / one alert (identity masked unless --unmask, which is logged)")
def show(
    alert_id: AlertId,
    user: UserId,
    unmask: Annotated[bool, typer.Option("--unmask")] = False,
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.alerts import case, lifecycle

    write(case_text(in_warehouse(db, lambda conn: case.case(conn, lifecycle.user(conn, user), alert_id,
                                                             unmasked=unmask))), out)
    return 0


def _act(alert_id: str, user: str, action: str, comment: str | None, reason: str | None, db: str | None) -> int:
    from risk.alerts import lifecycle as workflow
    from risk.words import word

    with warehouse(db) as conn:
        to = workflow.act(conn, user, alert_id, action, comment=comment, reason=reason)
        left = workflow.balance(conn, user, alert_id) if to == "closed" else None
    say(f"{alert_id}: {word('lifecycle.status', to, 'zh')} ({to})")
    if left is not None and left.remaining_cents > 0:  # closed with money not recovered: said, and in the audit log
        say(f"注意 / note: {left.unrecovered_words()}")
    return 0


def _lifecycle_command(name: str, action: str, help_text: str) -> None:
    if name == "dismiss":
        def dismiss(alert_id: AlertId, user: UserId, reason: Annotated[str, typer.Option("--reason", help=REASONS)],
                    comment: Comment = None, db: Db = None) -> int:
            return _act(alert_id, user, action, comment, reason, db)

        app.command(name, help=help_text)(dismiss)
        return

    def command(alert_id: AlertId, user: UserId, comment: Comment = None, db: Db = None) -> int:
        return _act(alert_id, user, action, comment, None, db)

    app.command(name, help=help_text)(command)


for _name, _action, _help in [("ack", "acknowledge", "接收 / acknowledge"),
                              ("investigate", "investigate", "开始核查 / start investigating"),
                              ("confirm", "confirm", "确认属实 / confirm"), ("dismiss", "dismiss", "排除 / dismiss"),
                              ("close", "close", "结案 / close")]:
    _lifecycle_command(_name, _action, _help)


@app.command("decide", help="核查结论：确认属实或排除 / decide: confirmed or dismissed")
def decide(
    alert_id: AlertId,
    user: UserId,
    outcome: Annotated[Literal["confirmed", "dismissed"], typer.Option("--outcome")],
    comment: Annotated[str, typer.Option("--comment")],
    reason: Annotated[str | None, typer.Option("--reason", help=f"排除原因 / for dismissed: {REASONS}")] = None,
    db: Db = None,
) -> int:
    return _act(alert_id, user, "confirm" if outcome == "confirmed" else "dismiss", comment, reason, db)


@app.command("recover", help="登记追回 / record a (partial) recovery")
def recover(
    alert_id: AlertId,
    user: UserId,
    amount: Annotated[str, typer.Option("--amount")],
    on: Annotated[str, typer.Option("--date", help="YYYY-MM-DD")],
    method: Annotated[str, typer.Option("--method", help="bank_return | deduction | repayment | court | other")],
    comment: Comment = None,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="超出涉及金额时须写明原因 / needed when the total would exceed the amount at risk")] = None,
    db: Db = None,
) -> int:
    from risk.alerts import lifecycle as workflow
    from risk.errors import InputError

    try:
        day = date.fromisoformat(on)
    except ValueError:
        raise InputError(f"日期格式应为 年-月-日 / the date must be YYYY-MM-DD, got {on!r}") from None
    after = in_warehouse(db, lambda conn: workflow.record_recovery(conn, user, alert_id, amount, day, method, comment,
                                                                   reason=reason))
    say(f"{alert_id}: 已登记追回 / recovery recorded: {after.words()}")
    return 0


@app.command("reverse", help="冲正一笔登记错误的追回 / reverse a wrong recovery entry")
def reverse(
    alert_id: AlertId,
    user: UserId,
    entry: Annotated[int, typer.Option("--entry", help="要冲正的追回记录序号 / the entry (see `alerts ledger`)")],
    reason: Annotated[str, typer.Option("--reason", help="冲正原因 / why it is reversed")],
    db: Db = None,
) -> int:
    from risk.alerts import lifecycle as workflow

    after = in_warehouse(db, lambda conn: workflow.reverse_recovery(conn, user, alert_id, entry, reason))
    say(f"{alert_id}: 已冲正第 {entry} 笔 / entry {entry} reversed: {after.words()}")
    return 0


@app.command("ledger", help="追回台账：每笔、累计与尚余 / the recovery ledger: entries, totals, what remains")
def ledger(
    user: UserId,
    alert_id: Annotated[str | None, typer.Argument(
        metavar="[ALERT_ID]", help="只看这一条预警 / only this alert (default: every alert in the area)")] = None,
    fmt: CsvOnly = "csv",
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.alerts import lifecycle as workflow

    write(dict_csv(workflow.LEDGER_COLUMNS, in_warehouse(db, lambda conn: workflow.ledger(conn, user, alert_id))), out)
    return 0


@app.command("snooze", help="暂缓（最多180天）/ snooze up to 180 days")
def snooze(
    alert_id: AlertId,
    user: UserId,
    days: Annotated[int, typer.Option("--days")],
    reason: Annotated[str, typer.Option("--reason")],
    db: Db = None,
) -> int:
    from risk.alerts import lifecycle as workflow

    until = in_warehouse(db, lambda conn: workflow.snooze(conn, user, alert_id, days, reason))
    say(f"{alert_id}: 暂缓至 / snoozed until {until}")
    return 0


@app.command("escalate", help="超时未接收的预警升级 / escalate alerts not acknowledged in time")
def escalate(db: Db = None) -> int:
    from risk import pipeline

    result = pipeline.escalate(settings(db))
    say(f"升级 / escalated: {result['escalated']}")
    return 0


HISTORY = ["id", "alert_id", "at", "user_id", "action", "from_status", "to_status", "comment", "details"]


@app.command("history", help="预警的审计记录 / the audit log of one alert")
def history(
    alert_id: AlertId,
    fmt: CsvOnly = "csv",
    out: Out = None,
    db: Db = None,
) -> int:
    from risk.alerts import lifecycle as workflow

    write(dict_csv(HISTORY, in_warehouse(db, lambda conn: workflow.history(conn, alert_id))), out)
    return 0
