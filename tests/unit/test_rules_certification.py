"""Contract §4, `certification_overdue`: a recurring benefit paid for a period whose last day is more than 12
calendar months after the person's latest certification on or before that day (`last_certified_on` of any
recipients delivery, or a `certification` card event); with no certification on record at all the 12 months
count from the first day of the first paid recurring period.

One small city, loaded once per database; each test reads `risk alerts export`.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from rulecity import City, assert_flags, rules_of, total, warehouse


def monthly(c: City, p, benefit: str, periods: list[str], amounts: list[str] | str, day: str | None = None) -> dict:
    """One payment per period, delivered on `day` or on the 10th of the period's month."""
    amounts = [amounts] * len(periods) if isinstance(amounts, str) else amounts
    return {per: c.pay(day or f"{per}-10", p, benefit, per, amt, paid_on=f"{per}-10")
            for per, amt in zip(periods, amounts, strict=True)}


def build(c: City) -> NS:
    w = NS(city=c)

    # certified 2024-02-15: January 2025 ends within 12 months, February (ends 02-28) more than 12 after
    p = c.person("1950-01-05", "M", certified="2024-02-15")
    w.overdue = NS(p=p, cert=c.registered[p.person_id],
                   pay=monthly(c, p, "resident_pension", ["2025-01", "2025-02", "2025-03"],
                               ["110.00", "110.01", "110.02"]))

    # every recurring type counts
    p = c.person("1970-05-05", "F", certified="2023-11-30")
    w.other_recurring = NS(p=p, unemp=monthly(c, p, "unemployment", ["2025-01"], "1650.00"),
                           inj=monthly(c, p, "work_injury", ["2025-01"], "720.30"))

    # exactly 12 months: certified 2024-04-30, April 2025 ends on 2025-04-30
    p = c.person("1950-02-06", "F", certified="2024-04-30")
    w.exactly_12 = NS(p=p, pay=monthly(c, p, "resident_pension", ["2025-02", "2025-03", "2025-04"], "120.00"))
    # certified at the end of 2023: December 2024 ends exactly 12 months later, January 2025 more
    p = c.person("1950-03-07", "M", certified="2023-12-31")
    w.year_end = NS(p=p, pay=monthly(c, p, "employee_pension", ["2024-12", "2025-01"], ["2100.00", "2100.01"],
                                     day="2025-01-10"))

    # a certification card event renews
    p = c.person("1950-04-08", "F", certified="2023-06-01")
    w.event_renews = NS(p=p, event=c.card("2025-03-01", p, "2025-02-20T10:00:00+08:00", "certification"),
                        pay=monthly(c, p, "resident_pension", ["2025-01", "2025-02", "2025-03"],
                                    ["130.00", "130.01", "130.02"]))
    # ... on its Beijing day: 17:00 UTC on 28 February is 1 March in Beijing, too late for February
    p = c.person("1950-05-09", "M", certified="2023-06-01")
    w.event_beijing = NS(p=p, event=c.card("2025-03-01", p, "2025-02-28T17:00:00+00:00", "certification"),
                         pay=monthly(c, p, "resident_pension", ["2025-02", "2025-03"], ["140.00", "140.01"]))

    # a later recipients delivery with a newer last_certified_on renews from then on; earlier periods stay
    # judged by the older date, even when paid after the newer delivery
    p = c.person("1950-06-10", "F", certified="2023-10-10")
    w.redelivered = NS(p=p, old=c.registered[p.person_id],
                       new=c.recipient_row(p, "2025-04-01", certified="2025-03-25"),
                       pay=monthly(c, p, "resident_pension", ["2025-01", "2025-02", "2025-03", "2025-04"],
                                   ["150.00", "150.01", "150.02", "150.03"]),
                       late_arrears=c.pay("2025-05-10", p, "work_injury", "2025-02", "77.70"))

    # no certification on record at all: 12 months from the first day of the first paid recurring period
    p = c.person("1950-07-11", "M", certified=None)
    history = [f"2024-{m:02d}" for m in range(3, 13)]
    w.never = NS(p=p, pay={**monthly(c, p, "resident_pension", history, "160.00", day="2025-01-10"),
                           **monthly(c, p, "resident_pension", ["2025-01", "2025-02", "2025-03", "2025-04"],
                                     ["160.01", "160.02", "160.03", "160.04"])})
    # ... someone first paid recently is not overdue
    p = c.person("1950-08-12", "F", certified=None)
    w.never_recent = NS(p=p, pay=monthly(c, p, "resident_pension", ["2025-01", "2025-02", "2025-03"], "170.00"))
    return w


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"certification-{request.param}")
    with warehouse(request.param, folder) as url:
        w = build(City(folder))
        w.url = url
        w.alerts = w.city.run(url)
        yield w


def alert_of(world, p):
    found = world.alerts.get(("certification_overdue", p.person_id))
    assert found is not None, f"no certification_overdue alert for {p.person_id}; alerts: {sorted(world.alerts)}"
    return found


def test_certification_overdue_flags_periods_ending_more_than_12_months_after(world):
    s = world.overdue
    a = alert_of(world, s.p)
    assert_flags(a, total("110.01", "110.02"), [s.pay["2025-02"], s.pay["2025-03"]], lawful=[s.pay["2025-01"]])
    assert a.names(s.cert, flagged=False), "the last_certified_on behind the alert is not named"
    assert rules_of(world.alerts, s.p) == {"certification_overdue"}


def test_certification_overdue_counts_every_recurring_type(world):
    s = world.other_recurring
    assert_flags(alert_of(world, s.p), total("1650.00", "720.30"), [s.unemp["2025-01"], s.inj["2025-01"]])


def test_certification_overdue_never_at_exactly_12_months(world):
    assert rules_of(world.alerts, world.exactly_12.p) == set()
    s = world.year_end
    assert_flags(alert_of(world, s.p), "2100.01", [s.pay["2025-01"]], lawful=[s.pay["2024-12"]])


def test_certification_overdue_certification_card_event_renews(world):
    s = world.event_renews
    a = alert_of(world, s.p)
    assert_flags(a, "130.00", [s.pay["2025-01"]], lawful=[s.pay["2025-02"], s.pay["2025-03"]])


def test_certification_overdue_card_event_counts_on_its_beijing_day(world):
    s = world.event_beijing
    assert_flags(alert_of(world, s.p), "140.00", [s.pay["2025-02"]], lawful=[s.pay["2025-03"]])


def test_certification_overdue_newer_recipients_delivery_renews_only_from_then_on(world):
    s = world.redelivered
    a = alert_of(world, s.p)
    assert_flags(a, total("150.00", "150.01", "77.70"), [s.pay["2025-01"], s.pay["2025-02"], s.late_arrears],
                 lawful=[s.pay["2025-03"], s.pay["2025-04"]])
    assert a.names(s.old, flagged=False)


def test_certification_overdue_without_any_certification_counts_from_the_first_paid_period(world):
    """First paid period 2024-03: 12 months from 2024-03-01 end on 2025-03-01; March 2025 ends after it."""
    s = world.never
    lawful = [f for per, f in s.pay.items() if per < "2025-03"]
    assert_flags(alert_of(world, s.p), total("160.03", "160.04"), [s.pay["2025-03"], s.pay["2025-04"]],
                 lawful=lawful)


def test_certification_overdue_never_for_someone_first_paid_within_12_months(world):
    assert rules_of(world.alerts, world.never_recent.p) == set()


def test_certification_overdue_alert_stands_after_a_newer_certification_arrives(db_url, tmp_path):
    """Paid for January and February 2025 while last certified on 2023-10-10: overdue. A recipients delivery
    of 1 April saying the person certified on 2025-03-25 renews from March on; it does not make January and
    February lawful after the fact (their latest certification on or before their last day is 2023-10-10)."""
    c = City(tmp_path)
    p = c.person("1950-06-10", "F", certified="2023-10-10")
    jan = c.pay("2025-01-10", p, "resident_pension", "2025-01", "150.00")
    feb = c.pay("2025-02-10", p, "resident_pension", "2025-02", "150.01")
    before = c.run(db_url)[("certification_overdue", p.person_id)]
    assert_flags(before, "300.01", [jan, feb])

    c.recipient_row(p, "2025-04-01", certified="2025-03-25")
    apr = c.pay("2025-04-10", p, "resident_pension", "2025-04", "150.03")
    after = c.run(db_url).get(("certification_overdue", p.person_id))
    assert after is not None, "the overdue alert was withdrawn when a newer certification date arrived"
    assert after.alert_id == before.alert_id and after.first_seen == before.first_seen
    assert_flags(after, "300.01", [jan, feb], lawful=[apr])
