"""The alert lifecycle, who may see and act on which alert, and the append-only audit log.

    new → acknowledged → investigating → confirmed | dismissed (reason code + comment)
    confirmed → recovery recorded (amount, date, method; several partial) → closed

Every change goes to `alert_event` (who, when, from, to, comment); nothing is ever deleted. Scope is
decided here and only here: a village supervisor sees the alerts of their village, township and county
staff every village under them, city staff and auditors the whole city; auditors change nothing.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from risk.db.tables import alert, alert_event, recovery, supervisor
from risk.errors import RiskError
from risk.settings import DEFAULT_SLA_DAYS

OPEN = ("new", "acknowledged", "investigating")
DISMISS_REASONS = {
    "lawful": "情形合法（属于法定例外）/ lawful: a legal exception applies",
    "data_error": "数据有误（源数据错误）/ the source data is wrong",
    "already_handled": "已另行处理 / already handled elsewhere",
    "not_found": "核实无此情况 / checked: nothing wrong found",
    "other": "其他（见说明）/ other (see comment)",
}
RECOVERY_METHODS = ("bank_return", "deduction", "repayment", "court", "other")
MAX_SNOOZE_DAYS = 180

# action -> (statuses it may start from, status it leaves)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": (("new",), "acknowledged"),
    "investigate": (("acknowledged",), "investigating"),
    "confirm": (("investigating",), "confirmed"),
    "dismiss": (("acknowledged", "investigating"), "dismissed"),
    "close": (("confirmed",), "closed"),
}
ACTION_WORDS = {"acknowledge": ("接收", "acknowledged"), "investigate": ("开始核查", "investigated"),
                "confirm": ("确认", "confirmed"), "dismiss": ("排除", "dismissed"), "close": ("结案", "closed")}
STATUS_ZH = {"new": "新", "acknowledged": "已接收", "investigating": "核查中", "confirmed": "已确认",
             "dismissed": "已排除", "closed": "已结案", "withdrawn": "已撤销"}


class NotAllowed(RiskError):
    """The user may not see or do this; the message says why in plain words."""


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    role: str  # village | township | county | city | auditor
    region_code: str

    @property
    def read_only(self) -> bool:
        return self.role == "auditor"


def user(conn: Connection, user_id: str) -> User:
    row = conn.execute(select(supervisor).where(supervisor.c.user_id == user_id)).first()
    if row is None:
        raise NotAllowed(f"没有这个用户 / no such user: {user_id}")
    return User(row.user_id, row.name, row.role, row.region_code)


# how many leading digits of a 12-digit region code a role's area shares with the villages in it
SCOPE_DIGITS = {"village": 12, "township": 9, "county": 6, "city": 4, "auditor": 4}


def in_area(code_column: ColumnElement[str], u: User) -> ColumnElement[bool]:
    """`code_column` (a village code) lies in `u`'s area."""
    return begins_with(code_column, u.region_code[:SCOPE_DIGITS[u.role]])


def begins_with(code_column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """The code begins with `prefix`, said as the range of codes that do (codes are digits, compared
    character by character), which an index on the column finds at once: a village's, a township's or a
    county's alerts are a few among the city's."""
    following = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the first code past those that begin with prefix
    return and_(code_column >= prefix, code_column < following)


def scope(u: User) -> ColumnElement[bool]:
    """The alerts `u` may see, as a condition on the alert's village (the one place scope is decided)."""
    return in_area(alert.c.village_code, u)


def visible(conn: Connection, u: User, alert_id: str):
    row = conn.execute(select(alert).where(and_(alert.c.alert_id == alert_id, scope(u)))).first()
    if row is None:  # the same answer whether it does not exist or is someone else's
        raise NotAllowed(f"找不到预警或无权查看 / no alert {alert_id} in your area")
    return row


def log_event(conn: Connection, alert_id: str, user_id: str, action: str, before: str | None,
              after: str | None, comment: str | None = None, details: dict | None = None) -> None:
    conn.execute(alert_event.insert().values(
        alert_id=alert_id, at=datetime.now(), user_id=user_id, action=action, from_status=before,
        to_status=after, comment=comment, details=json.dumps(details, ensure_ascii=False) if details else None))


def act(conn: Connection, user_id: str, alert_id: str, action: str, comment: str | None = None,
        reason: str | None = None) -> str:
    """Move an alert along the lifecycle; return its new status. Refuses with a clear message."""
    u = user(conn, user_id)
    if u.read_only:
        raise NotAllowed("审计人员只能查看，不能修改 / auditors can look but not change anything")
    row = visible(conn, u, alert_id)
    if action not in TRANSITIONS:
        raise NotAllowed(f"没有这个操作 / no such action: {action}")
    allowed_from, to = TRANSITIONS[action]
    if row.status not in allowed_from:
        starts = "、".join(STATUS_ZH.get(s, s) for s in allowed_from)
        zh, en = ACTION_WORDS[action]
        raise NotAllowed(f"预警当前为「{STATUS_ZH.get(row.status, row.status)}」，只有「{starts}」的预警可以{zh} / "
                         f"the alert is {row.status}; only {', '.join(allowed_from)} alerts can be {en}")
    if action in ("confirm", "dismiss") and not (comment or "").strip():
        raise NotAllowed("确认或排除须填写说明 / confirming or dismissing needs a comment")
    if action == "dismiss" and reason not in DISMISS_REASONS:
        raise NotAllowed(f"排除须选择原因 / dismissing needs a reason: {', '.join(DISMISS_REASONS)}")
    conn.execute(update(alert).where(alert.c.alert_id == alert_id).values(status=to))
    log_event(conn, alert_id, u.user_id, action, row.status, to, comment,
              {"reason": reason} if reason else None)
    return to


def record_recovery(conn: Connection, user_id: str, alert_id: str, amount: str, on: date, method: str,
                    comment: str | None = None) -> Decimal:
    """A (partial) recovery of a confirmed alert; returns the total recovered so far."""
    u = user(conn, user_id)
    if u.read_only:
        raise NotAllowed("审计人员只能查看，不能修改 / auditors can look but not change anything")
    row = visible(conn, u, alert_id)
    if row.status != "confirmed":
        raise NotAllowed(f"只有已确认的预警可以登记追回 / only confirmed alerts take recoveries (this one is {row.status})")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise NotAllowed(f"金额格式不对 / not an amount: {amount}") from None
    if value <= 0 or value != value.quantize(Decimal("0.01")):
        raise NotAllowed(f"金额须大于0且最多两位小数 / the amount must be positive with at most two decimals: {amount}")
    if method not in RECOVERY_METHODS:
        raise NotAllowed(f"追回方式 / method must be one of {', '.join(RECOVERY_METHODS)}")
    value = value.quantize(Decimal("0.01"))
    cents = int(value * 100)
    conn.execute(recovery.insert().values(alert_id=alert_id, amount_cents=cents, recovered_on=on, method=method,
                                          recorded_by=u.user_id, recorded_at=datetime.now()))
    log_event(conn, alert_id, u.user_id, "recover", row.status, row.status, comment,
              {"amount": str(value), "recovered_on": on.isoformat(), "method": method})
    total = conn.execute(select(func.coalesce(func.sum(recovery.c.amount_cents), 0))
                         .where(recovery.c.alert_id == alert_id)).scalar()
    return (Decimal(int(total or 0)) / 100).quantize(Decimal("0.01"))


def snooze(conn: Connection, user_id: str, alert_id: str, days: int, reason: str, today: date | None = None) -> date:
    u = user(conn, user_id)
    if u.read_only:
        raise NotAllowed("审计人员只能查看，不能修改 / auditors can look but not change anything")
    row = visible(conn, u, alert_id)
    if row.status not in OPEN:
        raise NotAllowed(f"只有未处理完的预警可以暂缓 / only open alerts can be snoozed (this one is {row.status})")
    if not 1 <= days <= MAX_SNOOZE_DAYS:
        raise NotAllowed(f"暂缓天数须在1到{MAX_SNOOZE_DAYS}之间 / snooze 1 to {MAX_SNOOZE_DAYS} days")
    if not (reason or "").strip():
        raise NotAllowed("暂缓须填写原因 / snoozing needs a reason")
    until = (today or date.today()) + timedelta(days=days)
    conn.execute(update(alert).where(alert.c.alert_id == alert_id).values(snoozed_until=until))
    log_event(conn, alert_id, u.user_id, "snooze", row.status, row.status, reason, {"until": until.isoformat()})
    return until


def queue(conn: Connection, user_id: str, include_snoozed: bool = False, today: date | None = None):
    """Exactly the alerts in the user's scope (not withdrawn), snoozed ones left out unless asked."""
    u = user(conn, user_id)
    q = select(alert).where(and_(scope(u), alert.c.status != "withdrawn"))
    if not include_snoozed:
        q = q.where(or_(alert.c.snoozed_until.is_(None), alert.c.snoozed_until <= (today or date.today())))
    return conn.execute(q.order_by(alert.c.amount_at_risk_cents.desc(), alert.c.alert_id)).all()


LEVELS = ("village", "township", "county")  # 三级管理: who must act, one level up at each missed deadline


def escalate(conn: Connection, now: datetime | None = None, sla_days: Mapping[str, int] | None = None) -> list[dict]:
    """Alerts nobody acknowledged within their SLA move up one level (village → township → county); the
    clock restarts at each move. Snoozed alerts wait. Every move is logged; returns what moved."""
    now = now or datetime.now()
    sla = {**DEFAULT_SLA_DAYS, **(sla_days or {})}
    moved = []
    rows = conn.execute(select(alert).where(and_(alert.c.status == "new", alert.c.level != LEVELS[-1]))).all()
    for a in rows:
        if a.snoozed_until is not None and a.snoozed_until > now.date():
            continue
        since = a.escalated_at or a.raised_at
        if since is None or now - since < timedelta(days=sla.get(a.severity, 7)):
            continue
        to = LEVELS[LEVELS.index(a.level) + 1] if a.level in LEVELS else LEVELS[1]
        conn.execute(update(alert).where(alert.c.alert_id == a.alert_id).values(level=to, escalated_at=now))
        log_event(conn, a.alert_id, "system", "escalate", a.status, a.status,
                  f"{sla.get(a.severity, 7)}天内无人接收，升级至{to} / not acknowledged within "
                  f"{sla.get(a.severity, 7)} days: moved up to {to}", {"from_level": a.level, "to_level": to})
        moved.append({"alert_id": a.alert_id, "from": a.level, "to": to, "village_code": a.village_code})
    return moved


def history(conn: Connection, alert_id: str) -> list[dict]:
    return [dict(r) for r in conn.execute(select(alert_event).where(alert_event.c.alert_id == alert_id)
                                          .order_by(alert_event.c.id)).mappings()]
