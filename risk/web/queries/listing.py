"""What the alert lists show (the queue, the search and its exports, one case's row): the filters, the
columns listed, the order, the names joined, paging and the row as a page shows it.

Scope always comes from `workflow.scope`, filters only from checked values bound as parameters: a filter
that is not a valid value is ignored and named, never pasted into SQL. An ID number that is not one (a
masked one, a wrong check character) is not ignored: it is refused, and nothing is listed, since ignoring it
would list the whole city."""
from __future__ import annotations

import re
import unicodedata
import urllib.parse as urllib_parse
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Select, and_, false, func, select
from sqlalchemy.sql.elements import ColumnElement

from risk.alerts import lifecycle as workflow
from risk.alerts.case import listed
from risk.alerts.export import yuan
from risk.alerts.lifecycle import User
from risk.db.tables import alert, recipient, region
from risk.detection import registry
from risk.identity.numbers import try_normalise

PAGE_SIZE = 25
SEVERITIES = ("high", "medium", "low")
STATUSES = ("new", "acknowledged", "investigating", "confirmed", "dismissed", "closed")
# ASCII digits only, the whole value (`\d` takes any script's digits, `$` a trailing newline)
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
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


def alerts_in(u: User, f: AlertFilter, include_withdrawn: bool = False) -> Select:
    """The alerts in the user's area that pass the filters, the columns a list shows."""
    live = [] if include_withdrawn else [alert.c.status != "withdrawn"]
    return select(*(alert.c[name] for name in LISTED)).where(and_(workflow.scope(u), *live, *f.conditions()))


def ordered(c: Any, sort: str) -> list[ColumnElement[Any]]:
    """Largest amount first, or oldest first; `c` is the alert table's columns or a subquery's."""
    if sort == "age":
        return [c.raised_at.asc(), c.first_seen.asc(), c.alert_id]
    return [c.amount_at_risk_cents.desc(), c.alert_id]


def named(q: Select, sort: str) -> Select:
    """The alerts of `q` (already cut to what is shown) with their village's and person's names: joined
    after the cut, so a page of a city's queue looks up 25 names, not every alert's."""
    listed = q.subquery("listed")
    village = region.alias("village")
    return (select(listed, village.c.name.label("village_name"), recipient.c.name.label("person_name"))
            .select_from(listed.outerjoin(village, village.c.code == listed.c.village_code)
                         .outerjoin(recipient, recipient.c.person_id == listed.c.person_id))
            .order_by(*ordered(listed.c, sort)))


@dataclass
class Page:
    rows: list[dict]
    total: int
    page: int
    pages: int


def page_of(conn: Connection, q: Select, wanted: int, size: int) -> tuple[int, int, int, Select]:
    """(total, page, pages, the query limited to that page): a page past the end shows the last one."""
    total = conn.execute(select(func.count()).select_from(q.order_by(None).subquery())).scalar() or 0
    pages = max(1, -(-total // size))
    page = min(max(wanted, 1), pages)
    return total, page, pages, q.limit(size).offset((page - 1) * size)


def row_of(r, today: date, unmasked: bool = False) -> dict:
    """A listed alert as a page or an export shows it (risk.alerts.case.listed); `r` has `named`'s columns
    (LISTED, then the village's and the person's names), read by position: an export turns a city's alerts
    into rows."""
    return listed(*r[:len(LISTED) + 2], today=today, unmasked=unmasked)


