"""Digests: after a nightly run, one message per supervisor with the new and escalated alerts in their area.

In the supervisor's language (Chinese unless they chose English: `risk users set-language`; the words are
risk/words.py's `digest.*`); counts, the top cases by amount, ID numbers and names masked, a link
to each case. Sent through Apprise to the user's email (RISK_SMTP_URL, an Apprise mailto URL without `to`)
and to their notify_url (WeCom, DingTalk, Feishu bots, JSON webhooks); or written to an outbox folder
instead. Every delivery is recorded; a failing channel is retried with backoff and never fails the run.

Each delivery is recorded as it is made, so that a run stopped while sending leaves a record of what is
left, and nothing waits for the whole send (it held one write transaction, and SQLite's web logins with
it):

1. decide (`build`, `record`: one short transaction): the digests due, one `notification` row per digest
   and channel, status `due`, with the message itself;
2. take (`deliver`, its own short transaction): a row goes from `due` to `sending`, with the sender's
   name (host, process id and start) and time;
3. send it, outside any transaction;
4. mark it `sent` or `failed` (in the short transaction that takes the next one, or ends the send).

A rerun decides nothing twice (a digest's alerts are those raised since the last one decided that is
due, being sent or sent) and sends what is left: the `due` rows of any run. A row left `sending` is the
one message a stopped run had in flight: nobody knows whether it arrived. It is sent again
(at-least-once) as soon as its sender is known to have stopped: a process of this host that no longer
runs, or, on another host, a start more than `SENDING_LEASE` ago. A supervisor may get that one message
twice; none loses the digest that tells them of new alerts, which nothing else would tell them again.
Two senders at once (the nightly and the escalation DAG) each take a row only while it is still due.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, func, or_, select, update

from risk import domain
from risk.accounts import DEFAULT_LANGUAGE, languages_of
from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.db.tables import alert, notification, recipient, supervisor
from risk.detection import registry
from risk.domain import Channel, DeliveryStatus, Role, Status
from risk.identity.numbers import mask_id, mask_name
from risk.settings import Settings
from risk.words import t

log = logging.getLogger(__name__)
TOP = 5
# a delivery in these states tells its alerts: no later digest repeats them
TOLD = (DeliveryStatus.DUE, DeliveryStatus.SENDING, DeliveryStatus.SENT)
SENDING_LEASE = timedelta(minutes=15)  # far longer than one delivery takes (attempts, backoff, timeouts)


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
    """user_id → when their last digest that was delivered, is being sent or is due was decided (users
    never sent one are missing)."""
    return dict(conn.execute(select(notification.c.user_id, func.max(notification.c.created_at))
                             .where(notification.c.status.in_(TOLD)).group_by(notification.c.user_id)).all())




def build(conn: Connection, base_url: str = "") -> list[Digest]:
    """The digests due now: for each supervisor (auditors get none), the alerts raised or escalated to their
    level since their last digest that was delivered or is on its way (`TOLD`), in the language they chose (Chinese unless English); nobody
    with nothing new gets a message. ID numbers and names of the people concerned are masked.

    A few queries whatever the number of supervisors: the last deliveries, the alerts still new since the
    earliest of them (each sorted once, largest amount first), and the names of the people the digests
    name; each supervisor's alerts are those whose village lies in their area (`User.area`)."""
    base = base_url.rstrip("/")
    chosen = languages_of(conn)
    last_sent = _last_sent(conn)
    users = [(User(s.user_id, s.name, s.role, s.region_code), s.email, s.notify_url) for s in conn.execute(
        select(supervisor).where(supervisor.c.role != Role.AUDITOR).order_by(supervisor.c.user_id))]
    if not users:
        return []
    earliest = min(last_sent.get(u.user_id, datetime.min) for u, _, _ in users)
    pending = sorted(conn.execute(select(alert).where(alert.c.status == Status.NEW, or_(
        alert.c.raised_at > earliest, alert.c.escalated_at > earliest))), key=lambda r: (-r.amount_at_risk_cents, r.alert_id))
    in_area: dict[tuple[int, str], list] = defaultdict(list)  # (digits, area) → its alerts, in order
    for digits in {domain.area_digits(u.role) for u, _, _ in users}:
        for r in pending:
            if r.village_code:
                in_area[(digits, r.village_code[:digits])].append(r)

    due = []
    for u, email, notify_url in users:
        since = last_sent.get(u.user_id) or datetime.min
        rows = [r for r in in_area.get((domain.area_digits(u.role), u.area), ())
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
        n_escalated = sum(1 for r in rows if r.escalated_at and r.escalated_at > since and r.level == u.role)
        total = sum(r.amount_at_risk_cents for r in rows)
        lines = [t("digest.hello", lang, user_id=u.user_id), "",  # by login name: no person's name in a message
                 t("digest.summary", lang, n=len(rows), escalated=n_escalated, total=yuan(total)), "",
                 t("digest.largest", lang)]
        lines += [t("digest.item", lang, title=registry.title(r.rule, lang), person=mask_id(r.person_id),
                    name=mask_name(names.get(r.person_id, "")), amount=yuan(r.amount_at_risk_cents),
                    link=f"{base}/alerts/{r.alert_id}") for r in rows[:TOP]]
        lines += ["", t("digest.all", lang, link=f"{base}/alerts")]
        digests.append(Digest(u, email, notify_url, t("digest.subject", lang, n=len(rows)),
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


def record(conn: Connection, digests: list[Digest], outbox: Path | None = None,
           decided_at: datetime | None = None) -> int:
    """Decide: one `due` row per digest and channel (the outbox when there is one, else email when
    RISK_SMTP_URL is set and the supervisor has an address, and their notify_url), with the message. A
    digest with nowhere to go is recorded failed at once, so that someone can see who is never told;
    returns how many were. `decided_at` (`created_at`: the next digest tells what was raised after it)
    is best taken before `build` read the alerts."""
    smtp = _smtp_url()
    now = decided_at or datetime.now()
    rows, nowhere = [], 0
    for d in digests:
        if outbox is not None:
            channels = [Channel.OUTBOX]
        else:
            channels = ([Channel.EMAIL] if d.email and smtp else []) + ([Channel.URL] if d.notify_url else [])
        row = {"user_id": d.user.user_id, "created_at": now, "attempts": 0, "alerts": d.alerts,
               "subject": d.subject, "body": d.body}
        if not channels:
            nowhere += 1
            rows.append({**row, "channel": Channel.NONE, "status": DeliveryStatus.FAILED, "sent_at": now,
                         "error": "没有邮箱或通知地址 / no email or notify_url to send to"})
        rows += [{**row, "channel": kind, "status": DeliveryStatus.DUE, "sent_at": None, "error": None} for kind in channels]
    if rows:
        conn.execute(notification.insert(), rows)
    return nowhere


def deliver(database_url: str, outbox: Path | None = None, attempts: int = 3,
            backoff: float = 1.0) -> dict[str, int]:
    """Send every delivery that is due, this run's and any an earlier run left (see the module's
    docstring): each sent outside any transaction; one short transaction marks the delivery just made
    and takes the next (a commit per message, not two: on PostgreSQL 2.74 s for 1,248 digests before). Returns
    counts by outcome; `resent`: messages a stopped run had in flight, sent again."""
    from risk.db import gateway

    me = _sender()
    counts = {"sent": 0, "failed": 0, "resent": _resume(database_url)}
    smtp = _smtp_url()
    made: tuple | None = None  # the delivery just made, marked in the transaction that takes the next
    while True:
        with gateway.transaction(database_url) as conn:
            if made is not None:
                _mark(conn, me, *made)
            taken = _take(conn, me)
        if taken is None:
            return counts
        row, email, notify_url = taken
        try:
            ok, tries, error = _make(row, email, notify_url, smtp, outbox, attempts, backoff)
        except Exception as e:  # an outbox that cannot be written, say: recorded, never fails the run
            ok, tries, error = False, 1, type(e).__name__
        if not ok:
            log.warning("digest for %s through %s failed after %d attempts: %s", row.user_id, row.channel, tries, error)
        made = (row.id, ok, tries, error)
        counts["sent" if ok else "failed"] += 1


def _smtp_url() -> str:
    """RISK_SMTP_URL, read when digests are decided and when they are sent; empty: no email."""
    return Settings.read("smtp_url").get_secret_value()


def _mark(conn: Connection, me: str, delivery: int, ok: bool, tries: int, error: str | None) -> None:
    """Mark a delivery `me` made sent or failed (unless another sender took it over meanwhile)."""
    marked = conn.execute(update(notification).where(
        notification.c.id == delivery, notification.c.claimed_by == me).values(
        status=DeliveryStatus.SENT if ok else DeliveryStatus.FAILED, sent_at=datetime.now(), attempts=tries, error=error,
        claimed_by=None)).rowcount
    if not marked:
        log.warning("摘要 %d 已被另一发送者接手 / delivery %d was taken over by another sender", delivery, delivery)


def _take(conn: Connection, me: str):
    """The oldest due delivery, now `sending` by `me`, with the supervisor's email and notify_url; None when
    nothing is due. A row another sender took first is passed over."""
    while True:
        row = conn.execute(select(notification).where(notification.c.status == DeliveryStatus.DUE)
                           .order_by(notification.c.id).limit(1)).first()
        if row is None:
            return None
        took = conn.execute(update(notification).where(notification.c.id == row.id,
                                                       notification.c.status == DeliveryStatus.DUE)
                            .values(status=DeliveryStatus.SENDING, started_at=datetime.now(), claimed_by=me)).rowcount
        if took:
            found = conn.execute(select(supervisor.c.email, supervisor.c.notify_url)
                                 .where(supervisor.c.user_id == row.user_id)).first()
            return row, *(found or (None, None))


def _make(row, email: str | None, notify_url: str | None, smtp: str, outbox: Path | None, attempts: int,
          backoff: float) -> tuple[bool, int, str | None]:
    """Make one delivery: (delivered, attempts, error)."""
    body = row.body or ""
    if row.channel == Channel.OUTBOX:
        if outbox is None:
            return False, 0, "没有发件箱文件夹 / no outbox folder to write to"
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / f"{row.user_id}.txt").write_text(f"{row.subject}\n\n{body}", encoding="utf-8")
        return True, 1, None
    if row.channel == Channel.EMAIL:
        if not (smtp and email):
            return False, 0, "没有邮件服务器或邮箱 / RISK_SMTP_URL or the supervisor's email is not set"
        joiner = "&" if "?" in smtp else "?"
        return _send(f"{smtp}{joiner}to={email}", row.subject, body, attempts, backoff)
    if row.channel == Channel.URL and notify_url:
        return _send(notify_url, row.subject, body, attempts, backoff)
    return False, 0, "没有通知地址 / no notify_url to send to"


def _sender() -> str:
    """This process, as a `notification.claimed_by`: host, process id and start time."""
    import psutil

    return f"{socket.gethostname()} {os.getpid()} {psutil.Process().create_time():.2f}"


def _stopped(claimed_by: str | None, started_at: datetime | None) -> bool:
    """Whether the sender that took a delivery has stopped: a process of this host that no longer runs
    (or is another process now), else a start more than SENDING_LEASE ago."""
    import psutil

    host, _, rest = (claimed_by or "").partition(" ")
    pid, _, start = rest.partition(" ")
    if host == socket.gethostname() and pid.isdigit():
        try:
            process = psutil.Process(int(pid))
            return process.status() == psutil.STATUS_ZOMBIE or f"{process.create_time():.2f}" != start
        except psutil.Error:
            return True
    return started_at is None or datetime.now() - started_at > SENDING_LEASE


def _resume(database_url: str) -> int:
    """Put the deliveries a stopped sender left `sending` back to `due` (at-least-once: see the module's
    docstring); how many."""
    from risk.db import gateway

    with gateway.transaction(database_url) as conn:
        left = [r for r in conn.execute(select(notification.c.id, notification.c.user_id, notification.c.channel,
                                               notification.c.claimed_by, notification.c.started_at)
                                        .where(notification.c.status == DeliveryStatus.SENDING))
                if _stopped(r.claimed_by, r.started_at)]
        for r in left:
            conn.execute(update(notification).where(notification.c.id == r.id,
                                                    notification.c.status == DeliveryStatus.SENDING,
                                                    notification.c.claimed_by.is_not_distinct_from(r.claimed_by))
                         .values(status=DeliveryStatus.DUE, claimed_by=None))
            log.warning("摘要发送中断，将重发（可能重复一次）/ a run stopped while sending the digest for %s "
                        "through %s: it is sent again (it may arrive twice)", r.user_id, r.channel)
    return len(left)
