"""Contract §4, the rules about death: `deceased_payment` and `card_after_death`.

One small city holds a person per clause of "raise when" and "never raise for"; it is loaded once per
database (SQLite, PostgreSQL) and each test reads `risk alerts export` the way a supervisor would: which
(rule, person) alerts exist, their amount_at_risk to the fen, and that the evidence names each flagged fact
with its source file and line. Retroactive detection (a death record delivered months late) runs on a
warehouse of its own.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from rulecity import City, assert_flags, rules_of, total, warehouse


def build(c: City) -> NS:
    w = NS(city=c)

    # deceased_payment: months after the month of death are flagged, the death month and before are not
    p = c.person("1948-02-11", "F")
    w.after_month = NS(
        p=p,
        feb=c.pay("2025-02-10", p, "resident_pension", "2025-02", "1000.00"),
        mar=c.pay("2025-03-10", p, "resident_pension", "2025-03", "1000.01"),
        apr=c.pay("2025-04-10", p, "resident_pension", "2025-04", "1234.56"),
        may=c.pay("2025-05-10", p, "resident_pension", "2025-05", "1234.57"),
        death=c.death("2025-04-01", p, "2025-03-14", source="civil_affairs"),
    )

    # every recurring type counts: employee_pension, work_injury, unemployment
    p = c.person("1952-09-30", "M")
    w.employee = NS(p=p, death=c.death("2025-04-01", p, "2025-02-28"),
                    feb=c.pay("2025-02-10", p, "employee_pension", "2025-02", "3210.00"),
                    mar=c.pay("2025-03-10", p, "employee_pension", "2025-03", "3210.00"))
    p = c.person("1978-05-05", "M")
    w.other_recurring = NS(p=p, death=c.death("2025-04-01", p, "2025-02-20", source="health"),
                           injury=c.pay("2025-03-10", p, "work_injury", "2025-03", "512.30"),
                           unemployed=c.pay("2025-03-10", p, "unemployment", "2025-03", "1800.07"))

    # amounts are exact decimals: 0.1 + 0.2 + 1234567.89 is 1234568.19, to the fen
    p = c.person("1951-11-21", "F")
    w.fen = NS(p=p, death=c.death("2025-04-01", p, "2025-02-10"),
               pays=[c.pay("2025-03-10", p, "resident_pension", "2025-03", "0.1"),
                     c.pay("2025-04-10", p, "resident_pension", "2025-04", "0.2"),
                     c.pay("2025-05-10", p, "employee_pension", "2025-05", "1234567.89")])

    # the month of death itself, paid after death
    p = c.person("1946-12-01", "M")
    w.death_month = NS(p=p, death=c.death("2025-04-01", p, "2025-03-02"),
                       mar=c.pay("2025-03-10", p, "resident_pension", "2025-03", "210.00"))

    # arrears for periods up to the death month, posted after death
    p = c.person("1944-07-19", "F")
    w.arrears = NS(p=p, death=c.death("2025-05-01", p, "2025-04-20"),
                   payments=[c.pay("2025-05-10", p, "resident_pension", per, "198.00", paid_on="2025-05-08")
                             for per in ("2025-02", "2025-03", "2025-04")])

    # lump sums after death: funeral grant, survivor benefit, account inheritance (all lawful)
    p = c.person("1940-03-03", "M")
    w.lump_sums = NS(p=p, death=c.death("2025-04-01", p, "2025-03-05"),
                     funeral=c.pay("2025-04-10", p, "funeral_grant", "2025-04", "8000.00"),
                     survivor=c.pay("2025-04-10", p, "survivor_benefit", "2025-04", "12000.00"),
                     inheritance=c.pay("2025-05-10", p, "account_inheritance", "2025-05", "3456.78"))

    # death records disagree: the earliest date counts, whichever arrives first
    p = c.person("1949-01-21", "F")
    w.disagree = NS(
        p=p,
        late_date=c.death("2025-04-15", p, "2025-04-02", source="health"),
        early_date=c.death("2025-05-01", p, "2025-02-27", source="public_security"),
        feb=c.pay("2025-02-10", p, "resident_pension", "2025-02", "300.00"),
        mar=c.pay("2025-03-10", p, "resident_pension", "2025-03", "300.01"),
        apr=c.pay("2025-04-10", p, "resident_pension", "2025-04", "300.02"),
        card=c.card("2025-04-01", p, "2025-03-01T10:00:00+08:00", "pharmacy", "18.80"),
    )

    # a death record with the person's 15-digit legacy ID
    p = c.person("1947-08-08", "M")
    w.legacy = NS(p=p, death=c.death("2025-04-01", p, "2025-03-09", person_id=p.legacy15),
                  apr=c.pay("2025-04-10", p, "resident_pension", "2025-04", "150.50"),
                  card=c.card("2025-04-01", p, "2025-03-20T08:00:00+08:00", "transit", "2.00"))

    # a death record whose ID ends in a lowercase x
    p = c.person("1945-10-10", "F", check_x=True)
    assert p.person_id.endswith("X")
    w.lower_x = NS(p=p, death=c.death("2025-04-01", p, "2025-03-09", person_id=p.person_id[:17] + "x"),
                   apr=c.pay("2025-04-10", p, "resident_pension", "2025-04", "160.40"))

    # card_after_death: pharmacy, medical (outpatient), transit on days after death, with lawful events mixed in
    p = c.person("1943-04-04", "M")
    w.card_uses = NS(
        p=p, death=c.death("2025-04-01", p, "2025-03-16"),
        pharmacy=c.card("2025-04-01", p, "2025-03-17T09:00:00+08:00", "pharmacy", "35.50"),
        medical=c.card("2025-04-01", p, "2025-03-18T10:15:00+08:00", "medical", "120.00"),
        transit=c.card("2025-04-01", p, "2025-03-19T07:30:00+08:00", "transit", "2.00"),
        withdrawal=c.card("2025-04-01", p, "2025-03-20T11:00:00+08:00", "withdrawal", "500.00"),
        other=c.card("2025-04-01", p, "2025-03-21T11:00:00+08:00", "other", "9.99"),
        before=c.card("2025-04-01", p, "2025-03-15T11:00:00+08:00", "pharmacy", "66.60"),
    )

    # a certification after death: an alert with amount 0.00
    p = c.person("1941-06-06", "F")
    w.certification = NS(p=p, death=c.death("2025-04-01", p, "2025-03-16"),
                         event=c.card("2025-05-01", p, "2025-04-02T10:00:00+08:00", "certification", "0.00"))

    # withdrawals after death (heirs may withdraw)
    p = c.person("1942-02-02", "M")
    w.withdrawal = NS(p=p, death=c.death("2025-04-01", p, "2025-03-16"),
                      events=[c.card("2025-04-01", p, "2025-03-20T09:00:00+08:00", "withdrawal", "800.00"),
                              c.card("2025-05-01", p, "2025-04-20T09:00:00+08:00", "withdrawal", "1200.00")])

    # inpatient settlements after death admitted before / on the death date; one admitted after it
    p = c.person("1939-11-11", "M")
    w.inpatient = NS(p=p, death=c.death("2025-04-01", p, "2025-03-16"),
                     before=c.card("2025-04-01", p, "2025-03-25T16:00:00+08:00", "medical", "5000.00",
                                   admitted_on="2025-03-10"),
                     same_day=c.card("2025-04-01", p, "2025-03-26T16:00:00+08:00", "medical", "4321.00",
                                     admitted_on="2025-03-16"))
    p = c.person("1939-11-12", "F")
    w.inpatient_after = NS(p=p, death=c.death("2025-04-01", p, "2025-03-16"),
                           after=c.card("2025-04-01", p, "2025-03-25T16:00:00+08:00", "medical", "2500.25",
                                        admitted_on="2025-03-17"),
                           pharmacy=c.card("2025-04-01", p, "2025-03-25T17:00:00+08:00", "pharmacy", "40.00",
                                           admitted_on="2025-03-10"))

    # events on the day of death (Beijing), whatever offset they were recorded with
    p = c.person("1944-01-30", "F")
    w.death_day = NS(p=p, death=c.death("2025-04-01", p, "2025-03-16"),
                     events=[c.card("2025-04-01", p, "2025-03-16T00:00:00+08:00", "pharmacy", "11.00"),
                             c.card("2025-04-01", p, "2025-03-16T23:59:59+08:00", "medical", "22.00"),
                             c.card("2025-04-01", p, "2025-03-16T15:59:00+00:00", "transit", "2.00"),
                             c.card("2025-04-01", p, "2025-03-17T00:30:00+09:00", "pharmacy", "33.00")])

    # the day is Beijing time: 2025-03-16T20:00:00+00:00 is 2025-03-17 in Beijing
    p = c.person("1944-01-31", "M")
    w.beijing = NS(p=p, death=c.death("2025-04-01", p, "2025-03-16"),
                   utc_evening=c.card("2025-04-01", p, "2025-03-16T20:00:00+00:00", "pharmacy", "12.30"),
                   tokyo=c.card("2025-04-01", p, "2025-03-17T01:00:00+09:00", "transit", "3.00"),
                   new_york=c.card("2025-04-01", p, "2025-03-16T12:30:00-04:00", "medical", "45.00",
                                   county="110105000000"),
                   utc_same_day=c.card("2025-04-01", p, "2025-03-16T15:00:00+00:00", "pharmacy", "99.00"))
    return w


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"death-{request.param}")
    with warehouse(request.param, folder) as url:
        w = build(City(folder))
        w.url = url
        w.alerts = w.city.run(url)
        yield w


def alert_of(world, rule: str, scenario: NS):
    found = world.alerts.get((rule, scenario.p.person_id))
    assert found is not None, f"no {rule} alert for {scenario.p.person_id}; alerts: {sorted(world.alerts)}"
    return found


# ---------------------------------------------------------------- deceased_payment: raise when


def test_deceased_payment_flags_each_month_after_the_death_month(world):
    s = world.after_month
    a = alert_of(world, "deceased_payment", s)
    assert_flags(a, "2469.13", [s.apr, s.may], lawful=[s.feb, s.mar])
    assert a.names(s.death, flagged=False), "the death record behind the alert is not named in the evidence"
    assert rules_of(world.alerts, s.p) == {"deceased_payment"}


def test_deceased_payment_counts_every_recurring_type(world):
    s = world.employee
    assert_flags(alert_of(world, "deceased_payment", s), "3210.00", [s.mar], lawful=[s.feb])
    s = world.other_recurring
    assert_flags(alert_of(world, "deceased_payment", s), total("512.30", "1800.07"), [s.injury, s.unemployed])


def test_deceased_payment_amount_is_exact_to_the_fen(world):
    s = world.fen
    a = alert_of(world, "deceased_payment", s)
    assert_flags(a, "1234568.19", s.pays)
    assert [a.entry(f)["amount_at_risk"] for f in s.pays] == ["0.10", "0.20", "1234567.89"]


def test_deceased_payment_alert_carries_the_person_and_village(world):
    s = world.after_month
    a = alert_of(world, "deceased_payment", s)
    assert a.person_id == s.p.person_id and len(a.person_id) == 18
    assert a.village_code == "431102001001"
    assert a.severity in ("high", "medium", "low")
    assert a.first_seen in world.city.days


# ---------------------------------------------------------------- deceased_payment: never raise for


def test_deceased_payment_never_for_the_death_month_itself(world):
    assert ("deceased_payment", world.death_month.p.person_id) not in world.alerts
    assert rules_of(world.alerts, world.death_month.p) == set()


def test_deceased_payment_never_for_arrears_up_to_the_death_month_posted_after_death(world):
    assert rules_of(world.alerts, world.arrears.p) == set()


def test_deceased_payment_never_for_lump_sums_after_death(world):
    """funeral_grant, survivor_benefit and account_inheritance are legal after death (§2)."""
    assert rules_of(world.alerts, world.lump_sums.p) == set()


# ---------------------------------------------------------------- identity and disagreeing records


def test_deceased_payment_earliest_of_disagreeing_death_dates_counts(world):
    s = world.disagree
    a = alert_of(world, "deceased_payment", s)
    assert_flags(a, total("300.01", "300.02"), [s.mar, s.apr], lawful=[s.feb])
    assert a.names(s.early_date, flagged=False) and a.names(s.late_date, flagged=False)


def test_card_after_death_earliest_of_disagreeing_death_dates_counts(world):
    s = world.disagree
    assert_flags(alert_of(world, "card_after_death", s), "18.80", [s.card])


def test_death_record_with_a_legacy_15_digit_id_matches_the_person(world):
    s = world.legacy
    assert len(s.death.row["person_id"]) == 15
    a = alert_of(world, "deceased_payment", s)
    assert a.person_id == s.p.person_id
    assert_flags(a, "150.50", [s.apr])
    assert a.names(s.death, flagged=False)
    assert_flags(alert_of(world, "card_after_death", s), "2.00", [s.card])


def test_death_record_with_a_lowercase_x_matches_the_person(world):
    s = world.lower_x
    assert s.death.row["person_id"].endswith("x")
    a = alert_of(world, "deceased_payment", s)
    assert a.person_id == s.p.person_id and a.person_id.endswith("X")
    assert_flags(a, "160.40", [s.apr])


# ---------------------------------------------------------------- card_after_death: raise when


def test_card_after_death_flags_pharmacy_medical_and_transit_on_later_days(world):
    s = world.card_uses
    a = alert_of(world, "card_after_death", s)
    assert_flags(a, total("35.50", "120.00", "2.00"), [s.pharmacy, s.medical, s.transit],
                 lawful=[s.withdrawal, s.other, s.before])
    assert a.names(s.death, flagged=False)


def test_card_after_death_certification_raises_an_alert_of_zero(world):
    s = world.certification
    assert_flags(alert_of(world, "card_after_death", s), "0.00", [s.event])


def test_card_after_death_inpatient_admitted_after_death_is_flagged(world):
    """Only an inpatient `medical` settlement admitted on or before the death date is lawful; not a
    pharmacy purchase that carries an admission date, nor a stay admitted after death."""
    s = world.inpatient_after
    assert_flags(alert_of(world, "card_after_death", s), total("2500.25", "40.00"), [s.after, s.pharmacy])


def test_card_after_death_day_is_beijing_time(world):
    """20:00 UTC on 16 March is 04:00 on 17 March in Beijing: the day after death. 01:00 in Tokyo on the 17th
    is 00:00 in Beijing on the 17th; 12:30 in New York on the 16th is 00:30 on the 17th in Beijing."""
    s = world.beijing
    assert_flags(alert_of(world, "card_after_death", s), total("12.30", "3.00", "45.00"),
                 [s.utc_evening, s.tokyo, s.new_york], lawful=[s.utc_same_day])


# ---------------------------------------------------------------- card_after_death: never raise for


def test_card_after_death_never_for_withdrawals(world):
    assert rules_of(world.alerts, world.withdrawal.p) == set()


def test_card_after_death_never_for_inpatient_admitted_on_or_before_the_death_date(world):
    assert rules_of(world.alerts, world.inpatient.p) == set()


def test_card_after_death_never_for_events_on_the_day_of_death(world):
    """All four fall on 16 March in Beijing: 00:00 and 23:59:59 +08:00, 15:59 UTC, 00:30 +09:00 on the 17th."""
    assert rules_of(world.alerts, world.death_day.p) == set()


def test_card_after_death_never_for_other_events_or_before_death(world):
    s = world.card_uses
    a = alert_of(world, "card_after_death", s)
    assert not a.names(s.other, flagged=True) and not a.names(s.before, flagged=True)


# ---------------------------------------------------------------- retroactive, on a warehouse of its own


def test_death_record_delivered_months_later_flags_earlier_payments_and_card_uses(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1946-05-17", "M")
    bystander = c.person("1946-05-18", "F")
    mar = c.pay("2025-03-10", p, "resident_pension", "2025-03", "250.00")
    apr = c.pay("2025-04-10", p, "resident_pension", "2025-04", "250.01")
    may = c.pay("2025-05-10", p, "resident_pension", "2025-05", "250.02")
    c.pay("2025-05-10", bystander, "resident_pension", "2025-05", "250.02")
    card = c.card("2025-05-01", p, "2025-04-18T09:30:00+08:00", "pharmacy", "27.40")
    before = c.run(db_url)
    assert before == {}, f"no death is known yet, yet: {sorted(before)}"

    death = c.death("2025-09-01", p, "2025-03-22", reported_on="2025-08-28")
    found = c.run(db_url)
    assert {k for k in found} == {("deceased_payment", p.person_id), ("card_after_death", p.person_id)}
    paid = found[("deceased_payment", p.person_id)]
    assert_flags(paid, total("250.01", "250.02"), [apr, may], lawful=[mar])
    assert {e["delivery_day"] for e in paid.flagged} == {"2025-04-10", "2025-05-10"}
    assert paid.names(death, flagged=False)
    assert paid.first_seen == "2025-09-01"
    assert_flags(found[("card_after_death", p.person_id)], "27.40", [card])
