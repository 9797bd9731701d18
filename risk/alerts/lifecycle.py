"""The alert lifecycle, who may see and act on which alert, and the append-only audit log.

    new → acknowledged → investigating → confirmed | dismissed (reason code + comment)
    confirmed → recovery recorded (amount, date, method; several partial) → closed

Money entries are checked: a recovery is dated no later than today (in Asia/Shanghai), one that would take
the recovered total past the amount at risk needs a stated reason (kept in the audit log), a wrong entry is
undone by a reversing entry (the opposite amount, naming the entry it reverses, with a reason: the ledger is
append-only and its sum is always what was recovered), and closing a case with money still to recover is
said (the web app asks the user to confirm it, and the audit log keeps what was left).

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
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from risk import domain
from risk.alerts.export import yuan
from risk.db.tables import alert, alert_event, recovery, supervisor
from risk.domain import ESCALATION, OPEN, Action, Method, Role, Status, begins_with
from risk.errors import NotAllowed
from risk.orchestration.runs import BUSINESS_TZ
from risk.settings import DEFAULT_SLA_DAYS
from risk.words import both, t, word

DISMISS_REASONS = {
    "lawful": "情形合法（属于法定例外）/ lawful: a legal exception applies",
    "data_error": "数据有误（源数据错误）/ the source data is wrong",
    "already_handled": "已另行处理 / already handled elsewhere",
    "not_found": "核实无此情况 / checked: nothing wrong found",
    "other": "其他（见说明）/ other (see comment)",
}
RECOVERY_METHODS = tuple(Method)
MAX_SNOOZE_DAYS = 180

# action -> (statuses it may start from, status it leaves)
TRANSITIONS: dict[Action, tuple[tuple[Status, ...], Status]] = {
    Action.ACKNOWLEDGE: ((Status.NEW,), Status.ACKNOWLEDGED),
    Action.INVESTIGATE: ((Status.ACKNOWLEDGED,), Status.INVESTIGATING),
    Action.CONFIRM: ((Status.INVESTIGATING,), Status.CONFIRMED),
    Action.DISMISS: ((Status.ACKNOWLEDGED, Status.INVESTIGATING), Status.DISMISSED),
    Action.CLOSE: ((Status.CONFIRMED,), Status.CLOSED),
}


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    role: str  # a risk.domain.Role
    region_code: str

    @property
    def read_only(self) -> bool:
        return self.role == Role.AUDITOR

    @property
    def area(self) -> str:
        """The digits every village code in the user's area begins with."""
        return domain.area_prefix(self.region_code, self.role)


def user(conn: Connection, user_id: str) -> User:
    row = conn.execute(select(supervisor).where(supervisor.c.user_id == user_id)).first()
    if row is None:
        raise NotAllowed(f"没有这个用户 / no such user: {user_id}")
    return User(row.user_id, row.name, row.role, row.region_code)


def in_area(code_column: ColumnElement[str], u: User) -> ColumnElement[bool]:
    """`code_column` (a village code) lies in `u`'s area."""
    return begins_with(code_column, u.area)


def scope(u: User) -> ColumnElement[bool]:
    """The alerts `u` may see, as a condition on the alert's village (the one place scope is decided)."""
    return in_area(alert.c.village_code, u)


def visible(conn: Connection, u: User, alert_id: str):
    row = conn.execute(select(alert).where(and_(alert.c.alert_id == alert_id, scope(u)))).first()
    if row is None:  # the same answer whether it does not exist or is someone else's
        raise NotAllowed(f"找不到预警或无权查看 / no alert {alert_id} in your area")
    return row


SYSTEM = "system"  # the audit log's user for what the system does by itself


def log_event(conn: Connection, alert_id: str, user_id: str, action: str, before: str | None,
              after: str | None, comment: str | None = None, details: dict | None = None) -> None:
    conn.execute(alert_event.insert().values(
        alert_id=alert_id, at=datetime.now(), user_id=user_id, action=action, from_status=before,
        to_status=after, comment=comment, details=json.dumps(details, ensure_ascii=False) if details else None))


def act(conn: Connection, user_id: str, alert_id: str, action: str, comment: str | None = None,
        reason: str | None = None, unrecovered_ok: bool = True) -> str:
    """Move an alert along the lifecycle; return its new status. Refuses with a clear message. Closing a case
    with money still to recover keeps what was left in the audit log; with `unrecovered_ok=False` it is refused
    instead, saying how much (the web app passes False until the user has confirmed it)."""
    u = user(conn, user_id)
    if u.read_only:
        raise NotAllowed("审计人员只能查看，不能修改 / auditors can look but not change anything")
    row = visible(conn, u, alert_id)
    if action not in TRANSITIONS:
        raise NotAllowed(f"没有这个操作 / no such action: {action}")
    move = Action(action)
    allowed_from, to = TRANSITIONS[move]
    if row.status not in allowed_from:
        raise NotAllowed(both(
            "lifecycle.wrong_status", status=lambda lang: word("lifecycle.status", row.status, lang),
            allowed=lambda lang: t("lifecycle.list_separator", lang).join(
                word("lifecycle.status", s, lang) for s in allowed_from),
            action=lambda lang: t(f"lifecycle.action.{action}", lang)))
    if action in (Action.CONFIRM, Action.DISMISS) and not (comment or "").strip():
        raise NotAllowed("确认或排除须填写说明 / confirming or dismissing needs a comment")
    if action == Action.DISMISS and reason not in DISMISS_REASONS:
        raise NotAllowed(f"排除须选择原因 / dismissing needs a reason: {', '.join(DISMISS_REASONS)}")
    details: dict = {"reason": reason} if reason else {}
    if action == Action.CLOSE:
        left = _balance(conn, row)
        if left.remaining_cents > 0:
            if not unrecovered_ok:
                zh, _, en = left.unrecovered_words().partition(" / ")
                raise NotAllowed(f"{zh}。确认仍要结案，请勾选确认后再提交 / {en}: to close it anyway, tick the "
                                 "confirmation and submit again")
            details["unrecovered"] = yuan(left.remaining_cents)
    conn.execute(update(alert).where(alert.c.alert_id == alert_id).values(status=to))
    log_event(conn, alert_id, u.user_id, action, row.status, to, comment, details or None)
    return to


@dataclass(frozen=True)
class Balance:
    """An alert's money: the amount at risk, what its recovery ledger sums to, and what remains (negative when
    more was recovered than was at risk)."""
    at_risk_cents: int
    recovered_cents: int

    @property
    def remaining_cents(self) -> int:
        return self.at_risk_cents - self.recovered_cents

    @property
    def recovered(self) -> Decimal:
        return Decimal(yuan(self.recovered_cents))

    @property
    def remaining(self) -> Decimal:
        return Decimal(yuan(self.remaining_cents))

    def words(self) -> str:
        """'合计 ¥X，尚余 ¥Y / ¥X recovered so far, ¥Y remains' (or how much more than at risk)."""
        got, left = yuan(self.recovered_cents), yuan(abs(self.remaining_cents))
        if self.remaining_cents >= 0:
            return f"合计 ¥{got}，尚余 ¥{left} / ¥{got} recovered so far, ¥{left} remains"
        return f"合计 ¥{got}，超出涉及金额 ¥{left} / ¥{got} recovered so far, ¥{left} more than at risk"

    def unrecovered_words(self) -> str:
        at_risk, got, left = yuan(self.at_risk_cents), yuan(self.recovered_cents), yuan(self.remaining_cents)
        return (f"尚有 ¥{left} 未追回（涉及 ¥{at_risk}，已追回 ¥{got}） / ¥{left} of the ¥{at_risk} at risk has not "
                f"been recovered (¥{got} recovered)")


def _recovered_cents(conn: Connection, alert_id: str) -> int:
    return int(conn.execute(select(func.coalesce(func.sum(recovery.c.amount_cents), 0))
                            .where(recovery.c.alert_id == alert_id)).scalar() or 0)


def _balance(conn: Connection, row) -> Balance:
    return Balance(int(row.amount_at_risk_cents), _recovered_cents(conn, row.alert_id))


def balance(conn: Connection, user_id: str, alert_id: str) -> Balance:
    """The money of an alert in the user's area."""
    return _balance(conn, visible(conn, user(conn, user_id), alert_id))


def business_today() -> date:
    """Today where the bureau works (Asia/Shanghai), whatever the server's clock zone."""
    return datetime.now(ZoneInfo(BUSINESS_TZ)).date()


def _may_enter_money(conn: Connection, user_id: str, alert_id: str):
    u = user(conn, user_id)
    if u.read_only:
        raise NotAllowed("审计人员只能查看，不能修改 / auditors can look but not change anything")
    # read locked (on PostgreSQL) until the entry is in: two entries at once cannot both pass the checks
    row = conn.execute(select(alert).where(and_(alert.c.alert_id == alert_id, scope(u))).with_for_update()).first()
    if row is None:  # the same answer as `visible`
        raise NotAllowed(f"找不到预警或无权查看 / no alert {alert_id} in your area")
    if row.status != Status.CONFIRMED:
        raise NotAllowed(f"只有已确认的预警可以登记追回 / only confirmed alerts take recoveries (this one is {row.status})")
    return u, row


def record_recovery(conn: Connection, user_id: str, alert_id: str, amount: str, on: date, method: str,
                    comment: str | None = None, reason: str | None = None, today: date | None = None) -> Balance:
    """A (partial) recovery of a confirmed alert; returns the alert's money after it. Refused: a date after
    today (Asia/Shanghai; `today` for tests), and a recovery that takes the total past the amount at risk
    unless `reason` says why (kept with the entry and in the audit log). An alert with ¥0.00 at risk (an
    anomaly, whose overpayment the supervisor's check finds) has no such ceiling."""
    u, row = _may_enter_money(conn, user_id, alert_id)
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise NotAllowed(f"金额格式不对 / not an amount: {amount}") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")) or value >= 10**10:
        raise NotAllowed(f"金额须大于0且最多两位小数 / the amount must be positive with at most two decimals: {amount}")
    if method not in RECOVERY_METHODS:
        raise NotAllowed(f"追回方式 / method must be one of {', '.join(RECOVERY_METHODS)}")
    limit = today or business_today()
    if on > limit:
        raise NotAllowed(f"追回日期 {on} 晚于今天（{limit}），不能登记未来的追回 / the recovery date {on} is after today "
                         f"({limit}, China time): a recovery cannot be recorded before it happens")
    cents = int(value * 100)
    after = Balance(int(row.amount_at_risk_cents), _recovered_cents(conn, alert_id) + cents)
    details = {"amount": yuan(cents), "recovered_on": on.isoformat(), "method": method}
    why = (reason or "").strip() or None
    if after.at_risk_cents > 0 and after.remaining_cents < 0:  # ¥0.00 at risk (an anomaly): the check finds
        # the amount, so there is no ceiling to pass
        over = yuan(-after.remaining_cents)
        if why is None:
            raise NotAllowed(f"追回合计将为 ¥{yuan(after.recovered_cents)}，超出涉及金额 ¥{yuan(after.at_risk_cents)} 共 "
                             f"¥{over}：如确需登记，须写明原因 / the recoveries would total ¥{yuan(after.recovered_cents)}, "
                             f"¥{over} more than the ¥{yuan(after.at_risk_cents)} at risk: to record it, state the reason")
        details.update(over_by=over, reason=why)
    else:
        why = None  # a reason is kept only where one is needed
    conn.execute(recovery.insert().values(alert_id=alert_id, amount_cents=cents, recovered_on=on, method=method,
                                          reason=why, recorded_by=u.user_id, recorded_at=datetime.now()))
    log_event(conn, alert_id, u.user_id, Action.RECOVER, row.status, row.status, comment, details)
    return after


def reverse_recovery(conn: Connection, user_id: str, alert_id: str, entry_id: int, reason: str,
                     today: date | None = None) -> Balance:
    """Undo a wrong recovery entry of a confirmed alert with a reversing entry: the opposite amount, the same
    method, dated today (Asia/Shanghai), naming the entry it reverses, with the reason (also in the audit log).
    Nothing is deleted; an entry is reversed at most once and a reversal is not reversed (record the right
    amount as a new recovery instead)."""
    u, row = _may_enter_money(conn, user_id, alert_id)
    why = (reason or "").strip()
    if not why:
        raise NotAllowed("冲正须填写原因 / a reversal needs a reason")
    entry = conn.execute(select(recovery).where(and_(recovery.c.id == entry_id, recovery.c.alert_id == alert_id))).first()
    if entry is None or entry.amount_cents < 0:
        raise NotAllowed(f"此预警没有第 {entry_id} 笔追回记录 / this alert has no recovery entry {entry_id}")
    if conn.execute(select(recovery.c.id).where(recovery.c.reverses == entry_id)).first() is not None:
        raise NotAllowed(f"第 {entry_id} 笔追回记录已冲正过 / recovery entry {entry_id} is already reversed")
    on = today or business_today()
    amount = yuan(entry.amount_cents)
    conn.execute(recovery.insert().values(alert_id=alert_id, amount_cents=-entry.amount_cents, recovered_on=on,
                                          method=entry.method, reverses=entry_id, reason=why, recorded_by=u.user_id,
                                          recorded_at=datetime.now()))
    log_event(conn, alert_id, u.user_id, Action.RECOVER, row.status, row.status,
              f"冲正第 {entry_id} 笔追回 ¥{amount} / reverses recovery entry {entry_id} (¥{amount})",
              {"amount": yuan(-entry.amount_cents), "recovered_on": on.isoformat(), "method": entry.method,
               "reverses": entry_id, "reason": why})
    return _balance(conn, row)


LEDGER_COLUMNS = ["entry", "alert_id", "recovered_on", "amount", "method", "reverses", "reason", "recorded_by",
                  "recorded_at", "amount_at_risk", "recovered_total", "remaining"]


def ledger(conn: Connection, user_id: str, alert_id: str | None = None) -> list[dict]:
    """The recovery ledger of the alerts in the user's area (or of one of them), entry by entry in the order
    recorded, each with its alert's running total and what remains after it (LEDGER_COLUMNS)."""
    u = user(conn, user_id)
    q = (select(recovery, alert.c.amount_at_risk_cents).join(alert, alert.c.alert_id == recovery.c.alert_id)
         .where(scope(u)).order_by(recovery.c.alert_id, recovery.c.id))
    if alert_id is not None:
        visible(conn, u, alert_id)
        q = q.where(recovery.c.alert_id == alert_id)
    out: list[dict] = []
    totals: dict[str, int] = {}
    for r in conn.execute(q):
        totals[r.alert_id] = totals.get(r.alert_id, 0) + r.amount_cents
        out.append({"entry": r.id, "alert_id": r.alert_id, "recovered_on": r.recovered_on.isoformat(),
                    "amount": yuan(r.amount_cents), "method": r.method, "reverses": r.reverses or "",
                    "reason": r.reason or "", "recorded_by": r.recorded_by,
                    "recorded_at": r.recorded_at.isoformat(timespec="seconds"),
                    "amount_at_risk": yuan(r.amount_at_risk_cents), "recovered_total": yuan(totals[r.alert_id]),
                    "remaining": yuan(r.amount_at_risk_cents - totals[r.alert_id])})
    return out


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
    if row.snoozed_until is not None and row.snoozed_until > (today or date.today()):
        raise NotAllowed(f"已暂缓至 {row.snoozed_until}，不能再次暂缓 / already snoozed until {row.snoozed_until}: "
                         "it cannot be snoozed again before then")
    until = (today or date.today()) + timedelta(days=days)
    conn.execute(update(alert).where(alert.c.alert_id == alert_id).values(snoozed_until=until))
    log_event(conn, alert_id, u.user_id, Action.SNOOZE, row.status, row.status, reason, {"until": until.isoformat()})
    return until


def queue(conn: Connection, user_id: str, include_snoozed: bool = False, today: date | None = None):
    """Exactly the alerts in the user's scope (not withdrawn), snoozed ones left out unless asked."""
    u = user(conn, user_id)
    q = select(alert).where(and_(scope(u), alert.c.status != Status.WITHDRAWN))
    if not include_snoozed:
        q = q.where(or_(alert.c.snoozed_until.is_(None), alert.c.snoozed_until <= (today or date.today())))
    return conn.execute(q.order_by(alert.c.amount_at_risk_cents.desc(), alert.c.alert_id)).all()


def escalate(conn: Connection, now: datetime | None = None, sla_days: Mapping[str, int] | None = None) -> list[dict]:
    """Alerts nobody acknowledged within their SLA move up one level (village → township → county); the
    clock restarts at each move. Snoozed alerts wait. Every move is logged; returns what moved."""
    now = now or datetime.now()
    sla = {**DEFAULT_SLA_DAYS, **(sla_days or {})}
    moved = []
    rows = conn.execute(select(alert).where(and_(alert.c.status == Status.NEW, alert.c.level != ESCALATION[-1]))).all()
    for a in rows:
        if a.snoozed_until is not None and a.snoozed_until > now.date():
            continue
        since = a.escalated_at or a.raised_at
        if since is None or now - since < timedelta(days=sla.get(a.severity, 7)):
            continue
        to = ESCALATION[ESCALATION.index(a.level) + 1] if a.level in ESCALATION else ESCALATION[1]
        conn.execute(update(alert).where(alert.c.alert_id == a.alert_id).values(level=to, escalated_at=now))
        log_event(conn, a.alert_id, SYSTEM, Action.ESCALATE, a.status, a.status,
                  f"{sla.get(a.severity, 7)}天内无人接收，升级至{to} / not acknowledged within "
                  f"{sla.get(a.severity, 7)} days: moved up to {to}", {"from_level": a.level, "to_level": to})
        moved.append({"alert_id": a.alert_id, "from": a.level, "to": to, "village_code": a.village_code})
    return moved


def history(conn: Connection, alert_id: str) -> list[dict]:
    return [dict(r) for r in conn.execute(select(alert_event).where(alert_event.c.alert_id == alert_id)
                                          .order_by(alert_event.c.id)).mappings()]
