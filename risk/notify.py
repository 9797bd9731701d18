"""Digests: after a nightly run, one message per supervisor with the new and escalated alerts in their area.

In the supervisor's language (Chinese unless they chose English: `risk users set-language`); counts, the top cases by amount, ID numbers and names masked, a link
to each case. Sent through Apprise to the user's email (RISK_SMTP_URL, an Apprise mailto URL without `to`)
and to their notify_url (WeCom, DingTalk, Feishu bots, JSON webhooks); or written to an outbox folder
instead. Every delivery is recorded; a failing channel is retried with backoff and never fails the run.
"""
from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, func, or_, select

from risk.accounts import DEFAULT_LANGUAGE, languages_of
from risk.alerts import yuan
from risk.db.tables import alert, notification, recipient, supervisor
from risk.identity import mask_id, mask_name
from risk.rules import BY_CODE
from risk.workflow import SCOPE_DIGITS, User

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
    language: str = DEFAULT_LANGUAGE


def _last_sent(conn: Connection) -> dict[str, datetime]:
    """user_id → when their last digest was delivered (users never sent one are missing)."""
    return dict(conn.execute(select(notification.c.user_id, func.max(notification.c.sent_at))
                             .where(notification.c.status == "sent").group_by(notification.c.user_id)).all())


WORDS = {
    "zh": {
        "subject": "社保基金风险预警：{n}条待处理",
        "hello": "{user_id}，您好：",
        "summary": "您负责的区域有 {n} 条新预警（其中升级 {escalated} 条），涉及金额 ¥{total}。",
        "largest": "金额最大的几条：",
        "item": "- {title}：{person} {name}，¥{amount}，{link}",
        "all": "全部预警请登录查看：{link}",
        "anomaly": "行为异常",
    },
    "en": {
        "subject": "Fund-risk alerts: {n} to handle",
        "hello": "Hello {user_id},",
        "summary": "Your area has {n} new alerts ({escalated} escalated), ¥{total} at risk.",
        "largest": "The largest:",
        "item": "- {title}: {person} {name}, ¥{amount}, {link}",
        "all": "All your alerts: {link}",
        "anomaly": "Unusual behaviour",
    },
}


def _title(rule_code: str, lang: str) -> str:
    rule = BY_CODE.get(rule_code)
    if rule:
        return rule.title_zh if lang == "zh" else rule.title_en
    return WORDS[lang]["anomaly"] if rule_code == "anomaly" else rule_code


def build(conn: Connection, base_url: str = "") -> list[Digest]:
    """The digests due now: for each supervisor (auditors get none), the alerts raised or escalated to their
    level since their last delivered digest, in the language they chose (Chinese unless English); nobody
    with nothing new gets a message. ID numbers and names of the people concerned are masked.

    A few queries whatever the number of supervisors: the last deliveries, the alerts still new since the
    earliest of them (each sorted once, largest amount first), and the names of the people the digests
    name; each supervisor's alerts are those whose village lies in their area (`SCOPE_DIGITS`)."""
    base = base_url.rstrip("/")
    chosen = languages_of(conn)
    last_sent = _last_sent(conn)
    users = [(User(s.user_id, s.name, s.role, s.region_code), s.email, s.notify_url) for s in conn.execute(
        select(supervisor).where(supervisor.c.role != "auditor").order_by(supervisor.c.user_id))]
    if not users:
        return []
    earliest = min(last_sent.get(u.user_id, datetime.min) for u, _, _ in users)
    pending = sorted(conn.execute(select(alert).where(alert.c.status == "new", or_(
        alert.c.raised_at > earliest, alert.c.escalated_at > earliest))), key=lambda r: (-r.amount_at_risk_cents, r.alert_id))
    in_area: dict[tuple[int, str], list] = defaultdict(list)  # (digits, area code) → its alerts, in order
    for digits in {SCOPE_DIGITS[u.role] for u, _, _ in users}:
        for r in pending:
            if r.village_code:
                in_area[(digits, r.village_code[:digits])].append(r)

    due = []
    for u, email, notify_url in users:
        since = last_sent.get(u.user_id) or datetime.min
        digits = SCOPE_DIGITS[u.role]
        rows = [r for r in in_area.get((digits, u.region_code[:digits]), ())
                if r.raised_at > since or (r.escalated_at is not None and r.escalated_at > since and r.level == u.role)]
        if rows:
            due.append((u, email, notify_url, since, rows))
    named = {r.person_id for *_, rows in due for r in rows[:TOP]}
    names: dict[str, str] = {}
    for chunk in _chunks(sorted(named), 500):
        names.update(conn.execute(select(recipient.c.person_id, recipient.c.name)
                                  .where(recipient.c.person_id.in_(chunk))).all())

    digests = []
    for u, email, notify_url, since, rows in due:
        lang = chosen.get(u.user_id, DEFAULT_LANGUAGE)
        w = WORDS[lang]
        n_escalated = sum(1 for r in rows if r.escalated_at and r.escalated_at > since and r.level == u.role)
        total = sum(r.amount_at_risk_cents for r in rows)
        lines = [w["hello"].format(user_id=u.user_id), "",  # by login name: no person's name in a message
                 w["summary"].format(n=len(rows), escalated=n_escalated, total=yuan(total)), "", w["largest"]]
        lines += [w["item"].format(title=_title(r.rule, lang), person=mask_id(r.person_id),
                                   name=mask_name(names.get(r.person_id, "")), amount=yuan(r.amount_at_risk_cents),
                                   link=f"{base}/alerts/{r.alert_id}") for r in rows[:TOP]]
        lines += ["", w["all"].format(link=f"{base}/alerts")]
        digests.append(Digest(u, email, notify_url, w["subject"].format(n=len(rows)),
                              "\n".join(lines) + "\n", len(rows), lang))
    return digests


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


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
