"""Contract §4, the rules about who is paid what: `incarcerated_payment`, `dual_benefit`, `duplicate_payment`,
`shared_account` and `underage_pension`.

One small city holds a person (or an account) per clause of "raise when" and "never raise for", loaded once per
database; each test reads `risk alerts export`: which (rule, person) alerts exist, their amount_at_risk to the
fen, and that the evidence names each flagged fact with its source file and line.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from rulecity import City, assert_flags, rules_of, total, warehouse

LAWFUL_SENTENCES = ("probation", "surveillance", "parole", "outside_prison", "pretrial")


def monthly(c: City, p, benefit: str, periods: list[str], amounts: list[str] | str, **kw) -> dict:
    """One payment per period, each delivered (and paid) on the 10th of its month."""
    amounts = [amounts] * len(periods) if isinstance(amounts, str) else amounts
    return {per: c.pay(f"{per}-10", p, benefit, per, amt, **kw)
            for per, amt in zip(periods, amounts, strict=True)}


def build(c: City) -> NS:
    w = NS(city=c)
    months = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]

    # ---------------- incarcerated_payment
    p = c.person("1955-03-03", "M")
    w.custody = NS(p=p, record=c.incarceration("2025-07-01", p, "custodial", "2025-02-15", "2025-05-20"),
                   pay=monthly(c, p, "resident_pension", months,
                               ["101.00", "102.00", "103.00", "104.00", "105.00", "106.00"]))
    p = c.person("1957-07-07", "F")
    w.ongoing = NS(p=p, record=c.incarceration("2025-02-12", p, "custodial", "2025-01-20"),
                   pay=monthly(c, p, "employee_pension", months[:5],
                               ["2001.00", "2002.00", "2003.00", "2004.00", "2005.55"]))
    p = c.person("1956-06-06", "M")
    w.custody_legacy = NS(p=p, record=c.incarceration("2025-03-01", p, "custodial", "2025-01-31", "2025-03-01",
                                                      person_id=p.legacy15),
                          pay=monthly(c, p, "resident_pension", months[:4], "150.00"))
    # the same sentence recorded twice, overlapping: each payment counts once
    p = c.person("1956-09-19", "F")
    w.custody_twice = NS(p=p, records=[c.incarceration("2025-07-01", p, "custodial", "2025-02-15", "2025-04-20"),
                                       c.incarceration("2025-07-10", p, "custodial", "2025-02-15", "2025-05-31")],
                         pay=monthly(c, p, "resident_pension", months[:6], "175.25"))
    # released in the month the sentence started: no month after the start is in custody
    p = c.person("1956-10-20", "M")
    w.custody_short = NS(p=p, record=c.incarceration("2025-07-01", p, "custodial", "2025-03-03", "2025-03-28"),
                         pay=monthly(c, p, "resident_pension", months[:6], "175.00"))
    w.lawful_sentence = {}
    for i, kind in enumerate(LAWFUL_SENTENCES):
        p = c.person(f"1954-0{i + 1}-15", "M" if i % 2 else "F")
        w.lawful_sentence[kind] = NS(p=p, record=c.incarceration("2025-02-12", p, kind, "2025-01-05"),
                                     pay=monthly(c, p, "resident_pension", months[:5], "170.00"))
    p = c.person("1978-08-18", "M")
    w.custody_not_pension = NS(p=p, record=c.incarceration("2025-02-12", p, "custodial", "2025-01-05"),
                               unemployed=monthly(c, p, "unemployment", months[:4], "1700.00"),
                               injury=monthly(c, p, "work_injury", months[:4], "600.00"))

    # ---------------- dual_benefit
    p = c.person("1958-01-01", "M")
    w.both_pensions = NS(p=p, res=monthly(c, p, "resident_pension", ["2025-03", "2025-04"], ["200.00", "200.01"]),
                         emp=monthly(c, p, "employee_pension", ["2025-02", "2025-03", "2025-04"], "3000.00"))
    p = c.person("1963-02-02", "F")
    w.unemployed_resident = NS(p=p, res=monthly(c, p, "resident_pension", ["2025-03", "2025-04"], "180.00"),
                               unemp=monthly(c, p, "unemployment", ["2025-02", "2025-03"], ["1500.00", "1500.50"]))
    p = c.person("1964-03-03", "M")
    w.unemployed_employee = NS(p=p, emp=monthly(c, p, "employee_pension", ["2025-04"], "2800.00"),
                               unemp=monthly(c, p, "unemployment", ["2025-04", "2025-05"], "1600.25"))
    p = c.person("1959-04-04", "F")
    w.all_three = NS(p=p, res=monthly(c, p, "resident_pension", ["2025-05"], "100.00"),
                     emp=monthly(c, p, "employee_pension", ["2025-05"], "2000.00"),
                     unemp=monthly(c, p, "unemployment", ["2025-05"], "1500.00"))
    p = c.person("1958-05-05", "M")
    w.switch_pensions = NS(p=p, res=monthly(c, p, "resident_pension", ["2025-02", "2025-03"], "190.00"),
                           emp=monthly(c, p, "employee_pension", ["2025-04", "2025-05"], "2900.00"))
    p = c.person("1963-06-06", "M")
    w.switch_unemployment = NS(p=p, unemp=monthly(c, p, "unemployment", ["2025-01", "2025-02"], "1500.00"),
                               emp=monthly(c, p, "employee_pension", ["2025-03", "2025-04"], "2700.00"))
    p = c.person("1957-09-09", "F")
    w.injury_and_pension = NS(p=p, res=monthly(c, p, "employee_pension", ["2025-03"], "2600.00"),
                              inj=monthly(c, p, "work_injury", ["2025-03"], "800.00"))

    # ---------------- duplicate_payment
    p = c.person("1951-10-10", "M")
    w.duplicates = NS(
        p=p,
        mar_first=c.pay("2025-03-10", p, "resident_pension", "2025-03", "300.00", paid_on="2025-03-10"),
        mar_again=c.pay("2025-04-10", p, "resident_pension", "2025-03", "300.00", paid_on="2025-03-20"),
        # three copies of April: earliest by paid_on, then payment_id, is DUP-B
        apr_a=c.pay("2025-05-10", p, "resident_pension", "2025-04", "333.33", paid_on="2025-04-12",
                    payment_id="DUP-A"),
        apr_c=c.pay("2025-04-10", p, "resident_pension", "2025-04", "322.22", paid_on="2025-04-10",
                    payment_id="DUP-C"),
        apr_b=c.pay("2025-04-10", p, "resident_pension", "2025-04", "311.11", paid_on="2025-04-10",
                    payment_id="DUP-B"),
        may=c.pay("2025-05-10", p, "resident_pension", "2025-05", "340.00"),
    )
    p = c.person("1938-12-12", "F")
    w.funeral_twice = NS(p=p, death=c.death("2025-04-01", p, "2025-03-20"),
                         first=c.pay("2025-04-10", p, "funeral_grant", "2025-04", "5000.00", paid_on="2025-04-08"),
                         again=c.pay("2025-05-10", p, "funeral_grant", "2025-05", "4800.00", paid_on="2025-05-06",
                                     account="62170000999999"))
    p = c.person("1937-11-11", "M")
    w.one_each = NS(p=p, death=c.death("2025-05-01", p, "2025-04-20"),
                    pay=monthly(c, p, "resident_pension", months[:4], "280.00"),
                    inj=monthly(c, p, "work_injury", months[:4], "500.00"),
                    funeral=c.pay("2025-05-10", p, "funeral_grant", "2025-04", "5000.00"),
                    survivor=c.pay("2025-05-10", p, "survivor_benefit", "2025-04", "9000.00"),
                    inheritance=c.pay("2025-05-10", p, "account_inheritance", "2025-04", "1234.00"))

    # ---------------- shared_account
    shared = "6228480000000000001"
    x, y, z = c.person("1950-01-11", "M"), c.person("1950-02-12", "F"), c.person("1950-03-13", "M")
    w.shared = NS(
        account=shared, x=x, y=y, z=z,
        x_mar=c.pay("2025-03-10", x, "resident_pension", "2025-03", "200.00", account=shared),
        x_mar_own=c.pay("2025-03-10", x, "work_injury", "2025-03", "999.00"),
        y_mar=c.pay("2025-03-10", y, "resident_pension", "2025-03", "210.00", account=shared),
        y_mar_injury=c.pay("2025-03-10", y, "work_injury", "2025-03", "50.05", account=shared),
        z_mar=c.pay("2025-04-10", z, "resident_pension", "2025-03", "220.00", account=shared, paid_on="2025-04-02"),
        # April: only x and y use the account, so April is not shared by three
        x_apr=c.pay("2025-04-10", x, "resident_pension", "2025-04", "200.00", account=shared),
        y_apr=c.pay("2025-04-10", y, "resident_pension", "2025-04", "210.00", account=shared),
        z_apr=c.pay("2025-04-10", z, "resident_pension", "2025-04", "220.00"),
    )
    couple = "6228480000000000002"
    h, s = c.person("1949-05-05", "M", account=couple), c.person("1951-06-06", "F", account=couple)
    w.spouses = NS(h=h, s=s, pay=[monthly(c, h, "resident_pension", months[:4], "200.00"),
                                  monthly(c, h, "work_injury", months[:2], "80.00"),
                                  monthly(c, s, "resident_pension", months[:4], "200.00")])

    # ---------------- underage_pension
    p = c.person("1965-04-01", "F")  # 60 on 2025-04-01
    w.resident_at_60 = NS(p=p, pay=monthly(c, p, "resident_pension", ["2025-02", "2025-03", "2025-04", "2025-05"],
                                           ["90.00", "90.01", "90.02", "90.03"]))
    p = c.person("1965-04-02", "M")  # 60 on 2025-04-02: April's first day is still before it
    w.resident_day_after = NS(p=p, pay=monthly(c, p, "resident_pension", ["2025-04", "2025-05"], "95.00"))
    p = c.person("1975-06-20", "F")  # 50: old enough for an employee pension, not for the resident one
    w.resident_woman_50 = NS(p=p, pay=monthly(c, p, "resident_pension", ["2025-03"], "88.00"))
    p = c.person("1980-04-01", "F")  # 45 on 2025-04-01
    w.employee_woman_45 = NS(p=p, pay=monthly(c, p, "employee_pension", ["2025-03", "2025-04"],
                                              ["1800.00", "1800.01"]))
    p = c.person("1975-04-01", "M")  # 50 on 2025-04-01
    w.employee_man_50 = NS(p=p, pay=monthly(c, p, "employee_pension", ["2025-03", "2025-04"],
                                            ["2500.00", "2500.01"]))
    p = c.person("1980-04-01", "M")  # 45: a man is not old enough
    w.employee_man_45 = NS(p=p, pay=monthly(c, p, "employee_pension", ["2025-04"], "2400.00"))
    p = c.person("1920-01-01", "F")
    q = c.person("1925-03-01", "M")  # 100 on 2025-03-01
    w.centenarians = NS(people=[p, q], pay=[monthly(c, p, "resident_pension", months[:3], "300.00"),
                                            monthly(c, p, "employee_pension", ["2025-04"], "3000.00"),
                                            monthly(c, q, "resident_pension", months[1:4], "300.00")])
    return w


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"payments-{request.param}")
    with warehouse(request.param, folder) as url:
        w = build(City(folder))
        w.url = url
        w.alerts = w.city.run(url)
        yield w


def alert_of(world, rule: str, p):
    found = world.alerts.get((rule, p.person_id))
    assert found is not None, f"no {rule} alert for {p.person_id}; alerts: {sorted(world.alerts)}"
    return found


# ---------------------------------------------------------------- incarcerated_payment


def test_incarcerated_payment_flags_month_after_start_through_release_month(world):
    s = world.custody
    a = alert_of(world, "incarcerated_payment", s.p)
    pay = s.pay
    assert_flags(a, total("103.00", "104.00", "105.00"), [pay["2025-03"], pay["2025-04"], pay["2025-05"]],
                 lawful=[pay["2025-01"], pay["2025-02"], pay["2025-06"]])
    assert a.names(s.record, flagged=False), "the custody record is not named in the evidence"
    assert rules_of(world.alerts, s.p) == {"incarcerated_payment"}


def test_incarcerated_payment_never_for_the_start_month_or_after_release(world):
    s = world.custody
    a = alert_of(world, "incarcerated_payment", s.p)
    for lawful in ("2025-01", "2025-02", "2025-06"):
        assert not a.names(s.pay[lawful], flagged=None), f"{lawful} is outside the custody window"


def test_incarcerated_payment_ongoing_sentence_flags_every_month_after_start(world):
    s = world.ongoing
    assert_flags(alert_of(world, "incarcerated_payment", s.p), total("2002.00", "2003.00", "2004.00", "2005.55"),
                 [s.pay[m] for m in ("2025-02", "2025-03", "2025-04", "2025-05")], lawful=[s.pay["2025-01"]])


def test_incarcerated_payment_record_with_a_legacy_id_matches(world):
    """Start 31 January, release 1 March: February and March are in custody."""
    s = world.custody_legacy
    assert len(s.record.row["person_id"]) == 15
    assert_flags(alert_of(world, "incarcerated_payment", s.p), "300.00", [s.pay["2025-02"], s.pay["2025-03"]],
                 lawful=[s.pay["2025-01"], s.pay["2025-04"]])


def test_incarcerated_payment_overlapping_custody_records_count_each_payment_once(world):
    s = world.custody_twice
    a = alert_of(world, "incarcerated_payment", s.p)
    assert_flags(a, total("175.25", "175.25", "175.25"), [s.pay["2025-03"], s.pay["2025-04"], s.pay["2025-05"]],
                 lawful=[s.pay["2025-02"], s.pay["2025-06"]])
    assert all(a.names(r, flagged=False) for r in s.records)


def test_incarcerated_payment_never_when_released_in_the_month_of_start(world):
    assert rules_of(world.alerts, world.custody_short.p) == set()


@pytest.mark.parametrize("sentence", LAWFUL_SENTENCES)
def test_incarcerated_payment_never_for_non_custodial_sentences(world, sentence):
    assert rules_of(world.alerts, world.lawful_sentence[sentence].p) == set()


def test_incarcerated_payment_only_pensions_not_unemployment_or_work_injury(world):
    assert rules_of(world.alerts, world.custody_not_pension.p) == set()


# ---------------------------------------------------------------- dual_benefit


def test_dual_benefit_both_pensions_puts_the_resident_amounts_at_risk(world):
    s = world.both_pensions
    a = alert_of(world, "dual_benefit", s.p)
    assert a.amount_at_risk == total("200.00", "200.01")
    for per in ("2025-03", "2025-04"):
        assert a.names(s.res[per], flagged=True)
        assert a.entry(s.res[per])["amount_at_risk"] == s.res[per].row["amount"]
        assert a.names(s.emp[per], flagged=None), "the employee pension of an overlapping month is not named"
        assert a.entry(s.emp[per])["amount_at_risk"] == "0.00"
    assert not a.names(s.emp["2025-02"], flagged=None), "February had one pension only"
    assert rules_of(world.alerts, s.p) == {"dual_benefit"}


def test_dual_benefit_unemployment_with_resident_pension_puts_unemployment_at_risk(world):
    s = world.unemployed_resident
    a = alert_of(world, "dual_benefit", s.p)
    assert a.amount_at_risk == "1500.50"
    assert a.names(s.unemp["2025-03"], flagged=True) and a.names(s.res["2025-03"], flagged=None)
    assert not a.names(s.unemp["2025-02"], flagged=None) and not a.names(s.res["2025-04"], flagged=None)


def test_dual_benefit_unemployment_with_employee_pension_puts_unemployment_at_risk(world):
    s = world.unemployed_employee
    a = alert_of(world, "dual_benefit", s.p)
    assert a.amount_at_risk == "1600.25"
    assert a.names(s.unemp["2025-04"], flagged=True) and a.entry(s.unemp["2025-04"])["amount_at_risk"] == "1600.25"
    assert not a.names(s.unemp["2025-05"], flagged=None)


def test_dual_benefit_all_three_in_one_month_counts_resident_and_unemployment(world):
    s = world.all_three
    assert alert_of(world, "dual_benefit", s.p).amount_at_risk == total("100.00", "1500.00")


def test_dual_benefit_never_for_switching_pension_schemes_without_overlap(world):
    assert rules_of(world.alerts, world.switch_pensions.p) == set()


def test_dual_benefit_never_for_unemployment_ending_before_the_pension(world):
    assert rules_of(world.alerts, world.switch_unemployment.p) == set()


def test_dual_benefit_never_for_work_injury_with_a_pension(world):
    assert rules_of(world.alerts, world.injury_and_pension.p) == set()


# ---------------------------------------------------------------- duplicate_payment


def test_duplicate_payment_all_but_the_earliest_by_paid_on_then_payment_id(world):
    s = world.duplicates
    a = alert_of(world, "duplicate_payment", s.p)
    # March: the copy paid 03-20 repeats the one paid 03-10; April: DUP-B (04-10, B < C) is the earliest
    assert a.amount_at_risk == total("300.00", "333.33", "322.22")
    for f in (s.mar_again, s.apr_a, s.apr_c):
        assert a.names(f, flagged=True) and a.entry(f)["amount_at_risk"] == f.row["amount"]
    for f in (s.mar_first, s.apr_b):
        assert a.names(f, flagged=None) and a.entry(f)["amount_at_risk"] == "0.00"
    assert not a.names(s.may, flagged=None), "May was paid once"
    assert rules_of(world.alerts, s.p) == {"duplicate_payment"}


def test_duplicate_payment_funeral_grant_twice_across_schemes(world):
    s = world.funeral_twice
    a = alert_of(world, "duplicate_payment", s.p)
    assert a.amount_at_risk == "4800.00"
    assert a.names(s.again, flagged=True) and a.names(s.first, flagged=None)
    assert a.entry(s.first)["amount_at_risk"] == "0.00"
    assert rules_of(world.alerts, s.p) == {"duplicate_payment"}


def test_duplicate_payment_never_for_one_payment_each(world):
    """One payment per type and period, one funeral grant, one survivor benefit, one inheritance."""
    assert rules_of(world.alerts, world.one_each.p) == set()


# ---------------------------------------------------------------- shared_account


def test_shared_account_three_people_one_account_one_period(world):
    s = world.shared
    ax = alert_of(world, "shared_account", s.x)
    assert_flags(ax, "200.00", [s.x_mar], lawful=[s.x_mar_own, s.x_apr])
    assert_flags(alert_of(world, "shared_account", s.y), total("210.00", "50.05"), [s.y_mar, s.y_mar_injury],
                 lawful=[s.y_apr])
    assert_flags(alert_of(world, "shared_account", s.z), "220.00", [s.z_mar], lawful=[s.z_apr])
    for p in (s.x, s.y, s.z):
        assert rules_of(world.alerts, p) == {"shared_account"}


def test_shared_account_never_for_two_people_sharing_one_account(world):
    s = world.spouses
    assert rules_of(world.alerts, s.h) == set() and rules_of(world.alerts, s.s) == set()


# ---------------------------------------------------------------- underage_pension


def test_underage_pension_resident_at_59_is_flagged_and_the_60th_birthday_month_lawful(world):
    s = world.resident_at_60
    a = alert_of(world, "underage_pension", s.p)
    assert_flags(a, total("90.00", "90.01"), [s.pay["2025-02"], s.pay["2025-03"]],
                 lawful=[s.pay["2025-04"], s.pay["2025-05"]])
    assert rules_of(world.alerts, s.p) == {"underage_pension"}


def test_underage_pension_month_starting_the_day_before_the_60th_birthday_is_flagged(world):
    s = world.resident_day_after
    assert_flags(alert_of(world, "underage_pension", s.p), "95.00", [s.pay["2025-04"]], lawful=[s.pay["2025-05"]])


def test_underage_pension_resident_pension_needs_60_whatever_the_gender(world):
    s = world.resident_woman_50
    assert_flags(alert_of(world, "underage_pension", s.p), "88.00", [s.pay["2025-03"]])


def test_underage_pension_employee_woman_before_45(world):
    s = world.employee_woman_45
    assert_flags(alert_of(world, "underage_pension", s.p), "1800.00", [s.pay["2025-03"]], lawful=[s.pay["2025-04"]])


def test_underage_pension_employee_man_before_50(world):
    s = world.employee_man_50
    assert_flags(alert_of(world, "underage_pension", s.p), "2500.00", [s.pay["2025-03"]], lawful=[s.pay["2025-04"]])
    s = world.employee_man_45
    assert_flags(alert_of(world, "underage_pension", s.p), "2400.00", [s.pay["2025-04"]])


def test_underage_pension_never_for_pensioners_aged_100_or_more(world):
    for p in world.centenarians.people:
        assert rules_of(world.alerts, p) == set()
