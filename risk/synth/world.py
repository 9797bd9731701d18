"""The generator's working state, and the helpers planted cases use to add facts and expected truth.

Planted cases take fresh persons from a reserved block at the end of the population, set their
attributes (the background generators then produce their ordinary facts), add explicit facts, and
record the alerts §4 demands with amounts computed from the person's complete list of payments.
Explicit rows are indexed by person as well, so that a planted person's truth costs what that person
holds, not what the whole city holds.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import cast

import numpy as np

from risk.contract import RECURRING
from risk.synth.people import BENEFITS, NAT, Population, amounts_for, birth_for_age
from risk.synth.regions import Regions
from risk.synth.timeline import Calendar, add_months, to_date

PENSIONS = ("resident_pension", "employee_pension")


@dataclass
class World:
    cal: Calendar
    rng: np.random.Generator
    regions: Regions
    pop: Population
    scale: float  # people / 5000
    next_reserved: int = 0
    pay_rows: list[dict] = field(default_factory=list)
    card_rows: list[dict] = field(default_factory=list)
    death_rows: list[dict] = field(default_factory=list)
    jail_rows: list[dict] = field(default_factory=list)
    skips: set[tuple[int, int]] = field(default_factory=set)  # (person, period) regular payment not made
    redirects: dict[tuple[int, int], int] = field(default_factory=dict)  # (person, period) -> account holder
    blackouts: list[tuple[int, np.datetime64, np.datetime64]] = field(default_factory=list)
    recipient_updates: list[tuple[int, int, dict]] = field(default_factory=list)  # (month, person, changes)
    alerts: dict[tuple[str, int], int] = field(default_factory=dict)  # (rule, person) -> cents
    lawful: list[tuple[str, int, str]] = field(default_factory=list)
    outliers: list[tuple[int, str]] = field(default_factory=list)
    jail_conflicts: list[int] = field(default_factory=list)  # indices into jail_rows
    death_conflicts: list[tuple[int, np.datetime64]] = field(default_factory=list)  # (death row, other date)
    pays_of: defaultdict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))  # person -> pay_rows
    events_of: defaultdict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))  # -> card_rows

    # ---- counts -------------------------------------------------------------------------------
    def per_variant(self, weight: float = 1.0) -> int:
        return max(1, int(round(self.scale * weight)))

    def randint(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive); lo when the range is empty."""
        return lo if hi <= lo else int(self.rng.integers(lo, hi + 1))

    # ---- persons ------------------------------------------------------------------------------
    def person(self, tag: str, benefit: int, age: tuple[float, float] | None = None, *,
               birth: np.datetime64 | None = None, male: bool | None = None, first: int = 0,
               last: int | None = None, c0: np.datetime64 | str = "recent", cert_events: bool = True,
               need_x: bool = False, cents: int | None = None) -> int:
        p, cal, rng = self.pop, self.cal, self.rng
        i = p.reserved_from + self.next_reserved
        if i >= p.n:
            raise ValueError("population too small for the planted cases; use more people")
        self.next_reserved += 1
        p.planted[i] = True
        p.tag[i] = tag
        p.benefit[i] = benefit
        p.male[i] = bool(rng.random() < 0.5) if male is None else male
        if birth is None:
            assert age is not None
            birth = birth_for_age(rng, cal.first_day, np.array([age[0]]), np.array([age[1]]))[0]
        p.birth[i] = birth
        p.cents[i] = amounts_for(rng, np.array([benefit]))[0] if cents is None else cents
        p.first[i] = first
        p.last[i] = cal.months - 1 if last is None else last
        rmonths = [0] + cal.recipient_months()
        p.recip_month[i] = max(m for m in rmonths if m <= first)
        if isinstance(c0, str):  # recent: shortly before the person's first recipients delivery
            c0 = cal.first(int(p.recip_month[i])) - int(rng.integers(15, 90)) if c0 == "recent" else NAT
        p.c0[i] = c0
        p.death[i] = NAT
        p.card_until[i] = NAT
        p.cert_events[i] = cert_events
        p.need_x[i] = need_x
        p.addr[i] = self.regions.counties[self.regions.village_county[p.village[i]]]
        return i

    def pension(self, tag: str, **kw) -> int:
        """A resident (age 62-88) or employee (58-85) pensioner."""
        if self.rng.random() < 0.6:
            return self.person(tag, 0, (62, 88), **kw)
        return self.person(tag, 1, (58, 85), **kw)

    def pid(self, i: int) -> str:
        return str(self.pop.pid[i])

    # ---- facts --------------------------------------------------------------------------------
    def pay(self, i: int, btype: str, period: int, cents: int, paid_on: np.datetime64 | None = None) -> None:
        cal = self.cal
        paid_on = cal.pay_day(period) if paid_on is None else paid_on
        m = int(cal.month_of(paid_on))
        day = cal.pay_day(m) if paid_on <= cal.pay_day(m) else cal.pay_day(m + 1)
        assert day <= cal.pay_day(cal.months - 1), "payment delivered after the last payments day"
        row = {"pi": i, "btype": btype, "period": period, "cents": int(cents), "paid_on": paid_on,
               "account": self.pop.account[i], "holder": i, "day": day, "order": 1, "seq": len(self.pay_rows)}
        self.pay_rows.append(row)
        self.pays_of[i].append(row)

    def event(self, i: int, ts: np.datetime64, etype: str, cents: int, *, county: int | None = None,
              admitted: np.datetime64 = NAT, utc: bool = False, inst: int | None = None) -> None:
        """A card event at Beijing local time `ts` (written in UTC when `utc`)."""
        from risk.synth.facts import ET, institution
        stamp = cast(np.datetime64, np.asarray(ts, dtype="datetime64[s]")[()])
        day = stamp.astype("datetime64[D]")
        assert self.cal.first_day <= day <= self.cal.end
        if county is None:
            county = int(self.regions.village_county[self.pop.village[i]])
        code = ET[etype]
        if inst is None:
            inst = int(institution(self.rng, np.array([county]), np.array([code], dtype=np.int8))[0])
        row = {"pi": i, "ts": stamp, "etype": code, "county": county, "inst": inst, "cents": int(cents),
               "admitted": admitted, "utc": utc, "file_month": int(self.cal.month_of(day))}
        self.card_rows.append(row)
        self.events_of[i].append(row)

    def events(self, people: np.ndarray, ts: np.ndarray, etype: np.ndarray, cents: np.ndarray, county: np.ndarray,
               inst: np.ndarray) -> None:
        """Many card events at once: Beijing local times `ts`, event type codes, amounts in cents."""
        ts = np.asarray(ts, dtype="datetime64[s]")
        assert ((ts >= self.cal.first_day) & (ts < self.cal.end + 1)).all()
        month = self.cal.month_of(ts)
        for i, stamp, code, c, where, at, m in zip(people.tolist(), ts, etype.tolist(), cents.tolist(),
                                                   county.tolist(), inst.tolist(), month.tolist(), strict=True):
            row = {"pi": i, "ts": stamp, "etype": code, "county": where, "inst": at, "cents": c, "admitted": NAT,
                   "utc": False, "file_month": m}
            self.card_rows.append(row)
            self.events_of[i].append(row)

    def at(self, day: np.datetime64, hour: float | None = None) -> np.datetime64:
        """A Beijing timestamp on `day` (random daytime hour unless given)."""
        h = float(self.rng.uniform(8, 20)) if hour is None else hour
        start = cast(np.datetime64, np.asarray(day, dtype="datetime64[s]")[()])
        return start + np.timedelta64(int(h * 3600), "s")

    def die(self, i: int, death: np.datetime64, reports: list[tuple[str, np.datetime64, np.datetime64]],
            form: str = "std", last: int | None = None) -> list[int]:
        """Record a death (reports: source, death date as reported, reported_on); stop the cards
        that day and the recurring payments after `last` (default: the month of death)."""
        p, cal = self.pop, self.cal
        p.death[i] = death
        p.card_until[i] = death
        p.last[i] = int(cal.month_of(death)) if last is None else last
        rows = []
        for source, date_as_reported, reported in reports:
            reported = min(reported, cal.final_day)
            rows.append(len(self.death_rows))
            self.death_rows.append({
                "pi": i, "form": form, "death": date_as_reported, "source": source, "reported": reported,
                "day": cal.report_day(reported),
            })
        return rows

    def quick_reports(self, death: np.datetime64, n: int | None = None, lag: tuple[int, int] = (3, 30)
                      ) -> list[tuple[str, np.datetime64, np.datetime64]]:
        n = self.randint(1, 3) if n is None else n
        sources = list(self.rng.permutation(["public_security", "health", "civil_affairs"])[:n])
        reported = death + self.randint(*lag)
        return [(str(s), death, reported + (0 if k == 0 else self.randint(0, 10))) for k, s in enumerate(sources)]

    def custody(self, i: int, sentence: str, start: np.datetime64, end: np.datetime64 = NAT,
                reported: np.datetime64 | None = None, form: str = "std") -> int:
        cal = self.cal
        if reported is None:
            base = start if np.isnat(end) else end
            reported = base + self.randint(3, 40)
        reported = min(reported, cal.first(cal.months - 1) + 14)
        self.jail_rows.append({"pi": i, "form": form, "sentence": sentence, "start": start, "end": end,
                               "reported": reported, "day": cal.report_day(reported)})
        return len(self.jail_rows) - 1

    # ---- truth --------------------------------------------------------------------------------
    def alert(self, rule: str, i: int, cents: int, zero: bool = False) -> None:
        """Record the alert §4 demands (amount in cents; zero only where it may be, e.g. a
        certification event after death)."""
        assert cents > 0 or zero, f"planted {rule} for {self.pop.tag[i]} flags nothing"
        self.alerts[(rule, i)] = self.alerts.get((rule, i), 0) + int(cents)

    def edge_month(self) -> int:
        """A month (not February, so that one day before the edge stays before it) for the
        12-month certification edge cases."""
        for e in (3, 4, 2, 5, 1):
            if e <= self.cal.months - 2 and not str(self.cal.month(e)).endswith("-02"):
                return e
        raise ValueError("window too short for the certification edge")

    def lawful_case(self, case: str, i: int, note: str) -> None:
        self.lawful.append((case, i, note))

    def payments_of(self, i: int) -> list[dict]:
        """Every payment person i will receive: the regular months (minus skips) and explicit rows."""
        p = self.pop
        out = []
        if p.benefit[i] >= 0:
            for m in range(int(p.first[i]), int(p.last[i]) + 1):
                if (i, m) not in self.skips:
                    out.append({"btype": BENEFITS[p.benefit[i]], "period": m, "cents": int(p.cents[i]),
                                "account": p.account[self.redirects.get((i, m), i)], "order": 0,
                                "paid_on": self.cal.pay_day(m)})
        return out + self.pays_of.get(i, [])

    def event_days(self, i: int) -> list[np.datetime64]:
        """Days of person i's explicit card events."""
        return [np.datetime64(r["ts"], "D") for r in self.events_of.get(i, [])]

    def recurring_of(self, i: int) -> list[dict]:
        return [r for r in self.payments_of(i) if r["btype"] in RECURRING]

    def overdue_cents(self, i: int, certs: list[np.datetime64]) -> int:
        """certification_overdue amount for person i given every certification date on record."""
        pays = self.recurring_of(i)
        if not pays:
            return 0
        cert_days = sorted(to_date(c) for c in certs if not np.isnat(c))
        base = to_date(self.cal.first(min(r["period"] for r in pays)))
        total = 0
        for r in pays:
            last_day = to_date(self.cal.last(r["period"]))
            before = [c for c in cert_days if c <= last_day]
            if before:
                flagged = last_day > add_months(before[-1], 12)
            else:
                assert not cert_days or last_day <= add_months(base, 12), "ambiguous certification case"
                flagged = last_day > add_months(base, 12)
            total += r["cents"] if flagged else 0
        return total

    def birthday(self, i: int, years: int) -> date:
        b = to_date(self.pop.birth[i])
        return b.replace(year=b.year + years)
