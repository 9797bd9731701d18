"""The `risk` command (contract §6). Exports go to standard output unless --out; progress goes to stderr.

A person never sees a stack trace: known errors print their message, anything else a short line that
points at the log file where the details are.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from risk.errors import InputError, RiskError
from risk.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("risk")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _write(text: str, out: str | None) -> None:
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        _say(f"已写入 / written: {out}")
    else:
        sys.stdout.write(text)


def _settings(args) -> Settings:
    return Settings.load(db=getattr(args, "db", None), outbox=getattr(args, "outbox", None))


@contextmanager
def _warehouse(args) -> Iterator[Connection]:
    """The warehouse of `--db` (else RISK_DATABASE_URL …), migrated, in one transaction."""
    from risk.db import gateway

    url = _settings(args).database_url
    gateway.migrate(url)
    with gateway.transaction(url) as conn:
        yield conn


# ---------------------------------------------------------------- commands


def cmd_run(args) -> int:
    from risk import pipeline

    settings = _settings(args)
    summary = pipeline.run(settings, args.landing, until=args.until, progress=_say,
                           send_digests=not args.no_digests, wait=args.wait)
    runs = settings.var_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "last-run.json").write_text(json.dumps(asdict(summary), ensure_ascii=False, indent=1), encoding="utf-8")
    steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in summary.steps.items())
    _say(f"完成 / done in {summary.seconds:.1f} s ({steps}); 数据质量报告 / data-quality report: {summary.report}")
    return 0


def cmd_generate(args) -> int:
    from risk import synth

    result = synth.generate(args.out, people=args.people, months=args.months, seed=args.seed, progress=_say)
    _say(json.dumps(result, ensure_ascii=False, default=str)[:2000])
    return 0


def cmd_alerts_export(args) -> int:
    from risk.alerts import export as alerts

    with _warehouse(args) as conn:
        _write(alerts.export(conn, args.format, include_withdrawn=args.all), args.out)
    return 0


def cmd_quality_export(args) -> int:
    from risk.ingest import quality

    with _warehouse(args) as conn:
        _write(quality.export_csv(conn), args.out)
    return 0


def cmd_quality_ledger(args) -> int:
    from risk import spreadsheet
    from risk.ingest import quality

    with _warehouse(args) as conn:
        led = quality.ledger(conn)
    buf = io.StringIO()
    w = spreadsheet.writer(buf, lineterminator="\n")  # a delivered file name is text a spreadsheet could run
    w.writerow(list(led.columns))
    w.writerows(led.itertuples(index=False))
    _write(buf.getvalue(), args.out)
    unbalanced = led[~led["balanced"]]
    if len(unbalanced):
        _say(f"{len(unbalanced)} 个文件不平衡 / files do not balance")
        return 1
    return 0


def cmd_quality_report(args) -> int:
    from risk import pipeline

    _say(f"数据质量报告 / data-quality report: {pipeline.write_quality_report(_settings(args))}")
    return 0


def cmd_quality_suites(args) -> int:
    from risk.ingest import checks

    if args.write:
        for p in checks.write_suites():
            _say(f"written {p}")
        return 0
    stale = checks.stale_suites()
    if stale:
        _say(f"checks/ 与数据约定不一致 / checks/ differs from the contract: {', '.join(stale)}; "
             "run `risk quality suites --write`")
        return 1
    _say("checks/ 与数据约定一致 / checks/ agrees with the contract")
    return 0


def cmd_db_migrate(args) -> int:
    from risk.db import gateway

    settings = _settings(args)
    gateway.migrate(settings.database_url)
    _say(f"数据库已是最新结构 / warehouse schema is up to date: {gateway.safe_url(settings.database_url)}")
    return 0


def cmd_evaluate(args) -> int:
    from risk.detection import evaluate

    with _warehouse(args) as conn:
        scores, wrongs = evaluate.evaluate(conn, Path(args.truth))
        scoring = evaluate.evaluate_scoring(conn, Path(args.truth))
    _write(evaluate.table(scores) + (evaluate.scoring_table(scoring) if scoring else ""), args.out)
    for w in wrongs:
        _say(f"合法情形被误报 / lawful case flagged: {w}")
    perfect = all(s.precision == 1 and s.recall == 1 and s.exact == s.hits for s in scores) and not wrongs
    return 0 if perfect else 1


def _workflow(args, work):

    with _warehouse(args) as conn:
        return work(conn)


def cmd_alerts_list(args) -> int:
    from risk.alerts import export as alerts
    from risk.alerts import lifecycle as workflow

    rows = _workflow(args, lambda conn: alerts.as_export(
        workflow.queue(conn, args.user, include_snoozed=args.include_snoozed)))
    _write(alerts.render(rows, args.format), args.out)
    return 0


def case_text(c: dict) -> str:
    """A case (risk.alerts.case) as `risk alerts show` prints it."""
    from risk.alerts.lifecycle import STATUS_ZH

    lines = [f"预警 alert {c['alert_id']}  {c['title_zh'] + ' / ' + c['title_en'] if c['registered'] else c['rule']}",
             f"状态 status: {STATUS_ZH.get(c['status'], c['status'])} ({c['status']})  严重程度 severity: {c['severity']}"
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


def cmd_alerts_show(args) -> int:
    from risk.alerts import case, lifecycle

    _write(case_text(_workflow(args, lambda conn: case.case(conn, lifecycle.user(conn, args.user), args.alert_id,
                                                            unmasked=args.unmask))), args.out)
    return 0


def cmd_alerts_act(args) -> int:
    from risk.alerts import lifecycle as workflow

    def work(conn):
        to = workflow.act(conn, args.user, args.alert_id, args.action_name, comment=args.comment,
                          reason=getattr(args, "reason", None))
        return to, workflow.balance(conn, args.user, args.alert_id) if to == "closed" else None

    to, left = _workflow(args, work)
    _say(f"{args.alert_id}: {workflow.STATUS_ZH.get(to, to)} ({to})")
    if left is not None and left.remaining_cents > 0:  # closed with money not recovered: said, and in the audit log
        _say(f"注意 / note: {left.unrecovered_words()}")
    return 0


def cmd_alerts_decide(args) -> int:
    args.action_name = "confirm" if args.outcome == "confirmed" else "dismiss"
    return cmd_alerts_act(args)


def cmd_alerts_recover(args) -> int:
    from datetime import date

    from risk.alerts import lifecycle as workflow

    try:
        on = date.fromisoformat(args.date)
    except ValueError:
        raise InputError(f"日期格式应为 年-月-日 / the date must be YYYY-MM-DD, got {args.date!r}") from None
    after = _workflow(args, lambda conn: workflow.record_recovery(
        conn, args.user, args.alert_id, args.amount, on, args.method, args.comment, reason=args.reason))
    _say(f"{args.alert_id}: 已登记追回 / recovery recorded: {after.words()}")
    return 0


def cmd_alerts_reverse(args) -> int:
    from risk.alerts import lifecycle as workflow

    after = _workflow(args, lambda conn: workflow.reverse_recovery(conn, args.user, args.alert_id, args.entry,
                                                                   args.reason))
    _say(f"{args.alert_id}: 已冲正第 {args.entry} 笔 / entry {args.entry} reversed: {after.words()}")
    return 0


def cmd_alerts_ledger(args) -> int:
    from risk import spreadsheet
    from risk.alerts import lifecycle as workflow

    rows = _workflow(args, lambda conn: workflow.ledger(conn, args.user, args.alert_id))
    buf = io.StringIO()
    w = spreadsheet.dict_writer(buf, workflow.LEDGER_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    _write(buf.getvalue(), args.out)
    return 0


def cmd_alerts_snooze(args) -> int:
    from risk.alerts import lifecycle as workflow

    until = _workflow(args, lambda conn: workflow.snooze(conn, args.user, args.alert_id, args.days, args.reason))
    _say(f"{args.alert_id}: 暂缓至 / snoozed until {until}")
    return 0


def cmd_alerts_history(args) -> int:
    from risk import spreadsheet
    from risk.alerts import lifecycle as workflow

    rows = _workflow(args, lambda conn: workflow.history(conn, args.alert_id))
    buf = io.StringIO()
    w = spreadsheet.dict_writer(buf, fieldnames=["id", "alert_id", "at", "user_id", "action", "from_status", "to_status",
                                        "comment", "details"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    _write(buf.getvalue(), args.out)
    return 0


def cmd_alerts_escalate(args) -> int:
    from risk import pipeline

    result = pipeline.escalate(_settings(args))
    _say(f"升级 / escalated: {result['escalated']}")
    return 0


def cmd_notify(args) -> int:
    from risk import pipeline

    result = pipeline.notify(_settings(args), outbox=args.outbox)
    _say(f"摘要 / digests: {result['digests']}，发送 sent {result['sent']}，失败 failed {result['failed']}")
    return 0


def cmd_users_list(args) -> int:
    from risk import accounts, spreadsheet

    with _warehouse(args) as conn:
        users = accounts.listing(conn)
    buf = io.StringIO()
    w = spreadsheet.writer(buf, lineterminator="\n")
    w.writerow(["user_id", "role", "region_code", "language", "email", "notify_url"])
    for u in users:
        w.writerow([u["user_id"], u["role"], u["region_code"], u["language"], "yes" if u["email"] else "",
                    "yes" if u["notify_url"] else ""])
    _write(buf.getvalue(), args.out)
    return 0


def cmd_users_set_language(args) -> int:
    from risk import accounts

    with _warehouse(args) as conn:
        accounts.set_language(conn, args.user_id, args.language)
    _say(f"{args.user_id}: {accounts.LANGUAGES[args.language]}")
    return 0


def cmd_users_set_password(args) -> int:
    import getpass

    from risk import accounts

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"{args.user_id} 的新密码 / new password: ")
        if getpass.getpass("再输入一次 / again: ") != password:
            raise InputError("两次输入的密码不一致 / the two passwords differ")
    with _warehouse(args) as conn:
        accounts.set_password(conn, args.user_id, password)
    _say(f"{args.user_id}: 密码已设置 / password set")
    return 0


def cmd_serve(args) -> int:
    import gc

    import uvicorn

    from risk.db.gateway import safe_url
    from risk.web.app import create_app

    settings = _settings(args)
    _say(f"网页 / web app: http://{args.host}:{args.port}/  (仓库 warehouse: {safe_url(settings.database_url)})")
    app = create_app(settings)
    # what the imports made (pandas, SQLAlchemy, …) lives as long as the server: out of the garbage
    # collector's sight, a full collection no longer walks it (it took 0.3 s here, in the middle of a page)
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                proxy_headers=True, forwarded_allow_ips=args.forwarded_allow_ips)
    return 0


def cmd_sql_install(args) -> int:
    from risk.db import sql_access

    with _warehouse(args) as conn:
        roles = sql_access.install(conn)
    _say(f"视图已建立 / views installed: {', '.join(sql_access.VIEWS)}"
         + (f"; 角色 roles {', '.join(roles)}" if roles else ""))
    return 0


def cmd_sql_add_user(args) -> int:
    import getpass

    from risk.alerts import lifecycle as workflow
    from risk.db import sql_access

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.password:
        password = getpass.getpass(f"{args.login} 的数据库密码 / database password: ")
    with _warehouse(args) as conn:
        u = workflow.user(conn, args.as_user)
        sql_access.add_sql_user(conn, args.login, u.role, u.region_code, password)
    _say(f"{args.login}: {u.role} {u.region_code}（{'只读全市' if u.role == 'auditor' else '只读本区域'} / read-only, "
         f"{'the whole city' if u.role == 'auditor' else 'their area'}）")
    return 0


def cmd_sql_drop_user(args) -> int:
    from risk.db import sql_access

    with _warehouse(args) as conn:
        sql_access.drop_sql_user(conn, args.login)
    _say(f"{args.login}: 已删除 / dropped")
    return 0


def cmd_sql_queries(args) -> int:
    from risk.db import sql_access

    for name, (description, _) in sql_access.saved_queries().items():
        print(f"{name}\n    " + "\n    ".join(description.splitlines()))
    return 0


def cmd_sql_run(args) -> int:
    from risk import spreadsheet
    from risk.db import sql_access

    params: dict[str, object] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"参数须为 名称=值 / a parameter is name=value, got {item!r}")
        params[key] = int(value) if value.isdigit() and key in ("top", "year", "limit") else value
    with _warehouse(args) as conn:
        rows = sql_access.run_saved(conn, args.name, params)
    if args.format == "json":
        _write(json.dumps(rows, ensure_ascii=False, default=str, indent=1) + "\n", args.out)
    else:
        buf = io.StringIO()
        w = spreadsheet.dict_writer(buf, list(rows[0]) if rows else [], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        _write(buf.getvalue(), args.out)
    return 0


def cmd_privacy_scan(args) -> int:
    from risk import privacy

    with _warehouse(args) as conn:
        ids, names = privacy.residents(conn)
    paths = [Path(p) for p in args.paths] or [_settings(args).var_dir / "logs"]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise InputError(f"找不到 / not found: {', '.join(map(str, missing))}")
    found = privacy.scan(paths, ids, names)
    for f in found[:200]:
        print(f)
    if len(found) > 200:
        print(f"… 另有 {len(found) - 200} 处 / {len(found) - 200} more")
    _say(f"检查了 / scanned {', '.join(map(str, paths))}: "
         + (f"{len(found)} 处未脱敏 / unmasked personal information found" if found
            else "未发现未脱敏的身份证号或姓名 / no unmasked ID number or name"))
    return 1 if found else 0


def cmd_model_train(args) -> int:
    from risk import pipeline

    result = pipeline.train_model(_settings(args), as_of=args.as_of)
    _say(f"已训练并启用 / trained and made current: {result['version']} on {result['rows']:,} people, "
         f"window {result['window'][0]} … {result['window'][1]}, sha256 {result['sha256'][:16]}…")
    return 0


def cmd_model_export(args) -> int:
    from risk.scoring import registry

    settings = _settings(args)
    with _warehouse(args) as conn:
        registered = registry.current(conn)
        if registered is None:
            raise InputError("仓库中还没有模型 / no model is registered in this warehouse")
        sha = registry.export(conn, settings, registered, Path(args.out))
    _say(f"已导出 / exported {registered.version} to {args.out}, sha256 {sha} (the warehouse keeps the model: "
         f"this copy is for inspection)")
    return 0


def cmd_model_report(args) -> int:
    from risk import pipeline

    _write(json.dumps(pipeline.model_report(_settings(args)), ensure_ascii=False, indent=1, default=str) + "\n",
           args.out)
    return 0


def cmd_scores_export(args) -> int:
    from risk.scoring import report

    with _warehouse(args) as conn:
        _write(report.scores_csv(conn), args.out)
    return 0


def cmd_demo(args) -> int:
    from risk import demo

    return demo.main(out=Path(args.out), people=args.people, months=args.months, seed=args.seed, say=_say)


# ---------------------------------------------------------------- parser


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="数据库URL / database URL (default: RISK_DATABASE_URL, else var/risk.db)")


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="写入文件而不是标准输出 / write to this file instead of standard output")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="risk", description="社保基金风险监测 / social-security fund risk monitoring")
    ap.add_argument("-v", "--verbose", action="store_true", help="更多日志 / more logging")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="加载所有未加载的交付日，然后检测 / load every pending delivery day, then detect")
    p.add_argument("--landing", required=True, help="落地目录 / landing folder")
    p.add_argument("--until", help="只加载此日（含）之前的交付日 / load delivery days up to this day (YYYY-MM-DD)")
    p.add_argument("--outbox", help="每日摘要写入此目录而不发送 / write the digests to files here instead of sending "
                                    "(default: RISK_OUTBOX)")
    p.add_argument("--no-digests", action="store_true", help="不发送每日摘要 / do not send the digests")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="仓库被另一个运行占用时最多等待的秒数 / wait this long for another run that holds the "
                        "warehouse (default: stop at once, saying who holds it)")
    _db(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("generate", help="生成合成城市数据 / generate a synthetic city landing")
    p.add_argument("--out", required=True)
    p.add_argument("--people", type=int, default=5000)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_generate)

    alerts = sub.add_parser("alerts", help="预警 / alerts").add_subparsers(dest="action", required=True)
    p = alerts.add_parser("export", help="导出预警 / export alerts")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--all", action="store_true",
                   help="也导出因数据更正而撤销的预警 / also alerts withdrawn because later data replaced their facts")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_alerts_export)
    p = alerts.add_parser("list", help="某用户范围内的预警 / the alerts in a user's area")
    p.add_argument("--user", required=True)
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--include-snoozed", action="store_true")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_alerts_list)
    p = alerts.add_parser("show", help="查看一条预警 / one alert (identity masked unless --unmask, which is logged)")
    p.add_argument("alert_id")
    p.add_argument("--user", required=True)
    p.add_argument("--unmask", action="store_true")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_alerts_show)
    for name, help_text in [("ack", "接收 / acknowledge"), ("investigate", "开始核查 / start investigating"),
                            ("confirm", "确认属实 / confirm"), ("dismiss", "排除 / dismiss"), ("close", "结案 / close")]:
        p = alerts.add_parser(name, help=help_text)
        p.add_argument("alert_id")
        p.add_argument("--user", required=True)
        p.add_argument("--comment")
        if name == "dismiss":
            p.add_argument("--reason", required=True, help="lawful | data_error | already_handled | not_found | other")
        _db(p)
        p.set_defaults(func=cmd_alerts_act, action_name="acknowledge" if name == "ack" else name)
    p = alerts.add_parser("decide", help="核查结论：确认属实或排除 / decide: confirmed or dismissed")
    p.add_argument("alert_id")
    p.add_argument("--user", required=True)
    p.add_argument("--outcome", required=True, choices=["confirmed", "dismissed"])
    p.add_argument("--reason", help="排除原因 / for dismissed: lawful | data_error | already_handled | not_found | other")
    p.add_argument("--comment", required=True)
    _db(p)
    p.set_defaults(func=cmd_alerts_decide)
    p = alerts.add_parser("recover", help="登记追回 / record a (partial) recovery")
    p.add_argument("alert_id")
    p.add_argument("--user", required=True)
    p.add_argument("--amount", required=True)
    p.add_argument("--date", required=True, help="YYYY-MM-DD")
    p.add_argument("--method", required=True, help="bank_return | deduction | repayment | court | other")
    p.add_argument("--comment")
    p.add_argument("--reason", help="超出涉及金额时须写明原因 / needed when the total would exceed the amount at risk")
    _db(p)
    p.set_defaults(func=cmd_alerts_recover)
    p = alerts.add_parser("reverse", help="冲正一笔登记错误的追回 / reverse a wrong recovery entry")
    p.add_argument("alert_id")
    p.add_argument("--user", required=True)
    p.add_argument("--entry", type=int, required=True, help="要冲正的追回记录序号 / the entry (see `alerts ledger`)")
    p.add_argument("--reason", required=True, help="冲正原因 / why it is reversed")
    _db(p)
    p.set_defaults(func=cmd_alerts_reverse)
    p = alerts.add_parser("ledger", help="追回台账：每笔、累计与尚余 / the recovery ledger: entries, totals, what "
                                         "remains")
    p.add_argument("alert_id", nargs="?", help="只看这一条预警 / only this alert (default: every alert in the area)")
    p.add_argument("--user", required=True)
    p.add_argument("--format", choices=["csv"], default="csv")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_alerts_ledger)
    p = alerts.add_parser("snooze", help="暂缓（最多180天）/ snooze up to 180 days")
    p.add_argument("alert_id")
    p.add_argument("--user", required=True)
    p.add_argument("--days", type=int, required=True)
    p.add_argument("--reason", required=True)
    _db(p)
    p.set_defaults(func=cmd_alerts_snooze)
    p = alerts.add_parser("escalate", help="超时未接收的预警升级 / escalate alerts not acknowledged in time")
    _db(p)
    p.set_defaults(func=cmd_alerts_escalate)
    p = alerts.add_parser("history", help="预警的审计记录 / the audit log of one alert")
    p.add_argument("alert_id")
    p.add_argument("--format", choices=["csv"], default="csv")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_alerts_history)

    p = sub.add_parser("notify", help="给监督人员发送每日摘要 / send each supervisor their digest")
    p.add_argument("--outbox", help="写入此目录而不发送 / write each message to a file in this folder instead")
    _db(p)
    p.set_defaults(func=cmd_notify)

    us = sub.add_parser("users", help="监督人员账户 / supervisors' accounts").add_subparsers(dest="action",
                                                                                            required=True)
    p = us.add_parser("list", help="列出用户及其语言 / users, their area and language")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_users_list)
    p = us.add_parser("set-language", help="设置摘要和页面的语言 / the language of a user's digests and pages")
    p.add_argument("user_id")
    p.add_argument("language", choices=["zh", "en"])
    _db(p)
    p.set_defaults(func=cmd_users_set_language)

    p = us.add_parser("set-password", help="设置网页登录密码 / set a user's web password (argon2)")
    p.add_argument("user_id")
    p.add_argument("--password-stdin", action="store_true", help="从标准输入读取 / read it from standard input")
    _db(p)
    p.set_defaults(func=cmd_users_set_password)

    p = sub.add_parser("serve", help="启动网页 / serve the web app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                   help="信任其转发头的反向代理 / reverse proxies whose X-Forwarded-* headers are trusted")
    _db(p)
    p.set_defaults(func=cmd_serve)

    sq = sub.add_parser("sql", help="审计人员的 SQL 视图与查询 / auditors' SQL views and queries").add_subparsers(
        dest="action", required=True)
    p = sq.add_parser("install", help="建立视图（PostgreSQL 上还有只读角色）/ install the views (and, on PostgreSQL, "
                                      "the read-only roles)")
    _db(p)
    p.set_defaults(func=cmd_sql_install)
    p = sq.add_parser("add-user", help="为某用户建立只读数据库账号 / a read-only database login for a user (PostgreSQL)")
    p.add_argument("login")
    p.add_argument("--as", dest="as_user", required=True, help="supervisors.csv 中的登录名 / their user_id")
    p.add_argument("--password", action="store_true", help="询问密码 / ask for a password")
    p.add_argument("--password-stdin", action="store_true")
    _db(p)
    p.set_defaults(func=cmd_sql_add_user)
    p = sq.add_parser("drop-user", help="删除数据库账号 / drop a database login")
    p.add_argument("login")
    _db(p)
    p.set_defaults(func=cmd_sql_drop_user)
    p = sq.add_parser("queries", help="列出保存的查询 / the saved queries and their parameters")
    p.set_defaults(func=cmd_sql_queries)
    p = sq.add_parser("run", help="运行保存的查询 / run a saved query")
    p.add_argument("name")
    p.add_argument("--param", action="append", default=[], help="名称=值 / name=value (repeat)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_sql_run)

    pv = sub.add_parser("privacy", help="个人信息保护 / personal information").add_subparsers(dest="action",
                                                                                           required=True)
    p = pv.add_parser("scan", help="检查日志和消息中未脱敏的身份证号和姓名 / find unmasked ID numbers and names "
                                   "in logs and messages (exit 1 if any)")
    p.add_argument("paths", nargs="*", help="文件或目录 / files or folders (default: the log folder)")
    _db(p)
    p.set_defaults(func=cmd_privacy_scan)

    sc = sub.add_parser("scores", help="行为评分 / behaviour scores").add_subparsers(dest="action", required=True)
    p = sc.add_parser("export", help="导出评分 / export scores (person_id, score, model_version, top_features)")
    p.add_argument("--format", choices=["csv"], default="csv")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_scores_export)

    m = sub.add_parser("model", help="行为模型 / behaviour model").add_subparsers(dest="action", required=True)
    p = m.add_parser("train", help="训练并启用新模型 / train a model and make it current")
    p.add_argument("--as-of", help="窗口结束日 / window ends on this day (default: newest loaded day)")
    _db(p)
    p.set_defaults(func=cmd_model_train)
    p = m.add_parser("export", help="把当前模型导出为 skops 文件 / write the current model's skops file (a copy: "
                                    "the warehouse keeps the model)")
    p.add_argument("--out", required=True, help="skops 文件 / the skops file to write")
    _db(p)
    p.set_defaults(func=cmd_model_export)
    p = m.add_parser("report", help="模型、漂移与精度 / the model, drift and precision per version")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_model_report)

    q = sub.add_parser("quality", help="数据质量 / data quality").add_subparsers(dest="action", required=True)
    p = q.add_parser("export", help="导出拒收行 / export rejected rows")
    p.add_argument("--format", choices=["csv"], default="csv")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_quality_export)
    p = q.add_parser("ledger", help="每个文件的台账 / per-file ledger (exit 1 if a file does not balance)")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_quality_ledger)
    p = q.add_parser("report", help="生成数据质量报告 / write the data-quality report")
    _db(p)
    p.set_defaults(func=cmd_quality_report)
    p = q.add_parser("suites", help="检查或重写 checks/ 的期望套件 / check or rewrite the expectation suites")
    p.add_argument("--write", action="store_true")
    p.set_defaults(func=cmd_quality_suites)

    p = sub.add_parser("evaluate", help="与合成城市的真值比较 / compare the alerts with a synthetic city's truth")
    p.add_argument("--truth", required=True, help="truth folder written by `risk generate` (DIR/truth)")
    _out(p)
    _db(p)
    p.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("db", help="数据库 / warehouse").add_subparsers(dest="action", required=True)
    p = d.add_parser("migrate", help="迁移到最新结构 / migrate to the newest schema")
    _db(p)
    p.set_defaults(func=cmd_db_migrate)

    p = sub.add_parser("demo", help="演示：生成城市并经Airflow运行 / demo: a synthetic city through the real DAG")
    p.add_argument("--out", default="var/demo")
    p.add_argument("--people", type=int, default=5000)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo)
    return ap


def _setup_logging(verbose: bool) -> Path | None:
    """The log file in the working folder's logs/ (None when it cannot be written: the messages then go
    to the terminal only, and the command goes on) and the terminal's warnings."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for old in [h for h in root.handlers if getattr(h, "_risk_cli", False)]:  # main() called again in-process
        root.removeHandler(old)
        old.close()
    file = Settings.load().var_dir / "logs" / "risk.log"
    path: Path | None = file
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(file, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fh._risk_cli = True  # type: ignore[attr-defined]
        root.addHandler(fh)
    except OSError as e:
        _say(f"警告 / warning: 无法写入日志 / cannot write the log {file}: {e.strerror or e}")
        path = None
    sh = logging.StreamHandler(sys.stderr)
    sh.setLevel(logging.INFO if verbose else logging.WARNING)
    sh.addFilter(lambda record: not getattr(record, "file_only", False))  # tracebacks: the log file only
    sh.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    sh._risk_cli = True  # type: ignore[attr-defined]
    root.addHandler(sh)
    for noisy in ("great_expectations", "alembic", "py.warnings"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def main(argv: list[str] | None = None) -> int:
    import warnings

    from risk import privacy

    warnings.filterwarnings("ignore")
    privacy.install()
    args = parser().parse_args(argv)
    log_path = _setup_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except RiskError as e:
        _say(f"错误 / error: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        _say("已中断 / interrupted")
        return 130
    except OSError as e:  # a folder that is read-only or full, a file that is gone
        log.error("`risk %s`: %s\n%s", args.command, e, traceback.format_exc(), extra={"file_only": True})
        where = f" {e.filename}" if e.filename else ""
        _say(f"错误 / error: 无法读写文件 / cannot read or write{where}: {e.strerror or e}"
             + (f"\n详情见 / details in {log_path}" if log_path else ""))
        return 2
    except Exception as e:  # the details go to the log, not to the person
        log.error("unexpected error in `risk %s`:\n%s", args.command, traceback.format_exc(), extra={"file_only": True})
        _say(f"内部错误 / internal error: {type(e).__name__}: {privacy.redact(str(e)[:300])}"
             + (f"\n详情见 / details in {log_path}" if log_path else ""))
        return 1


if __name__ == "__main__":
    sys.exit(main())
