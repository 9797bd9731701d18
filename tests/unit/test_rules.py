"""Contract §4-§5, the life of an alert: one alert per (rule, person) however many facts; detection is
retroactive; new evidence on a later day extends the open alert (same alert_id, its amount grows); running
detection again, or loading a day again, changes nothing; an older day loaded after a newer one ends in the
same alerts (apart from first_seen). Each test has a warehouse of its own, on SQLite and PostgreSQL.

The rules one by one are in test_rules_death.py, test_rules_payments.py and test_rules_certification.py.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from rulecity import City, alerts, assert_flags, total, warehouse

WITHOUT_FIRST_SEEN = ("alert_id", "rule", "person_id", "village_code", "severity", "score", "amount_at_risk",
                      "status", "evidence")


def comparable(found) -> dict:
    return {k: {c: a.raw[c] for c in WITHOUT_FIRST_SEEN} for k, a in found.items()}


def test_one_alert_per_rule_and_person_however_many_facts(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1947-03-03", "F")
    first = c.death("2025-04-01", p, "2025-02-10", source="health")
    second = c.death("2025-06-15", p, "2025-02-11", source="civil_affairs")
    paid = [c.pay(f"2025-{m:02d}-10", p, "resident_pension", f"2025-{m:02d}", f"2{m:02d}.00") for m in range(3, 9)]
    cards = [c.card("2025-05-01", p, "2025-04-03T10:00:00+08:00", "pharmacy", "15.00"),
             c.card("2025-07-01", p, "2025-06-03T10:00:00+08:00", "transit", "2.50")]
    found = c.run(db_url)
    assert set(found) == {("deceased_payment", p.person_id), ("card_after_death", p.person_id)}
    a = found[("deceased_payment", p.person_id)]
    assert_flags(a, total(*(f.row["amount"] for f in paid)), paid)
    assert a.names(first, flagged=False) and a.names(second, flagged=False)
    assert_flags(found[("card_after_death", p.person_id)], "17.50", cards)
    assert found[("deceased_payment", p.person_id)].alert_id != found[("card_after_death", p.person_id)].alert_id


def test_running_detect_again_or_loading_a_day_again_changes_nothing(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1946-04-04", "M")
    c.death("2025-04-01", p, "2025-02-10")
    c.pay("2025-03-10", p, "resident_pension", "2025-03", "123.45")
    q = c.person("1970-01-01", "F")
    c.pay("2025-03-10", q, "resident_pension", "2025-03", "99.99")
    before = c.run(db_url)
    assert set(before) == {("deceased_payment", p.person_id), ("underage_pension", q.person_id)}
    c.detect(db_url)
    assert alerts(db_url) == before
    c.load(db_url, ["2025-03-10", "2025-04-01"])  # the same days again: every row is a re-delivery
    c.detect(db_url)
    again = alerts(db_url)
    assert {k: a.raw for k, a in again.items()} == {k: a.raw for k, a in before.items()}


def test_new_evidence_on_a_later_day_extends_the_same_alert(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1945-05-05", "F")
    death = c.death("2025-05-01", p, "2025-03-31")
    apr = c.pay("2025-04-10", p, "employee_pension", "2025-04", "2500.10")
    first = c.run(db_url)[("deceased_payment", p.person_id)]
    assert_flags(first, "2500.10", [apr])
    assert first.first_seen == "2025-05-01"

    may = c.pay("2025-05-10", p, "employee_pension", "2025-05", "2500.20")
    jun = c.pay("2025-06-10", p, "employee_pension", "2025-06", "2500.30")
    found = c.run(db_url)
    assert [k for k in found] == [("deceased_payment", p.person_id)]
    later = found[("deceased_payment", p.person_id)]
    assert later.alert_id == first.alert_id
    assert later.first_seen == "2025-05-01", "extending an alert must not move the day it was first raised"
    assert later.status == first.status
    assert_flags(later, total("2500.10", "2500.20", "2500.30"), [apr, may, jun])
    assert later.names(death, flagged=False)


def test_custody_record_delivered_late_flags_earlier_payments(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1955-06-06", "M")
    pay = {m: c.pay(f"2025-{m:02d}-10", p, "resident_pension", f"2025-{m:02d}", f"3{m:02d}.00") for m in range(2, 7)}
    assert c.run(db_url) == {}
    record = c.incarceration("2025-09-01", p, "custodial", "2025-02-20", "2025-04-30")
    found = c.run(db_url)
    assert set(found) == {("incarcerated_payment", p.person_id)}
    a = found[("incarcerated_payment", p.person_id)]
    assert_flags(a, total("303.00", "304.00"), [pay[3], pay[4]], lawful=[pay[2], pay[5], pay[6]])
    assert a.names(record, flagged=False)
    assert a.first_seen == "2025-09-01"


def build_backfill(c: City):
    """Two deliveries that disagree on PAY-1 (append-only: the earliest delivery day stands, the other goes to
    the quality queue). Delivered in order, PAY-1 is for the death month and nobody is flagged; the payment
    PAY-2 of the second day is flagged for the other person."""
    p = c.person("1944-08-08", "M")
    q = c.person("1944-08-09", "F")
    c.death("2025-04-01", p, "2025-03-10")
    c.death("2025-04-01", q, "2025-03-10")
    c.pay("2025-04-10", p, "resident_pension", "2025-03", "180.00", payment_id="PAY-1")
    c.pay("2025-05-10", p, "resident_pension", "2025-05", "180.00", payment_id="PAY-1")
    c.pay("2025-05-10", q, "resident_pension", "2025-04", "181.00", payment_id="PAY-2")
    return p, q


def test_older_day_loaded_after_a_newer_one_ends_in_the_same_alerts(db_url, tmp_path):
    """§1: processing an older day after a newer one must not change the alerts or their amounts (only
    first_seen may differ). In date order the second delivery of PAY-1 is a conflict and never a fact, so p
    has no alert. Loaded newest first (detecting after each day, as nightly runs do), PAY-1 is for a month
    after p's death until the older day arrives and takes its place: the alert raised meanwhile must not
    outlive the fact it stood on."""
    in_order = City(tmp_path / "in-order")
    p, q = build_backfill(in_order)
    in_order.run(db_url, ["2025-01-02", "2025-04-01", "2025-04-10"])
    expected = in_order.run(db_url, ["2025-05-10"], rejects=1)
    assert set(expected) == {("deceased_payment", q.person_id)}
    assert expected[("deceased_payment", q.person_id)].amount_at_risk == "181.00"

    backfilled = City(tmp_path / "backfilled")
    build_backfill(backfilled)
    kind = "sqlite" if db_url.startswith("sqlite") else "postgres"
    with warehouse(kind, backfilled.landing.parent) as url:
        backfilled.run(url, ["2025-01-02", "2025-04-01"])
        backfilled.run(url, ["2025-05-10"])
        got = backfilled.run(url, ["2025-04-10"])
    assert comparable(got) == comparable(expected), (
        "alerts (amount) after loading 2025-05-10 before 2025-04-10: "
        f"{ {k: a.amount_at_risk for k, a in got.items()} }; in date order: "
        f"{ {k: a.amount_at_risk for k, a in expected.items()} }")


def test_alert_ids_are_stable_across_fresh_warehouses(sqlite_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1943-09-09", "F")
    c.death("2025-04-01", p, "2025-02-01")
    c.pay("2025-03-10", p, "resident_pension", "2025-03", "90.00")
    c.card("2025-04-01", p, "2025-03-01T09:00:00+08:00", "certification")
    one = c.run(sqlite_url)
    other = c.run(f"sqlite:///{tmp_path / 'second.db'}")
    assert {k: a.alert_id for k, a in one.items()} == {k: a.alert_id for k, a in other.items()}
    assert len({a.alert_id for a in one.values()}) == 2


def test_cli_alerts_export_shows_the_same_alerts(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1942-10-10", "M")
    death = c.death("2025-04-01", p, "2025-02-01")
    mar = c.pay("2025-03-10", p, "resident_pension", "2025-03", "1234.56")
    found = c.run(db_url)
    out = subprocess.run([sys.executable, "-m", "risk.cli", "alerts", "export", "--format", "csv", "--db", db_url],
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert {"alert_id", "rule", "person_id", "village_code", "severity", "score", "amount_at_risk", "first_seen",
            "status", "evidence"} <= set(rows[0])
    assert [(r["rule"], r["person_id"], r["amount_at_risk"]) for r in rows] == [
        ("deceased_payment", p.person_id, "1234.56")]
    row = rows[0]
    assert row["alert_id"] == found[("deceased_payment", p.person_id)].alert_id
    assert row["village_code"] == "431102001001"
    evidence = json.loads(row["evidence"])
    named = {(e["file"], e["line"], e["flagged"]) for e in evidence}
    assert (mar.file, mar.line, True) in named and (death.file, death.line, False) in named


def test_records_whose_id_cannot_be_made_valid_never_raise_an_alert(db_url, tmp_path):
    """§3: a death or custody record with a wrong check character goes to the quality queue, never to an alert,
    even when the rest of its ID is a recipient's."""
    c = City(tmp_path)
    p = c.person("1948-12-24", "M")
    wrong = p.person_id[:17] + ("0" if p.person_id[17] != "0" else "1")
    c.death("2025-04-01", p, "2025-02-01", person_id=wrong)
    c.incarceration("2025-04-01", p, "custodial", "2025-01-05", person_id=wrong)
    c.pay("2025-03-10", p, "resident_pension", "2025-03", "200.00")
    c.card("2025-04-01", p, "2025-03-15T10:00:00+08:00", "pharmacy", "20.00")
    assert c.run(db_url, rejects=2) == {}
