"""Planted cases that every §4 rule must raise, with their exact amount_at_risk.

Each case takes fresh persons (world.person), shapes their facts, and records the alert computed
from the person's complete payment list (truth.py). Planted people keep a recent certification so
that no rule fires except the one planted (or the ones listed).
"""
from __future__ import annotations

import numpy as np

from risk.synth import truth
from risk.synth.people import EMP, NAT, RES, UNEMP, amounts_for
from risk.synth.timeline import to_date
from risk.synth.world import World


def plant_rules(w: World) -> None:
    deceased_payment(w)
    card_after_death(w)
    incarcerated_payment(w)
    dual_benefit(w)
    duplicate_payment(w)
    shared_account(w)
    underage_pension(w)
    certification_overdue(w)


def keep_certified(w: World, i: int, since: np.datetime64) -> None:
    """Certification events every ~300 days after `since`, so a long window never runs over."""
    day = since + w.randint(280, 320)
    while day <= w.cal.end:
        w.event(i, w.at(day), "certification", 0)
        day = day + w.randint(280, 320)


def _certify_before(w: World, i: int, death: np.datetime64) -> None:
    """A certification shortly before death keeps a dead-but-paid person clear of overdue."""
    day = max(w.cal.first_day, death - w.randint(1, 40))
    if day < death:
        w.event(i, w.at(day), "certification", 0)


# ---- deceased_payment ---------------------------------------------------------------------------
def deceased_payment(w: World) -> None:
    for variant in ("late_report", "legacy15", "lower_x", "before_window"):
        for _ in range(w.per_variant()):
            _dead_and_paid(w, variant)
    _disagreeing_sources(w)


def _dead_and_paid(w: World, variant: str) -> None:
    cal, m_n = w.cal, w.cal.months
    tag = f"deceased_payment/{variant}"
    if variant == "before_window":  # a batch from last year: died before the window, paid all along
        i = w.pension(tag, cert_events=False)
        death = cal.first_day - w.randint(20, 50)
        w.pop.c0[i] = death - w.randint(10, 60)
        reported = cal.first(min(w.randint(2, 4), m_n - 1)) + w.randint(0, 12)
    else:
        i = w.pension(tag, need_x=variant == "lower_x")
        death = cal.day(w.randint(1, m_n - 3), w.randint(3, 25))
        reported = min(death + w.randint(40, 150), cal.first(m_n - 1) + 14)
        _certify_before(w, i, death)
    last = min(m_n - 1, int(cal.month_of(cal.report_day(reported))))
    n_src = w.randint(1, 3)
    sources = [str(s) for s in w.rng.permutation(["public_security", "health", "civil_affairs"])[:n_src]]
    reports = [(s, death, reported + (0 if k == 0 else w.randint(0, 20))) for k, s in enumerate(sources)]
    rows = w.die(i, death, reports, last=last)
    if variant == "legacy15":
        w.death_rows[rows[0]]["form"] = "legacy15"
    if variant == "lower_x":
        for r in rows:
            w.death_rows[r]["form"] = "lower_x"
    w.alert("deceased_payment", i, truth.deceased(w.recurring_of(i), int(cal.month_of(death))))


def _disagreeing_sources(w: World) -> None:
    """Health says the last days of a month, public security the first days of the next; the
    later date arrives first. The earliest date counts: one more month is flagged."""
    cal, m_n = w.cal, w.cal.months
    i = w.pension("deceased_payment/disagreeing_dates")
    dm = w.randint(1, m_n - 3)
    early = cal.last(dm) - w.randint(0, 2)
    late = cal.first(dm + 1) + w.randint(1, 3)
    rep_late = late + w.randint(20, 35)
    rep_early = min(early + w.randint(70, 110), cal.first(m_n - 1) + 14)
    last = min(m_n - 1, int(cal.month_of(cal.report_day(rep_late))))
    _certify_before(w, i, early)
    w.die(i, early, [("public_security", late, rep_late), ("health", early, rep_early)], last=last)
    w.alert("deceased_payment", i, truth.deceased(w.recurring_of(i), dm))


# ---- card_after_death ---------------------------------------------------------------------------
def card_after_death(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    for variant in ("events", "certification_only", "utc_written"):
        for _ in range(w.per_variant()):
            i = w.pension(f"card_after_death/{variant}")
            death = cal.day(w.randint(0, m_n - 2), w.randint(3, 20))
            w.die(i, death, w.quick_reports(death))
            total = 0
            if variant == "events":
                for _k in range(w.randint(1, 3)):
                    kind = str(w.rng.choice(["medical", "pharmacy", "transit"]))
                    cents = {"medical": w.randint(3000, 80000), "pharmacy": w.randint(1000, 30000),
                             "transit": 200}[kind]
                    w.event(i, w.at(min(death + w.randint(1, 60), cal.end)), kind, cents)
                    total += cents
                if w.rng.random() < 0.5:  # heirs withdrawing: not flagged, not counted
                    w.event(i, w.at(min(death + w.randint(1, 40), cal.end)), "withdrawal", 50000)
            elif variant == "certification_only":  # someone else's face at the terminal: amount 0
                w.event(i, w.at(min(death + w.randint(5, 60), cal.end)), "certification", 0)
            else:  # 17:30 UTC on the death day is 01:30 Beijing the next day
                cents = w.randint(1000, 20000)
                w.event(i, w.at(death + 1, hour=1.5), "pharmacy", cents, utc=True)
                total += cents
            w.alert("card_after_death", i, total, zero=variant == "certification_only")


# ---- incarcerated_payment -----------------------------------------------------------------------
def incarcerated_payment(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    for variant in ("released", "ongoing", "ongoing_conflict", "legacy15"):
        for _ in range(w.per_variant()):
            i = w.pension(f"incarcerated_payment/{variant}", need_x=variant == "ongoing_conflict")
            released = variant == "released" or (variant == "legacy15" and w.rng.random() < 0.5)
            sm = w.randint(0, m_n - 4 if released else m_n - 3)
            start = cal.day(sm, w.randint(1, 28))
            if released:
                em = w.randint(sm + 1, m_n - 2)
                end = cal.day(em, w.randint(1, 28))
            else:
                em, end = m_n - 1, NAT
            form = {"legacy15": "legacy15", "ongoing_conflict": "lower_x"}.get(variant, "std")
            row = w.custody(i, "custodial", start, end, form=form)
            if variant == "ongoing_conflict":
                w.jail_conflicts.append(row)
            w.blackouts.append((i, start, cal.end if np.isnat(end) else end))
            w.alert("incarcerated_payment", i, truth.incarcerated(w.recurring_of(i), [(sm, em)]))


# ---- dual_benefit -------------------------------------------------------------------------------
def dual_benefit(w: World) -> None:
    m_n = w.cal.months
    for _ in range(w.per_variant(1.5)):  # both pensions for a few months
        i = w.person("dual_benefit/both_pensions", EMP, (62, 85))
        a = w.randint(0, m_n - 2)
        b = w.randint(a, min(a + 5, m_n - 1))
        res = int(amounts_for(w.rng, np.array([RES]))[0])
        for m in range(a, b + 1):
            w.pay(i, "resident_pension", m, res)
        w.alert("dual_benefit", i, truth.dual(w.recurring_of(i)))
    for _ in range(w.per_variant(1.5)):  # unemployment still paid after the pension started
        a = w.randint(1, m_n - 2)
        b = w.randint(a, min(a + 4, m_n - 1))
        i = w.person("dual_benefit/unemployment_and_pension", UNEMP, (61, 64), last=b)
        kind = int(w.rng.integers(0, 2))
        pension = int(amounts_for(w.rng, np.array([kind]))[0])
        for m in range(a, m_n):
            w.pay(i, ("resident_pension", "employee_pension")[kind], m, pension)
        w.alert("dual_benefit", i, truth.dual(w.recurring_of(i)))


# ---- duplicate_payment --------------------------------------------------------------------------
def duplicate_payment(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    btype = ("resident_pension", "employee_pension")
    for variant in ("next_month", "same_day_tie", "earlier_posting", "three_times", "funeral_grant_twice"):
        for _ in range(w.per_variant()):
            i = w.pension(f"duplicate_payment/{variant}")
            kind, cents = btype[int(w.pop.benefit[i])], int(w.pop.cents[i])
            deceased = False
            if variant == "next_month":
                p = w.randint(0, m_n - 2)
                w.pay(i, kind, p, cents, paid_on=cal.pay_day(p + 1))
            elif variant == "same_day_tie":  # same paid_on: the larger payment_id is the repeat
                p = w.randint(0, m_n - 1)
                w.pay(i, kind, p, cents + w.randint(1, 40) * 100)
            elif variant == "earlier_posting":  # posted on the 5th, delivered with the 10th's file
                p = w.randint(0, m_n - 1)
                w.pay(i, kind, p, cents - w.randint(1, 9) * 10, paid_on=cal.first(p) + 4)
            elif variant == "three_times":
                p = w.randint(0, m_n - 3)
                w.pay(i, kind, p, cents, paid_on=cal.pay_day(p + 1))
                w.pay(i, kind, p, cents, paid_on=cal.pay_day(p + 2))
            else:  # funeral grant paid by two schemes in two months
                deceased = True
                dm = w.randint(0, m_n - 3)
                death = cal.day(dm, w.randint(2, 25))
                w.die(i, death, w.quick_reports(death))
                w.pay(i, "funeral_grant", dm + 1, w.randint(20, 80) * 10000)
                w.pay(i, "funeral_grant", dm + 2, w.randint(20, 80) * 10000)
            w.alert("duplicate_payment", i, truth.duplicates(w.payments_of(i), deceased))


# ---- shared_account -----------------------------------------------------------------------------
def shared_account(w: World) -> None:
    m_n = w.cal.months
    for _ in range(w.per_variant(0.5)):
        a = w.randint(0, m_n - 2)
        b = w.randint(a, min(a + 5, m_n - 1))
        _account_group(w, "shared_account/three_people", [(a, b), (a, b)])
    for _ in range(w.per_variant(0.5)):
        a = w.randint(0, m_n - 4)
        b = min(a + w.randint(1, 2), m_n - 3)
        _account_group(w, "shared_account/four_overlapping", [(a, b), (a + 1, b + 1), (a + 2, b + 2)])


def _account_group(w: World, tag: str, ranges: list[tuple[int, int]]) -> list[int]:
    """The first member owns the account; the others' payments go to it for their month ranges."""
    owner = w.pension(tag)
    account = str(w.pop.account[owner])
    members = [owner]
    for a, b in ranges:
        i = w.pension(tag)
        for m in range(a, b + 1):
            w.redirects[(i, m)] = owner
        members.append(i)
    for i, cents in truth.shared(w, members, account).items():
        if cents:
            w.alert("shared_account", i, cents)
    return members


# ---- underage_pension ---------------------------------------------------------------------------
def underage_pension(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    for variant in ("resident_turns_60", "resident_57", "employee_woman_43", "employee_man_48"):
        for _ in range(w.per_variant()):
            tag = f"underage_pension/{variant}"
            if variant == "resident_turns_60":  # birthday on day 2-28: that month is still flagged
                k = w.randint(1, m_n - 2)
                bday = to_date(cal.day(k, w.randint(2, 28)))
                i = w.person(tag, RES, birth=np.datetime64(bday.replace(year=bday.year - 60)))
            elif variant == "resident_57":
                i = w.person(tag, RES, (55, 59))
            elif variant == "employee_woman_43":
                i = w.person(tag, EMP, (40, 44), male=False)
            else:
                i = w.person(tag, EMP, (45, 49), male=True)
            w.alert("underage_pension", i, truth.underage(w, i, w.recurring_of(i)))


# ---- certification_overdue ----------------------------------------------------------------------
def certification_overdue(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    start = cal.first_day
    for _ in range(w.per_variant()):  # last certified 13-16 months before the window, never again
        c0 = start - w.randint(400, 480)
        i = w.pension("certification_overdue/stale", c0=c0, cert_events=False)
        w.alert("certification_overdue", i, w.overdue_cents(i, [c0]))
    for _ in range(w.per_variant()):  # lapses, then certifies again
        c0 = start - w.randint(300, 335)
        i = w.pension("certification_overdue/lapse_then_recertified", c0=c0, cert_events=False)
        again = cal.day(w.randint(min(3, m_n - 1), m_n - 1), w.randint(5, 20))
        w.event(i, w.at(again), "certification", 0)
        keep_certified(w, i, again)
        certs = [c0, again] + w.event_days(i)
        w.alert("certification_overdue", i, w.overdue_cents(i, certs))
    for _ in range(w.per_variant(0.5)):  # one day short of the edge: exactly one month flagged
        e = w.edge_month()
        c0 = cal.last(e - 12) - 1
        i = w.pension("certification_overdue/edge_one_day_over", c0=c0, cert_events=False)
        again = cal.first(e + 1) + 4
        w.event(i, w.at(again), "certification", 0)
        keep_certified(w, i, again)
        certs = [c0] + w.event_days(i)
        w.alert("certification_overdue", i, w.overdue_cents(i, certs))
    if cal.recipient_months():
        r = cal.recipient_months()[0]
        for _ in range(w.per_variant(0.5)):  # a later delivery corrects the date backwards: it stands
            c0 = start - w.randint(20, 60)
            older = start - w.randint(400, 450)
            i = w.pension("certification_overdue/corrected_backwards", c0=c0, cert_events=False)
            w.recipient_updates.append((r, i, {"last_certified_on": older}))
            w.alert("certification_overdue", i, w.overdue_cents(i, [older]))
    if m_n >= 13:
        for _ in range(w.per_variant(0.5)):  # never certified: 12 months from the first paid period
            i = w.pension("certification_overdue/never_certified", c0="none", cert_events=False)
            w.alert("certification_overdue", i, w.overdue_cents(i, []))
