"""Digests: after a nightly run, one message per supervisor with the new and escalated alerts in their area.

Chinese first with English beside it; counts, the top cases by amount, ID numbers and names masked, a link
to each case. Sent through Apprise to the user's email (RISK_SMTP_URL, an Apprise mailto URL without `to`)
and to their notify_url (WeCom, DingTalk, Feishu bots, JSON webhooks); or written to an outbox folder
instead. Every delivery is recorded; a failing channel is retried with backoff and never fails the run.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, and_, func, or_, select

from risk.alerts import yuan
from risk.db.tables import alert, notification, recipient, supervisor
from risk.identity import mask_id, mask_name
from risk.rules import BY_CODE
from risk.workflow import User, scope

log = logging.getLogger(__name__)
TOP = 5


@dataclass
class Digest:
    user: User
    email: str | None
    notify_url: str | None
    subject: str
    body: str
    alerts: int


def _since(conn: Connection, user_id: str) -> datetime | None:
    return conn.execute(select(func.max(notification.c.sent_at)).where(and_(
        notification.c.user_id == user_id, notification.c.status == "sent"))).scalar()


def build(conn: Connection, base_url: str = "") -> list[Digest]:
    """The digests due now: for each supervisor (auditors get none), the alerts raised or escalated to their
    level since their last delivered digest; nobody with nothing new gets a message."""
    digests = []
    for s in conn.execute(select(supervisor).where(supervisor.c.role != "auditor").order_by(supervisor.c.user_id)):
        u = User(s.user_id, s.name, s.role, s.region_code)
        since = _since(conn, u.user_id) or datetime.min
        new = alert.c.raised_at > since
        escalated = and_(alert.c.escalated_at > since, alert.c.level == u.role)
        rows = conn.execute(select(alert).where(and_(scope(u), alert.c.status == "new", or_(new, escalated)))
                            .order_by(alert.c.amount_at_risk_cents.desc(), alert.c.alert_id)).all()
        if not rows:
            continue
        names = dict(conn.execute(select(recipient.c.person_id, recipient.c.name).where(
            recipient.c.person_id.in_([r.person_id for r in rows[:TOP]]))).all())
        n_escalated = sum(1 for r in rows if r.escalated_at and r.escalated_at > since and r.level == u.role)
        total = sum(r.amount_at_risk_cents for r in rows)
        subject = f"社保基金风险预警：{len(rows)}条待处理 / {len(rows)} fund-risk alerts to handle"
        lines = [f"{u.name}（{u.user_id}）您好：", "",
                 f"您负责的区域有 {len(rows)} 条新预警（其中升级 {n_escalated} 条），涉及金额 ¥{yuan(total)}。",
                 f"Your area has {len(rows)} new alerts ({n_escalated} escalated), ¥{yuan(total)} at risk.", "",
                 "金额最大的几条 / the largest:"]
        for r in rows[:TOP]:
            rule = BY_CODE.get(r.rule)
            title = f"{rule.title_zh} / {rule.title_en}" if rule else ("行为异常 / unusual behaviour" if r.rule == "anomaly"
                                                                       else r.rule)
            lines.append(f"- {title}：{mask_id(r.person_id)} {mask_name(names.get(r.person_id, ''))}，"
                         f"¥{yuan(r.amount_at_risk_cents)}，{base_url.rstrip('/')}/alerts/{r.alert_id}")
        digests.append(Digest(u, s.email, s.notify_url, subject, "\n".join(lines) + "\n", len(rows)))
    return digests


def _send(url: str, subject: str, body: str, attempts: int, backoff: float) -> tuple[bool, int, str | None]:
    import apprise

    error = None
    for attempt in range(1, attempts + 1):
        channel = apprise.Apprise()
        if not channel.add(url):
            return False, attempt, "通知地址无效 / not a valid notification URL"
        try:
            if channel.notify(title=subject, body=body):
                return True, attempt, None
            error = "发送失败 / the channel refused the message"
        except Exception as e:  # a broken channel must never fail the run
            error = f"{type(e).__name__}"
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    return False, attempts, error


def deliver(conn: Connection, digests: list[Digest], outbox: Path | None = None, attempts: int = 3,
            backoff: float = 1.0) -> dict[str, int]:
    """Send (or write to `outbox`) every digest; record each delivery; return counts by status."""
    smtp = os.environ.get("RISK_SMTP_URL", "")
    counts = {"sent": 0, "failed": 0}
    for d in digests:
        channels: list[tuple[str, str | None]] = []
        if outbox is not None:
            outbox.mkdir(parents=True, exist_ok=True)
            (outbox / f"{d.user.user_id}.txt").write_text(f"{d.subject}\n\n{d.body}", encoding="utf-8")
            channels.append(("outbox", None))
        else:
            if d.email and smtp:
                joiner = "&" if "?" in smtp else "?"
                channels.append(("email", f"{smtp}{joiner}to={d.email}"))
            if d.notify_url:
                channels.append(("url", d.notify_url))
        if not channels:  # recorded, so that someone can see who is never told
            conn.execute(notification.insert().values(
                user_id=d.user.user_id, channel="none", sent_at=datetime.now(), status="failed", attempts=0,
                alerts=d.alerts, subject=d.subject, error="没有邮箱或通知地址 / no email or notify_url to send to"))
            counts["failed"] += 1
        for kind, url in channels:
            ok, tries, error = (True, 1, None) if url is None else _send(url, d.subject, d.body, attempts, backoff)
            if not ok:
                log.warning("digest for %s through %s failed after %d attempts: %s", d.user.user_id, kind, tries, error)
            conn.execute(notification.insert().values(
                user_id=d.user.user_id, channel=kind, sent_at=datetime.now(), status="sent" if ok else "failed",
                attempts=tries, alerts=d.alerts, subject=d.subject, error=error))
            counts["sent" if ok else "failed"] += 1
    return counts
