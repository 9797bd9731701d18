"""The system's words, each defined once: what an alert's status, an audit-log action, a level, a role, a
severity, a rule code, a recovery method, a notification channel and delivery status, and an account's
language can be, and the region hierarchy.

Every value is the string the warehouse, the exports and the URLs hold (a `StrEnum` member is equal to its
string), so these words change nothing that is stored or shown; the migrations freeze the values in force
when they were written (0016 checks every such column against them). Translations are elsewhere
(risk/locale, read by risk.words): its keys are these words.

The region hierarchy: a region code has 12 digits; a city's code is its first 4 digits followed by zeros, a
county's its first 6, a township's its first 9, a village's all 12. A region lies in an area when its code
begins with the area's digits (`prefix`).
"""
from __future__ import annotations

from enum import StrEnum

from sqlalchemy import String, and_, func
from sqlalchemy.sql.elements import ColumnElement


class Status(StrEnum):
    """Where an alert stands (risk.alerts.lifecycle moves it; detection raises, reopens and withdraws)."""
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"  # the system's own: the facts behind the alert are no longer in the warehouse


OPEN = (Status.NEW, Status.ACKNOWLEDGED, Status.INVESTIGATING)  # still to be worked: may be snoozed
PROVED = (Status.CONFIRMED, Status.CLOSED)  # confirmed, whether or not the case is closed since


class Action(StrEnum):
    """What an audit-log entry (`alert_event.action`) records."""
    ACKNOWLEDGE = "acknowledge"
    INVESTIGATE = "investigate"
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    CLOSE = "close"
    RECOVER = "recover"  # a recovery entry, or one reversing an entry
    SNOOZE = "snooze"
    ESCALATE = "escalate"  # the system, at a missed deadline
    REOPEN = "reopen"  # the system, on new facts
    VIEW_UNMASKED = "view_unmasked"  # someone saw the whole ID number and name
    RAISE = "raise"  # offered by the audit page's filter; nothing records it yet


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class RuleCode(StrEnum):
    """Every kind of alert: the rules of law (one SQL file each) and `anomaly` (behaviour scoring). Each has
    exactly one entry in risk.detection.registry, which refuses to load otherwise."""
    DECEASED_PAYMENT = "deceased_payment"
    CARD_AFTER_DEATH = "card_after_death"
    INCARCERATED_PAYMENT = "incarcerated_payment"
    DUAL_BENEFIT = "dual_benefit"
    DUPLICATE_PAYMENT = "duplicate_payment"
    SHARED_ACCOUNT = "shared_account"
    UNDERAGE_PENSION = "underage_pension"
    CERTIFICATION_OVERDUE = "certification_overdue"
    ANOMALY = "anomaly"


class Method(StrEnum):
    """How money was recovered (`recovery.method`)."""
    BANK_RETURN = "bank_return"
    DEDUCTION = "deduction"
    REPAYMENT = "repayment"
    COURT = "court"
    OTHER = "other"


class Channel(StrEnum):
    """Where a digest goes (`notification.channel`)."""
    EMAIL = "email"
    URL = "url"  # the supervisor's notify_url
    OUTBOX = "outbox"  # a file instead of sending
    NONE = "none"  # nowhere to send it: recorded failed at once


class DeliveryStatus(StrEnum):
    """How a digest's delivery goes (`notification.status`): due → sending → sent or failed."""
    DUE = "due"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Language(StrEnum):
    """A supervisor's language for pages and digests (`account.language`)."""
    ZH = "zh"
    EN = "en"


# ---------------------------------------------------------------- the region hierarchy

class Level(StrEnum):
    """A level of the region hierarchy, top down (`region.level`; `alert.level`: who must act)."""
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


CODE_DIGITS = 12
DIGITS = {Level.CITY: 4, Level.COUNTY: 6, Level.TOWNSHIP: 9, Level.VILLAGE: 12}  # the digits a level's code owns
HIERARCHY = tuple(Level)  # top down: each level's parent is the one before it
# 三级管理: an alert starts with its village; at each missed deadline it moves up one level, to the county
ESCALATION = (Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY)


class Role(StrEnum):
    """A supervisor's role (`supervisor.role`): the staff of a level, or an auditor (the whole city, read
    only)."""
    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY = "county"
    CITY = "city"
    AUDITOR = "auditor"

    @property
    def level(self) -> Level:
        """The level of the region the role's area is."""
        return Level.CITY if self is Role.AUDITOR else Level(self.value)


def values(words: type[StrEnum]) -> tuple[str, ...]:
    """The enumeration's strings, in order (plain `str`, for places that must not hold enum members)."""
    return tuple(w.value for w in words)


def area_digits(role: str) -> int:
    """How many leading digits of a region code a role's area shares with the villages in it."""
    return DIGITS[Role(role).level]


def prefix(code: str, level: str) -> str:
    """The digits of `code` that name its region at `level` (a village's county: its first 6 digits)."""
    return code[:DIGITS[Level(level)]]


def area_prefix(code: str, role: str) -> str:
    """The digits every village code in the area of a user of `role` at region `code` begins with."""
    return code[:area_digits(role)]


def area_code(code: str, level: str) -> str:
    """The 12-digit code of the region at `level` that `code` lies in (a village's county: 6 digits, 6 zeros)."""
    return prefix(code, level).ljust(CODE_DIGITS, "0")


def parent(code: str | None, level: str | None) -> str | None:
    """The code of the region one level up from `code` (a region of `level`); None for the city, an unknown
    level or a code that is not 12 characters long."""
    if not code or len(code) != CODE_DIGITS or level not in HIERARCHY:
        return None
    above = HIERARCHY.index(Level(level)) - 1
    return area_code(code, HIERARCHY[above]) if above >= 0 else None


def contains(area: str, code: str) -> bool:
    """The region `code` lies in the area whose codes begin with `area` (see `prefix`, `area_prefix`)."""
    return code.startswith(area)


def code_range(area: str) -> tuple[str, str]:
    """The codes that begin with `area` as a range [first, following): codes are digits, compared
    character by character, so they are exactly those from the first to the one past the last."""
    return area, area[:-1] + chr(ord(area[-1]) + 1)


def first_and_last(area: str) -> tuple[str, str]:
    """The first and last 12-digit code that begins with `area` (both included)."""
    return area.ljust(CODE_DIGITS, "0"), area.ljust(CODE_DIGITS, "9")


def begins_with(code_column: ColumnElement[str], area: str) -> ColumnElement[bool]:
    """`contains` in SQL: the code begins with `area`, said as its `code_range`, which an index on the column
    finds at once (a village's, a township's or a county's alerts are a few among the city's)."""
    first, following = code_range(area)
    return and_(code_column >= first, code_column < following)


def prefix_sql(code_column: ColumnElement[str], level: str) -> ColumnElement[str]:
    """`prefix` in SQL: the digits of the code that name its region at `level`."""
    return func.substr(code_column, 1, DIGITS[Level(level)], type_=String)


def area_code_sql(code_column: ColumnElement[str], level: str) -> ColumnElement[str]:
    """`area_code` in SQL: the 12-digit code of the region at `level` the code lies in."""
    return prefix_sql(code_column, level).concat("0" * (CODE_DIGITS - DIGITS[Level(level)]))
