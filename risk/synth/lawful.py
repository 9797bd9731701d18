"""Planted legal exceptions (the "never raise for" column of §4) and behavioural outliers.

None of these people may get an alert: the exceptions sit right next to a rule's edge, the outliers
are unusual but break no rule.
"""
from __future__ import annotations

import numpy as np

from risk.synth.facts import ET, county_codes, institution
from risk.synth.people import EMP, INJURY, RES, UNEMP, amounts_for
from risk.synth.planted import _account_group, keep_certified
from risk.synth.regions import NIGHT_COUNTIES
from risk.synth.timeline import to_date
from risk.synth.world import World

# case -> the rule it must not raise
LAWFUL_RULE = {
    "death_month_paid": "deceased_payment",
    "lump_sums_after_death": "deceased_payment",
    "arrears_after_death": "deceased_payment",
    "conflicting_death_record_rejected": "deceased_payment",
    "withdrawal_after_death": "card_after_death",
    "inpatient_admitted_before_death": "card_after_death",
    "events_on_death_day": "card_after_death",
    "other_event_after_death": "card_after_death",
    "sentence_probation": "incarcerated_payment",
    "sentence_surveillance": "incarcerated_payment",
    "sentence_parole": "incarcerated_payment",
    "sentence_outside_prison": "incarcerated_payment",
    "sentence_pretrial": "incarcerated_payment",
    "custody_outside_window": "incarcerated_payment",
    "custody_not_a_pension": "incarcerated_payment",
    "scheme_switch": "dual_benefit",
    "unemployment_then_pension": "dual_benefit",
    "pension_and_work_injury": "dual_benefit",
    "redelivered_payment": "duplicate_payment",
    "conflicting_payment_rejected": "duplicate_payment",
    "spouses_share_account": "shared_account",
    "account_never_three_at_once": "shared_account",
    "centenarian": "underage_pension",
    "turns_60_on_period_first_day": "underage_pension",
    "employee_pension_early_floor": "underage_pension",
    "never_certified_within_12_months": "certification_overdue",
    "certified_exactly_12_months_before": "certification_overdue",
    "recertification_redelivered": "certification_overdue",
}


def plant_lawful(w: World) -> None:
    _deaths(w)
    _custody(w)
    _schemes(w)
    _accounts(w)
    _ages(w)
    _certification(w)


def _dies(w: World, case: str, dm: int, day: tuple[int, int]) -> tuple[int, np.datetime64, list[int]]:
    """A pensioner who dies in month dm; returns the person, the death date and their death rows."""
    i = w.pension(f"lawful/{case}")
    death = w.cal.day(dm, w.randint(*day))
    rows = w.die(i, death, w.quick_reports(death, lag=(3, 40)))
    return i, death, rows


def _deaths(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    end = cal.end
    for _ in range(w.per_variant()):
        i, death, _ = _dies(w, "death_month_paid", w.randint(0, m_n - 2), (2, 8))
        w.lawful_case("death_month_paid", i, f"deceased_payment: died {death}, the month's pension "
                      "posted on the 10th after death")
    for _ in range(w.per_variant()):
        dm = w.randint(0, m_n - 3)
        i, death, _ = _dies(w, "lump_sums_after_death", dm, (2, 25))
        w.pay(i, "funeral_grant", dm + 1, w.randint(20, 80) * 10000)
        w.pay(i, "survivor_benefit", dm + 1, w.randint(100, 500) * 10000)
        w.pay(i, "account_inheritance", dm + 2, w.randint(1000, 200000))
        w.lawful_case("lump_sums_after_death", i, "deceased_payment: funeral grant, survivor benefit and "
                      "account inheritance for periods after death")
    for _ in range(w.per_variant()):
        dm = w.randint(1, m_n - 2)
        i, death, _ = _dies(w, "arrears_after_death", dm, (12, 25))
        kind, cents = ("resident_pension", "employee_pension")[int(w.pop.benefit[i])], int(w.pop.cents[i])
        for m in (dm - 1, dm):
            w.skips.add((i, m))
            w.pay(i, kind, m, cents, paid_on=cal.pay_day(dm + 1))
        w.lawful_case("arrears_after_death", i, "deceased_payment: arrears for the month before death and "
                      "the month of death posted after death")
    for _ in range(w.per_variant()):
        dm = w.randint(min(2, m_n - 3), m_n - 3)
        i, death, rows = _dies(w, "conflicting_death_record_rejected", dm, (5, 25))
        w.death_conflicts.append((rows[0], death - w.randint(50, 70)))
        w.lawful_case("conflicting_death_record_rejected", i, "deceased_payment: the same death record "
                      "re-delivered later with an earlier date is a conflict, rejected; the first stands")
    for _ in range(w.per_variant()):
        i, death, _ = _dies(w, "withdrawal_after_death", w.randint(0, m_n - 2), (3, 25))
        for _k in range(w.randint(1, 3)):
            w.event(i, w.at(min(death + w.randint(1, 45), end)), "withdrawal", w.randint(1, 10) * 10000)
        w.lawful_case("withdrawal_after_death", i, "card_after_death: heirs withdrawing after death")
    for _ in range(w.per_variant()):
        i, death, _ = _dies(w, "inpatient_admitted_before_death", w.randint(0, m_n - 2), (5, 20))
        w.event(i, w.at(min(death + w.randint(1, 20), end)), "medical", w.randint(200000, 900000),
                admitted=death - w.randint(3, 15))
        w.event(i, w.at(min(death + w.randint(1, 20), end)), "medical", w.randint(50000, 300000),
                admitted=death)
        w.lawful_case("inpatient_admitted_before_death", i, "card_after_death: inpatient settlements after "
                      "death, admitted on or before the death date")
    for _ in range(w.per_variant()):
        i, death, _ = _dies(w, "events_on_death_day", w.randint(0, m_n - 2), (3, 25))
        w.event(i, w.at(death, hour=9.5), "pharmacy", w.randint(1000, 20000))
        w.event(i, w.at(death, hour=23.5), "medical", w.randint(5000, 90000), utc=True)  # 15:30 UTC
        w.lawful_case("events_on_death_day", i, "card_after_death: events on the day of death (one "
                      "written in UTC, 23:30 Beijing)")
    for _ in range(w.per_variant()):
        i, death, _ = _dies(w, "other_event_after_death", w.randint(0, m_n - 2), (3, 25))
        w.event(i, w.at(min(death + w.randint(1, 30), end)), "other", w.randint(500, 5000))
        w.lawful_case("other_event_after_death", i, "card_after_death: an 'other' event is not a flagged type")


def _custody(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    for sentence in ("probation", "surveillance", "parole", "outside_prison", "pretrial"):
        for _ in range(w.per_variant()):
            i = w.pension(f"lawful/sentence_{sentence}")
            sm = w.randint(0, m_n - 3)
            start = cal.day(sm, w.randint(1, 28))
            end = cal.day(w.randint(sm + 1, m_n - 2), w.randint(1, 28)) if w.rng.random() < 0.5 else np.datetime64("NaT")
            w.custody(i, sentence, start, end)
            w.lawful_case(f"sentence_{sentence}", i, f"incarcerated_payment: {sentence} is not custody; "
                          "the pension is still paid")
    for _ in range(w.per_variant()):
        i = w.pension("lawful/custody_outside_window")
        sm = w.randint(0, m_n - 4)
        em = w.randint(sm + 1, m_n - 2)
        start, end = cal.day(sm, w.randint(1, 28)), cal.day(em, w.randint(1, 28))
        for m in range(sm + 1, em + 1):
            w.skips.add((i, m))
        w.custody(i, "custodial", start, end)
        w.blackouts.append((i, start, end))
        w.lawful_case("custody_outside_window", i, f"incarcerated_payment: custody {start}..{end}; paid "
                      "for the start month and after the release month only")
    for _ in range(w.per_variant()):
        kind = UNEMP if w.rng.random() < 0.5 else INJURY
        i = w.person("lawful/custody_not_a_pension", kind, (30, 55))
        start = cal.day(w.randint(0, m_n - 3), w.randint(1, 28))
        w.custody(i, "custodial", start)
        w.blackouts.append((i, start, cal.end))
        w.lawful_case("custody_not_a_pension", i, "incarcerated_payment: unemployment or work injury "
                      "benefit during custody is not a pension")


def _schemes(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    for _ in range(w.per_variant()):
        k = w.randint(0, m_n - 2)
        i = w.person("lawful/scheme_switch", EMP, (62, 85), first=k + 1,
                     c0=cal.first_day - w.randint(15, 90))
        w.pop.recip_month[i] = 0
        res = int(amounts_for(w.rng, np.array([RES]))[0])
        for m in range(0, k + 1):
            w.pay(i, "resident_pension", m, res)
        w.lawful_case("scheme_switch", i, f"dual_benefit: resident pension to {cal.period(k)}, "
                      "employee pension from the next month")
    for _ in range(w.per_variant()):
        k = w.randint(0, m_n - 2)
        i = w.person("lawful/unemployment_then_pension", UNEMP, (61, 64), last=k)
        kind = int(w.rng.integers(0, 2))
        cents = int(amounts_for(w.rng, np.array([kind]))[0])
        for m in range(k + 1, m_n):
            w.pay(i, ("resident_pension", "employee_pension")[kind], m, cents)
        w.lawful_case("unemployment_then_pension", i, "dual_benefit: unemployment ends the month before "
                      "the pension starts")
    for _ in range(w.per_variant()):
        i = w.person("lawful/pension_and_work_injury", EMP, (58, 64))
        cents = int(amounts_for(w.rng, np.array([INJURY]))[0])
        for m in range(m_n):
            w.pay(i, "work_injury", m, cents)
        w.lawful_case("pension_and_work_injury", i, "dual_benefit: work injury benefit with a pension is "
                      "not a listed combination")


def _accounts(w: World) -> None:
    p, m_n = w.pop, w.cal.months
    pairs = np.flatnonzero((p.spouse >= 0) & (np.arange(p.n) < p.spouse) & np.isnat(p.death))
    pairs = pairs[np.isnat(p.death[p.spouse[pairs]])]
    for a in w.rng.permutation(pairs)[: w.per_variant()]:
        for i in (int(a), int(p.spouse[a])):
            w.lawful_case("spouses_share_account", i, f"shared_account: spouses share account {p.account[a]}")
    for _ in range(w.per_variant()):
        a = w.randint(0, m_n - 3)
        b = w.randint(a, m_n - 3)
        members = _account_group(w, "lawful/account_never_three_at_once",
                                 [(a, b), (b + 1, w.randint(b + 1, m_n - 1))])
        for i in members:
            w.lawful_case("account_never_three_at_once", i, "shared_account: three people used one account, "
                          "never three in the same period")


def _ages(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    for _ in range(w.per_variant()):
        i = w.person("lawful/centenarian", RES, (100, 106))
        w.lawful_case("centenarian", i, "underage_pension: a resident pensioner aged 100 or more")
    for _ in range(w.per_variant()):
        k = w.randint(1, m_n - 1)
        bday = to_date(cal.first(k))
        i = w.person("lawful/turns_60_on_period_first_day", RES,
                     birth=np.datetime64(bday.replace(year=bday.year - 60)), first=k)
        w.lawful_case("turns_60_on_period_first_day", i, f"underage_pension: 60th birthday on {bday}, the "
                      "first day of the first paid period")
    for n in range(max(2, w.per_variant())):
        male = n % 2 == 1
        i = w.person("lawful/employee_pension_early_floor", EMP, (50.2, 54) if male else (45.2, 49), male=male)
        w.lawful_case("employee_pension_early_floor", i, "underage_pension: employee pension at "
                      f"{'50-54 (man)' if male else '45-49 (woman)'}, above the early-retirement floor")


def _certification(w: World) -> None:
    cal, m_n = w.cal, w.cal.months
    for n in range(w.per_variant()):
        first = w.randint(max(0, m_n - 12), m_n - 1) if n % 2 else max(0, m_n - 12)
        i = w.pension("lawful/never_certified_within_12_months", first=first, c0="none", cert_events=False)
        assert w.overdue_cents(i, []) == 0
        w.lawful_case("never_certified_within_12_months", i, "certification_overdue: no certification on "
                      f"record, first paid period {cal.period(first)}: within 12 months of it")
    for _ in range(w.per_variant(0.5)):
        e = w.edge_month()
        c0 = cal.last(e - 12)
        i = w.pension("lawful/certified_exactly_12_months_before", c0=c0, cert_events=False)
        again = cal.first(e + 1) + 4
        w.event(i, w.at(again), "certification", 0)
        keep_certified(w, i, again)
        certs = [c0] + w.event_days(i)
        assert w.overdue_cents(i, certs) == 0
        w.lawful_case("certified_exactly_12_months_before", i, f"certification_overdue: certified {c0}; "
                      f"period {cal.period(e)} ends exactly 12 months later (not more)")
    for r in cal.recipient_months()[:1]:
        for _ in range(w.per_variant(0.5)):
            c0 = cal.day(r - 12, w.randint(5, 20))
            again = cal.day(0, w.randint(5, 25))
            i = w.pension("lawful/recertification_redelivered", c0=c0, cert_events=False)
            w.recipient_updates.append((r, i, {"last_certified_on": again}))
            keep_certified(w, i, again)
            events = w.event_days(i)
            assert w.overdue_cents(i, [again] + events) == 0 and w.overdue_cents(i, [c0] + events) > 0
            w.lawful_case("recertification_redelivered", i, f"certification_overdue: certified {again}, "
                          f"recorded in the recipients re-delivered on {cal.first(r)} (upsert: it stands)")


def plant_outliers(w: World) -> None:
    """About 0.3% of people behave unusually without breaking a rule (their events drawn in bulk)."""
    p, cal, rng, m_n = w.pop, w.cal, w.rng, w.cal.months
    cand = np.flatnonzero(~p.planted & (np.arange(p.n) < p.reserved_from) & np.isnat(p.death)
                          & (p.first == 0) & (p.last == m_n - 1) & (p.spouse < 0))
    n = max(3, int(round(0.003 * p.n)))
    chosen = rng.choice(cand, n, replace=False)
    night, burst, inflated = chosen[0::3], chosen[1::3], chosen[2::3]
    night_county = len(county_codes(w.regions)) - len(NIGHT_COUNTIES)
    home = w.regions.village_county[p.village[burst]]
    pharmacy = home * 10000 + 1000 + rng.integers(0, 80, len(burst))  # each one's pharmacy
    et = {t: ET[t] for t in ("pharmacy", "other", "medical", "withdrawal")}
    for m in range(max(0, m_n - 3), m_n):
        who = np.repeat(night, rng.integers(8, 16, len(night)))
        k = len(who)
        etype = np.array(list(et.values()), dtype=np.int8)[rng.integers(0, len(et), k)]
        cents = np.where(etype == et["withdrawal"], rng.integers(20, 101, k) * 10000, rng.integers(2000, 60001, k))
        county = night_county + rng.integers(0, len(NIGHT_COUNTIES), k)
        w.events(who, _times(rng, cal.first(m), cal.days_in(m), k, (0, 4.99)), etype, cents, county,
                 institution(rng, county, etype))
        reps = rng.integers(30, 41, len(burst))
        who, k = np.repeat(burst, reps), int(reps.sum())
        w.events(who, _times(rng, cal.first(m), cal.days_in(m), k, (8, 20)), np.full(k, et["pharmacy"], np.int8),
                 rng.integers(3000, 30001, k), np.repeat(home, reps), np.repeat(pharmacy, reps))
    p.cents[inflated] *= 5
    for people, kind in ((night, "night_far_from_home"), (burst, "pharmacy_burst"), (inflated, "inflated_amount")):
        w.outliers += [(int(i), kind) for i in people]


def _times(rng: np.random.Generator, first: np.datetime64, days: int, n: int, hours: tuple[float, float]
           ) -> np.ndarray:
    """n Beijing times in a month of `days` days from `first`, between the given hours."""
    day = first + rng.integers(0, days, n).astype("timedelta64[D]")
    return day.astype("datetime64[s]") + (rng.uniform(*hours, n) * 3600).astype(np.int64).astype("timedelta64[s]")
