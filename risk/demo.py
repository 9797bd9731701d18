"""`make demo`: a synthetic city through the real Airflow DAG on SQLite, then what a person wants to know."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from risk.contract import BY_NAME
from risk.settings import Settings


def main(out: Path, people: int, months: int, seed: int, say: Callable[[str], None]) -> int:
    from risk import synth
    from risk.db import gateway
    from risk.ingest import quality
    from risk.orchestration import local as orchestration

    out = out.resolve()
    started = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    say(f"① 生成合成城市 / generating a synthetic city: {people:,} 人 people, {months} 个月 months → {out}")
    synth.generate(out, people=people, months=months, seed=seed, progress=lambda m: say(f"   {m}"))
    settings = Settings(database_url=f"sqlite:///{out / 'risk.db'}", var_dir=out)
    say("② 经Airflow运行每晚任务 / running the nightly DAG through Airflow (dag.test)")
    outbox = out / "outbox"
    result = orchestration.run_dag_test(landing=out / "landing", db_url=settings.database_url, var_dir=out,
                                        conf_extra={"outbox": str(outbox)}, echo=lambda m: say(f"   {m}"))
    say(f"   DAG 运行状态 / run state: {result.get('state')}")

    with gateway.transaction(settings.database_url) as conn:
        led = quality.ledger(conn)
        reasons = quality.top_reasons(conn)
        report = quality.write_report(conn, settings.reports_dir)
    say("")
    say(f"③ 结果 / results  ({time.monotonic() - started:.0f} s)")
    say(f"   已加载交付日 / delivery days loaded: {led['delivery_day'].nunique()}，文件 files: {len(led)}，"
        f"全部平衡 / all balanced: {'是 yes' if led['balanced'].all() else '否 NO'}")
    say(f"   {'来源 source':<22}{'读入 read':>12}{'入库 loaded':>13}{'拒收 rejected':>15}{'重复 re-delivered':>18}")
    for name, part in led.groupby("source", sort=False):
        label = f"{BY_NAME[name].zh} {name}"
        say(f"   {label:<20}{int(part['rows_read'].sum()):>12,}{int(part['loaded'].sum()):>13,}"
            f"{int(part['rejected'].sum()):>15,}{int(part['redelivered'].sum()):>18,}")
        for reason, n in reasons.get(name, []):
            say(f"      {n:>5} × {reason}")
    say(f"   数据质量报告 / data-quality report: {report}")
    say("")
    _alerts_summary(settings, say)
    digests = sorted(outbox.glob("*.txt"))
    say(f"⑤ 每日摘要 / digests: {len(digests)} 位监督人员 supervisors → {outbox}"
        + (f"（例如 e.g. {digests[0].name}）" if digests else ""))
    say(f"   仓库 / warehouse: {settings.database_url}")
    say(f"   拒收明细 / rejected rows: .venv/bin/risk quality export --db {settings.database_url}")
    accounts_file = demo_accounts(settings, out / "demo-accounts.txt")
    say("⑥ 网页 / web app: make serve → http://127.0.0.1:8000/")
    for line in accounts_file.read_text(encoding="utf-8").splitlines():
        say(f"   {line}")
    return 0 if result.get("state") == "success" else 1


def demo_accounts(settings: Settings, path: Path) -> Path:
    """Passwords for a few demo users, so that the web app can be tried at once: the village supervisor
    with most open alerts, their township and county, the city and the auditor. Random, written to `path`
    (readable by us only); other users get one with `risk users set-password`."""
    import os
    import secrets

    from sqlalchemy import func, select

    from risk import accounts, domain
    from risk.db import gateway
    from risk.db.tables import alert, supervisor
    from risk.domain import Role, Status

    with gateway.transaction(settings.database_url) as conn:
        village = conn.execute(select(alert.c.village_code).where(alert.c.status == Status.NEW)
                               .group_by(alert.c.village_code)
                               .order_by(func.count().desc(), alert.c.village_code)).scalar() or ""
        staff = conn.execute(select(supervisor).order_by(supervisor.c.user_id)).all()
        chosen = []
        for role in Role:
            n = domain.area_digits(role)
            user = next((s for s in staff if s.role == role and s.region_code[:n] == village[:n]), None)
            if user is not None:
                password = secrets.token_urlsafe(9)
                accounts.set_password(conn, user.user_id, password)
                chosen.append(f"{role:<9} {user.user_id:<10} 密码 password: {password}")
    path.write_text("演示账号 / demo accounts\n" + "\n".join(chosen) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return path


def _alerts_summary(settings: Settings, say: Callable[[str], None]) -> None:
    """Alerts by rule, the villages with most at risk, and the total."""
    from sqlalchemy import func, select

    from risk.alerts.export import yuan
    from risk.db import gateway
    from risk.db.tables import alert, region
    from risk.detection import registry
    from risk.domain import Status

    live = alert.c.status != Status.WITHDRAWN
    with gateway.transaction(settings.database_url) as conn:
        by_rule = conn.execute(select(alert.c.rule, func.count(), func.sum(alert.c.amount_at_risk_cents))
                               .where(live).group_by(alert.c.rule).order_by(alert.c.rule)).all()
        by_village = conn.execute(
            select(alert.c.village_code, region.c.name, func.count(), func.sum(alert.c.amount_at_risk_cents))
            .select_from(alert.outerjoin(region, region.c.code == alert.c.village_code)).where(live)
            .group_by(alert.c.village_code, region.c.name)
            .order_by(func.sum(alert.c.amount_at_risk_cents).desc()).limit(10)).all()
    say("④ 预警 / alerts")
    say(f"   {'规则 rule':<34}{'预警 alerts':>12}{'涉及金额 at risk (¥)':>22}")
    for rule, n, cents in by_rule:
        label = f"{registry.title(rule, 'zh')} {rule}" if rule in registry.ENTRY else rule
        say(f"   {label:<32}{n:>12,}{yuan(cents or 0):>22}")
    total_n = sum(n for _, n, _ in by_rule)
    total = sum(c or 0 for _, _, c in by_rule)
    say(f"   {'合计 total':<32}{total_n:>12,}{yuan(total):>22}")
    say("   涉及金额最多的村（社区）/ villages with the most at risk:")
    for code, name, n, cents in by_village:
        say(f"   {code or '-':<14}{(name or '未知 unknown'):<12}{n:>6,} 条 alerts  ¥{yuan(cents or 0):>12}")
