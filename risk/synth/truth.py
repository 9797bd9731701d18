"""§4 amounts for one planted person, computed from the complete list of that person's payments.

Rows are dicts with btype, period (month index), cents, account, paid_on, and order/seq that decide
payment_id order inside a delivery (regular rows first, then explicit rows in insertion order).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from risk.contract import RECURRING
from risk.synth.timeline import to_date
from risk.synth.world import PENSIONS, World


def id_order(r: dict) -> tuple:
    """payment_id order: delivery day, regular before explicit rows, then insertion order."""
    return (r.get("day", r["paid_on"]), r["order"], r.get("seq", -1))


def deceased(rows: list[dict], death_month: int) -> int:
    return sum(r["cents"] for r in rows if r["btype"] in RECURRING and r["period"] > death_month)


def incarcerated(rows: list[dict], windows: list[tuple[int, int]]) -> int:
    """windows: (start month, release month or last month) of custodial records."""
    return sum(r["cents"] for r in rows if r["btype"] in PENSIONS
               and any(s < r["period"] <= e for s, e in windows))


def dual(rows: list[dict]) -> int:
    by_period: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        if r["btype"] in RECURRING:
            by_period[r["period"]].append(r)
    total = 0
    for group in by_period.values():
        types = {r["btype"] for r in group}
        if {"resident_pension", "employee_pension"} <= types:
            total += sum(r["cents"] for r in group if r["btype"] == "resident_pension")
        if "unemployment" in types and types & set(PENSIONS):
            total += sum(r["cents"] for r in group if r["btype"] == "unemployment")
    return total


def duplicates(rows: list[dict], deceased_person: bool) -> int:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["btype"] in RECURRING:
            groups[(r["btype"], r["period"])].append(r)
        elif r["btype"] == "funeral_grant" and deceased_person:
            groups[("funeral_grant",)].append(r)
    total = 0
    for group in groups.values():
        if len(group) > 1:
            group = sorted(group, key=lambda r: (r["paid_on"], id_order(r)))
            total += sum(r["cents"] for r in group[1:])
    return total


def underage(w: World, i: int, rows: list[dict]) -> int:
    floor_years = {"resident_pension": 60, "employee_pension": 50 if w.pop.male[i] else 45}
    total = 0
    for r in rows:
        if r["btype"] in floor_years:
            birthday: date = w.birthday(i, floor_years[r["btype"]])
            if to_date(w.cal.first(r["period"])) < birthday:
                total += r["cents"]
    return total


def shared(w: World, members: list[int], account: str) -> dict[int, int]:
    """Each member's payments into `account` in the periods where it serves 3+ distinct people."""
    rows = {i: [r for r in w.payments_of(i) if r["account"] == account] for i in members}
    people: dict[int, set[int]] = defaultdict(set)
    for i, rs in rows.items():
        for r in rs:
            people[r["period"]].add(i)
    shared_periods = {m for m, who in people.items() if len(who) >= 3}
    return {i: sum(r["cents"] for r in rs if r["period"] in shared_periods) for i, rs in rows.items()}
