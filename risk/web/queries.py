"""What the web pages show, read from the warehouse: the queue with its filters, one case, the data-quality
rejects, the city-wide search and the audit log. Scope always comes from `workflow.scope` (or `visible`),
filters only from checked values bound as parameters: a filter that is not a valid value is ignored and
named, never pasted into SQL. An ID number that is not one (a masked one, a wrong check character) is not
ignored: it is refused, and nothing is listed, since ignoring it would list the whole city."""
from __future__ import annotations

import json
import re
import unicodedata
import urllib.parse as urllib_parse
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Select, and_, false, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from risk.alerts import lifecycle as workflow
from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.db.tables import alert, alert_event, quality_issue, recipient, recovery, region
from risk.detection import registry
from risk.detection.registry import BY_CODE
from risk.identity.numbers import mask_id, mask_name, try_normalise
from risk.ingest import quality
from risk.privacy import redact

PAGE_SIZE = 25
SEVERITIES = ("high", "medium", "low")
STATUSES = ("new", "acknowledged", "investigating", "confirmed", "dismissed", "closed")
# ASCII digits only, the whole value (`\d` takes any script's digits, `$` a trailing newline)
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_VILLAGE = re.compile(r"[0-9]{12}")
_COUNTY = re.compile(r"[0-9]{6}")


def rule_codes() -> list[str]:
    return registry.listed()


def rule_title(code: str, lang: str) -> str:
    return registry.title(code, lang)


@dataclass
class AlertFilter:
    """The queue's and the search's filters, each checked against what it can be."""

    rule: str | None = None
    severity: str | None = None
    status: str | None = None
    village: str | None = None
    county: str | None = None
    period_from: str | None = None  # YYYY-MM of first_seen
    period_to: str | None = None
    person_id: str | None = None  # whole ID number (search only)
    min_amount_cents: int | None = None
    sort: str = "amount"  # amount | age
    page: int = 1
    ignored: list[str] = field(default_factory=list)  # the parameters that were not valid values
    refused: list[str] = field(default_factory=list)  # why nothing is listed ('中文 / English'): a bad ID number

    @classmethod
    def from_query(cls, params: Any, by_person: bool = True) -> AlertFilter:
        """The filters of a query string or a form; `by_person`: the ID number is read (the search and its
        exports), else left out (the queue is not a person search)."""
        f = cls()

        def take(name: str, ok) -> str | None:
            value = (params.get(name) or "").strip()
            if not value:
                return None
            if ok(value):
                return value
            f.ignored.append(name)
            return None

        f.rule = take("rule", lambda v: v in rule_codes())
        f.severity = take("severity", lambda v: v in SEVERITIES)
        f.status = take("status", lambda v: v in STATUSES)
        f.village = take("village", _VILLAGE.fullmatch)
        f.county = take("county", _COUNTY.fullmatch)
        f.period_from = take("from", _MONTH.fullmatch)
        f.period_to = take("to", _MONTH.fullmatch)
        if by_person:
            f.person_id, why = _person_id(params.get("person_id"))
            if why:
                f.refused.append(why)
        amount = take("min_amount", _is_amount)
        f.min_amount_cents = int(Decimal(amount) * 100) if amount else None
        f.sort = take("sort", lambda v: v in ("amount", "age")) or "amount"
        page = take("page", lambda v: v.isascii() and v.isdigit() and 0 < int(v) < 100000)
        f.page = int(page) if page else 1
        return f

    def conditions(self) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = []
        if self.refused:  # whoever lists with a refused filter gets nothing, never everything
            c.append(false())
        if self.rule:
            c.append(alert.c.rule == self.rule)
        if self.severity:
            c.append(alert.c.severity == self.severity)
        if self.status:
            c.append(alert.c.status == self.status)
        if self.village:
            c.append(alert.c.village_code == self.village)
        if self.county:
            c.append(workflow.begins_with(alert.c.village_code, self.county))
        if self.period_from:
            c.append(alert.c.first_seen >= f"{self.period_from}-01")
        if self.period_to:
            c.append(alert.c.first_seen <= f"{self.period_to}-31")
        if self.person_id:
            c.append(alert.c.person_id == self.person_id)
        if self.min_amount_cents is not None:
            c.append(alert.c.amount_at_risk_cents >= self.min_amount_cents)
        return c

    def export_fields(self) -> dict[str, str]:
        """The filters as form fields, the ID number included (exports are POSTed: no ID in a URL)."""
        values = dict(urllib_parse.parse_qsl(self.query_string(page=None)))
        if self.person_id:
            values["person_id"] = self.person_id
        return values

    def query_string(self, **changes: Any) -> str:
        """The filters as URL parameters (for paging and export links); the ID number is left out."""
        values = {"rule": self.rule, "severity": self.severity, "status": self.status, "village": self.village,
                  "county": self.county, "from": self.period_from, "to": self.period_to, "sort": self.sort,
                  "min_amount": yuan(self.min_amount_cents) if self.min_amount_cents is not None else None,
                  "page": self.page}
        values.update(changes)
        return urllib_parse.urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _person_id(value: Any) -> tuple[str | None, str | None]:
    """(the ID number, None), (None, None) when none was given, or (None, why it is not one). What is
    harmless is tidied first: spaces anywhere, full-width digits, a lowercase x; a 15-digit number becomes
    its 18-digit form."""
    tidy = "".join(unicodedata.normalize("NFKC", value if isinstance(value, str) else "").split()).upper()
    if not tidy:
        return None, None
    person_id, why = try_normalise(tidy)
    if person_id:
        return person_id, None
    zh, _, en = (why or "").partition(" / ")
    return None, (f"身份证号无效，未查询：{zh}。请输入完整的18位身份证号（不是脱敏后的） / not a valid ID number, "
                  f"nothing searched: {en}. Enter the whole 18-character number (not a masked one)")


def _is_amount(value: str) -> bool:
    try:
        d = Decimal(value)
    except InvalidOperation:
        return False
    if not d.is_finite():  # NaN, Infinity
        return False
    return d >= 0 and d < 10**12 and d == d.quantize(Decimal("0.01"))


# what a row of the queue, the search and its exports shows (not the evidence: a case reads it alone)
LISTED = ("alert_id", "rule", "person_id", "village_code", "severity", "status", "amount_at_risk_cents",
          "first_seen", "level", "raised_at", "snoozed_until")


def _alerts_in(u: User, f: AlertFilter, include_withdrawn: bool = False) -> Select:
    """The alerts in the user's area that pass the filters, the columns a list shows."""
    live = [] if include_withdrawn else [alert.c.status != "withdrawn"]
    return select(*(alert.c[name] for name in LISTED)).where(and_(workflow.scope(u), *live, *f.conditions()))


def _order(c: Any, sort: str) -> list[ColumnElement[Any]]:
    """Largest amount first, or oldest first; `c` is the alert table's columns or a subquery's."""
    if sort == "age":
        return [c.raised_at.asc(), c.first_seen.asc(), c.alert_id]
    return [c.amount_at_risk_cents.desc(), c.alert_id]


def _named(q: Select, sort: str) -> Select:
    """The alerts of `q` (already cut to what is shown) with their village's and person's names: joined
    after the cut, so a page of a city's queue looks up 25 names, not every alert's."""
    listed = q.subquery("listed")
    village = region.alias("village")
    return (select(listed, village.c.name.label("village_name"), recipient.c.name.label("person_name"))
            .select_from(listed.outerjoin(village, village.c.code == listed.c.village_code)
                         .outerjoin(recipient, recipient.c.person_id == listed.c.person_id))
            .order_by(*_order(listed.c, sort)))


def _snooze_hidden(today: date) -> ColumnElement[bool]:
    return or_(alert.c.snoozed_until.is_(None), alert.c.snoozed_until <= today)


@dataclass
class Page:
    rows: list[dict]
    total: int
    page: int
    pages: int


def _page_of(conn: Connection, q: Select, wanted: int, size: int) -> tuple[int, int, int, Select]:
    """(total, page, pages, the query limited to that page): a page past the end shows the last one."""
    total = conn.execute(select(func.count()).select_from(q.order_by(None).subquery())).scalar() or 0
    pages = max(1, -(-total // size))
    page = min(max(wanted, 1), pages)
    return total, page, pages, q.limit(size).offset((page - 1) * size)


def _row(r, today: date, unmasked: bool = False) -> dict:
    """A listed alert as a page or an export shows it; `r` has `_named`'s columns (LISTED, then the village's
    and the person's names), read by position: an export turns a city's alerts into rows."""
    (alert_id, rule, person_id, village_code, severity, status, cents, first_seen, level, raised_at,
     snoozed_until, village_name, person_name) = r[:len(LISTED) + 2]
    title_zh, title_en = _titles(rule)
    since = raised_at.date() if raised_at else date.fromisoformat(first_seen)
    return {"alert_id": alert_id, "rule": rule, "title_zh": title_zh, "title_en": title_en,
            "person": person_id if unmasked else mask_id(person_id),
            "name": (person_name or "") if unmasked else mask_name(person_name or ""),
            "village_code": village_code or "", "village_name": village_name or "",
            "severity": severity, "status": status, "amount": yuan(cents), "amount_cents": cents,
            "first_seen": first_seen, "level": level, "age_days": (today - since).days,
            "snoozed_until": snoozed_until}


def _titles(rule: str) -> tuple[str, str]:
    """An alert's rule title (Chinese, English)."""
    return registry.title(rule, "zh"), registry.title(rule, "en")


def queue(conn: Connection, u: User, f: AlertFilter, today: date | None = None, size: int = PAGE_SIZE,
          include_snoozed: bool = False) -> Page:
    today = today or date.today()
    q = _alerts_in(u, f)
    if not include_snoozed:
        q = q.where(_snooze_hidden(today))
    total, page, pages, q = _page_of(conn, q.order_by(*_order(alert.c, f.sort)), f.page, size)
    return Page([_row(r, today) for r in conn.execute(_named(q, f.sort))], total, page, pages)


def villages(conn: Connection, u: User) -> list[tuple[str, str]]:
    """The villages in the user's area (for the queue's village filter)."""
    return [(c, n) for c, n in conn.execute(
        select(region.c.code, region.c.name).where(and_(region.c.level == "village", workflow.in_area(region.c.code, u)))
        .order_by(region.c.code))]


def counties(conn: Connection) -> list[tuple[str, str]]:
    return [(c[:6], n) for c, n in conn.execute(select(region.c.code, region.c.name)
                                                 .where(region.c.level == "county").order_by(region.c.code))]


def _searched(u: User, f: AlertFilter, limit: int | None = None):
    """What the search finds (the `limit` largest amounts, or all) with the names `_named` adds, as a
    subquery, and the amount recovered for each of its alerts, looked up per alert (ix_recovery_alert_id)."""
    q = _alerts_in(u, f)
    shown = q.order_by(*_order(alert.c, "amount")).limit(limit) if limit else q
    named = _named(shown, "amount").order_by(None).subquery("named")
    recovered = (select(func.sum(recovery.c.amount_cents)).where(recovery.c.alert_id == named.c.alert_id)
                 .scalar_subquery())
    return named, recovered


def search_rows(conn: Connection, u: User, f: AlertFilter, limit: int | None = None) -> list[dict]:
    """The city-wide search (auditors and city staff: their scope is the city), for the page and exports;
    identity masked."""
    today = date.today()
    named, recovered = _searched(u, f, limit)
    out = []
    for r in conn.execute(select(named, recovered.label("recovered_cents")).order_by(*_order(named.c, "amount"))).all():
        row = _row(r, today)
        row["recovered"] = yuan(r.recovered_cents or 0)
        out.append(row)
    return out


def search_columns(conn: Connection, u: User, f: AlertFilter) -> dict[str, list]:
    """The search's export: every alert it finds (largest amount first, as `search_rows`), as columns named
    by EXPORT_FIELDS, identity masked. Read as the driver's tuples and turned into columns: a city's
    11,911 alerts through `search_rows` spent as long on a Row and a dict per alert as the database on
    the query."""
    named, recovered = _searched(u, f)
    n = named.c
    result = conn.execute(select(n.alert_id, n.rule, n.person_id, n.person_name, n.village_code, n.village_name,
                                 n.severity, n.status, n.level, n.amount_at_risk_cents, recovered, n.first_seen)
                          .order_by(*_order(n, "amount")))
    rows = result.cursor.fetchall() if result.cursor is not None else []  # text and integers: nothing to convert
    result.close()
    (ids, rules, people, names, villages, village_names, severities, statuses, levels, cents, back,
     first_seen) = (list(c) for c in zip(*rows, strict=True)) if rows else ([] for _ in range(12))
    return {"alert_id": ids, "rule": rules,
            "title_zh": [_titles(rule)[0] for rule in rules],
            "person": [mask_id(p) for p in people], "name": [mask_name(x or "") for x in names],
            "village_code": [v or "" for v in villages], "village_name": [v or "" for v in village_names],
            "severity": severities, "status": statuses, "level": levels,
            "amount": [yuan(c) for c in cents], "recovered": [yuan(c or 0) for c in back],
            "first_seen": first_seen}


EXPORT_FIELDS = [("alert_id", "预警编号 alert_id"), ("rule", "规则 rule"), ("title_zh", "规则名称 rule title"),
                 ("person", "身份证号（脱敏）person (masked)"), ("name", "姓名（脱敏）name (masked)"),
                 ("village_code", "村代码 village_code"), ("village_name", "村 village"),
                 ("severity", "严重程度 severity"), ("status", "状态 status"), ("level", "负责层级 level"),
                 ("amount", "涉及金额 amount_at_risk"), ("recovered", "已追回 recovered"),
                 ("first_seen", "首次发现 first_seen")]


# -- one case --------------------------------------------------------------------------------------


def case(conn: Connection, u: User, alert_id: str, unmasked: bool = False) -> dict:
    """Everything the case page shows; raises errors.NotAllowed outside the user's area. An unmasked
    view is logged in the audit log before anything is shown."""
    a = workflow.visible(conn, u, alert_id)
    if unmasked:
        workflow.log_event(conn, a.alert_id, u.user_id, "view_unmasked", a.status, a.status)
    r = conn.execute(_named(_alerts_in(u, AlertFilter(), include_withdrawn=True).where(alert.c.alert_id == alert_id),
                            "amount")).first()
    today = date.today()
    row = _row(r, today, unmasked=unmasked)
    rule = BY_CODE.get(a.rule)
    evidence = json.loads(a.evidence or "[]")
    for e in evidence:  # an evidence id may be an ID number (a death record's person): masked unless shown
        e["id"] = str(e.get("id", "")) if unmasked else redact(str(e.get("id", "")))
        e["detail"] = str(e.get("detail", "")) if unmasked else redact(str(e.get("detail", "")))
    explanation = json.loads(a.explanation) if a.explanation else None
    recoveries = [dict(x) for x in conn.execute(select(recovery).where(recovery.c.alert_id == alert_id)
                                                 .order_by(recovery.c.id)).mappings()]
    recovered = sum(x["amount_cents"] for x in recoveries)
    snoozed = a.status in workflow.OPEN and a.snoozed_until is not None and a.snoozed_until > today
    return {**row, "explain_zh": rule.explain_zh if rule else "", "explain_en": rule.explain_en if rule else "",
            "evidence": [e for e in evidence if e.get("fact") != "feature" or e.get("flagged")],
            "explanation": explanation, "timeline": timeline(conn, alert_id), "recoveries": recoveries,
            "recovered": yuan(recovered), "actions": allowed_actions(u, a.status, snoozed), "unmasked": unmasked,
            "snoozed": snoozed}


def allowed_actions(u: User, status: str, snoozed: bool = False) -> list[str]:
    """The forms the case page offers: what the lifecycle allows from this status, nothing to auditors; an
    alert snoozed now is not offered another snooze."""
    if u.read_only:
        return []
    acts: list[str] = [name for name, (starts, _) in workflow.TRANSITIONS.items() if status in starts]
    if status == "confirmed":
        acts.insert(0, "recover")
    if status in workflow.OPEN and not snoozed:
        acts.append("snooze")
    return acts


def timeline(conn: Connection, alert_id: str) -> list[dict]:
    events = workflow.history(conn, alert_id)
    for e in events:
        e["details"] = json.loads(e["details"]) if e.get("details") else {}
    return events


# -- data quality ----------------------------------------------------------------------------------


CITY_WIDE = ("city", "auditor")  # who sees every rejected row, those no area can be named for too


def _quality_area(conn: Connection, u: User, c: list[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """`c` and, for a user below the city, only the rejected rows placed in their area (quality.villages_of):
    a row that names no village of theirs, or none at all (a whole file, a region), is not theirs."""
    if u.role in CITY_WIDE:
        return c
    rows = conn.execute(select(quality_issue.c.id, quality_issue.c.source, quality_issue.c.record_key,
                               quality_issue.c.raw).where(*c)).all()
    area = u.area
    villages = quality.villages_of(conn, [(r.source, r.record_key, r.raw) for r in rows])
    ids = [r.id for r, village in zip(rows, villages, strict=True) if village and village.startswith(area)]
    return [*c, quality_issue.c.id.in_(ids)]


def quality_summary(conn: Connection, u: User) -> list[dict]:
    """Rejected rows per source and delivery day, in the user's area."""
    return [dict(r) for r in conn.execute(
        select(quality_issue.c.source, quality_issue.c.delivery_day, func.count().label("rows"))
        .where(*_quality_area(conn, u, []))
        .group_by(quality_issue.c.source, quality_issue.c.delivery_day)
        .order_by(quality_issue.c.delivery_day.desc(), quality_issue.c.source)).mappings()]


def quality_rows(conn: Connection, u: User, source: str | None, day: str | None, page: int,
                 size: int = 50) -> Page:
    """The rejected rows in the user's area (file, line, masked key, field, reason), newest day first."""
    c: list[ColumnElement[bool]] = []
    if source:
        c.append(quality_issue.c.source == source)
    if day and _DAY.fullmatch(day):
        c.append(quality_issue.c.delivery_day == day)
    q = select(quality_issue.c.source, quality_issue.c.delivery_day, quality_issue.c.file_name,
               quality_issue.c.line, quality_issue.c.record_key, quality_issue.c.field, quality_issue.c.reason
               ).where(*_quality_area(conn, u, c)
                       ).order_by(quality_issue.c.delivery_day.desc(), quality_issue.c.source, quality_issue.c.line)
    total, page, pages, q = _page_of(conn, q, page, size)
    rows = conn.execute(q).mappings()
    return Page([{**r, "record_key": redact(r["record_key"] or ""), "reason": redact(r["reason"])} for r in rows],
                total, page, pages)


# -- the audit log ---------------------------------------------------------------------------------


@dataclass
class AuditFilter:
    user_id: str | None = None
    action: str | None = None
    alert_id: str | None = None
    day_from: str | None = None
    day_to: str | None = None
    page: int = 1
    ignored: list[str] = field(default_factory=list)  # the parameters that were not valid values

    @classmethod
    def from_query(cls, params: Any) -> AuditFilter:
        ignored: list[str] = []

        def text(name: str, pattern: str, ok=lambda v: True) -> str | None:
            value = (params.get(name) or "").strip()
            if not value:
                return None
            if re.fullmatch(pattern, value) and ok(value):
                return value
            ignored.append(name)
            return None

        page = text("page", r"[0-9]{1,5}")
        return cls(user_id=text("user", r"[\w.@-]{1,64}"), action=text("action", r"[a-z_]{1,20}"),
                   alert_id=text("alert", r"[\w-]{1,40}"), day_from=text("from", _DAY.pattern, _is_day),
                   day_to=text("to", _DAY.pattern, _is_day), page=int(page) if page and int(page) > 0 else 1,
                   ignored=ignored)


def _is_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:  # 2025-13-45
        return False
    return True


def audit_log(conn: Connection, u: User, f: AuditFilter, size: int = 50) -> Page:
    """Every decision, recovery, snooze, escalation and unmasked view on the alerts in the user's area,
    newest first."""
    c: list[ColumnElement[bool]] = [workflow.scope(u)]
    if f.user_id:
        c.append(alert_event.c.user_id == f.user_id)
    if f.action:
        c.append(alert_event.c.action == f.action)
    if f.alert_id:
        c.append(alert_event.c.alert_id == f.alert_id)
    if f.day_from:
        c.append(alert_event.c.at >= datetime.fromisoformat(f.day_from))
    if f.day_to:
        c.append(alert_event.c.at < datetime.fromisoformat(f.day_to).replace(hour=23, minute=59, second=59))
    q = (select(alert_event, alert.c.rule, alert.c.village_code)
         .select_from(alert_event.join(alert, alert.c.alert_id == alert_event.c.alert_id)).where(*c)
         .order_by(alert_event.c.id.desc()))
    total, page, pages, q = _page_of(conn, q, f.page, size)
    rows = conn.execute(q).mappings()
    out = []
    for r in rows:
        item = dict(r)
        item["details"] = json.loads(item["details"]) if item.get("details") else {}
        item["comment"] = redact(item["comment"] or "")
        out.append(item)
    return Page(out, total, page, pages)
