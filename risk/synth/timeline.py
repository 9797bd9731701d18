"""Months, days and delivery days of a generated city.

Months are indices from the start month (0 = the start month). Days are numpy `datetime64[D]`
(Beijing calendar days). The delivery layout follows the contract sample: master data on the first
day, payments on the 10th (period = that month), card events on the 1st of the next month, deaths and
custody records on the 1st and 15th.
"""
from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import date

import numpy as np

D = np.datetime64  # shorthand


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months; the day is clamped to the end of a shorter month."""
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    last = _calendar.monthrange(y, m + 1)[1]
    return date(y, m + 1, min(day.day, last))


def to_date(day: np.datetime64) -> date:
    return day.astype("datetime64[D]").item()


@dataclass(frozen=True)
class Calendar:
    start: str  # YYYY-MM
    months: int

    @property
    def month0(self) -> np.datetime64:
        return np.datetime64(self.start, "M")

    def month(self, m: int) -> np.datetime64:
        return self.month0 + m

    def first(self, m: int) -> np.datetime64:
        """First day of month index m."""
        return (self.month0 + m).astype("datetime64[D]")

    def last(self, m: int) -> np.datetime64:
        return (self.month0 + m + 1).astype("datetime64[D]") - 1

    def day(self, m: int, d: int) -> np.datetime64:
        """Day d of month m, clamped to the month's last day."""
        return min(self.first(m) + (d - 1), self.last(m))

    def month_of(self, days: np.ndarray | np.datetime64) -> np.ndarray:
        """Month index of each day (vectorised)."""
        return (np.asarray(days).astype("datetime64[M]") - self.month0).astype(np.int64)

    def period(self, m: int) -> str:
        return str(self.month(m))

    def days_in(self, m: int) -> int:
        return int((self.last(m) - self.first(m)).astype(np.int64)) + 1

    @property
    def end(self) -> np.datetime64:
        """Last day covered by facts (the last day of the last month)."""
        return self.last(self.months - 1)

    @property
    def span(self) -> int:
        """Days from the first day to the last day covered by facts."""
        return int((self.end - self.first_day).astype(np.int64))

    @property
    def first_day(self) -> np.datetime64:
        return self.first(0)

    @property
    def final_day(self) -> np.datetime64:
        """Last delivery day: the card events of the last month arrive on the 1st after it."""
        return self.first(self.months)

    def pay_day(self, m: int) -> np.datetime64:
        return self.first(m) + 9

    def card_day(self, m: int) -> np.datetime64:
        return self.first(m + 1)

    def report_day(self, reported_on: np.datetime64) -> np.datetime64:
        """Next 1st or 15th on or after `reported_on` (deaths and custody records)."""
        first = reported_on.astype("datetime64[M]").astype("datetime64[D]")
        if reported_on == first:
            return first
        if reported_on <= first + 14:
            return first + 14
        return (reported_on.astype("datetime64[M]") + 1).astype("datetime64[D]")

    def report_days(self, reported_on: np.ndarray) -> np.ndarray:
        """Vectorised `report_day`."""
        rep = np.asarray(reported_on, dtype="datetime64[D]")
        first = rep.astype("datetime64[M]").astype("datetime64[D]")
        nxt = (rep.astype("datetime64[M]") + 1).astype("datetime64[D]")
        return np.where(rep == first, first, np.where(rep <= first + 14, first + 14, nxt))

    def recipient_months(self) -> list[int]:
        """Months whose 1st brings a recipients re-delivery (quarterly, after the first)."""
        return [m for m in range(2, self.months) if m % 3 == 2]


def add_years(day: np.datetime64, years: int) -> date:
    """Birthday arithmetic: Feb 29 + years falls on Feb 28 in common years."""
    d = to_date(day)
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def iso(day: np.datetime64 | date | None) -> str:
    return str(np.asarray(day, dtype="datetime64[D]"))
