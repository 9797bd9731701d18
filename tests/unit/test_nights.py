"""A night costs what it brings (issue 11, point 3): after a first detection, each detection looks only at the
people the facts loaded since can concern, and still leaves exactly what one detection over everything
leaves. On SQLite and PostgreSQL.

How alerts compare (contract §5 fixes rule, person, village, amount, evidence, status; first_seen records the
day a run first saw an alert and legitimately differs): a night-by-night warehouse can hold alerts that were
raised on one night and withdrawn on a later one, when the facts behind them were replaced (an older delivery
loaded after a newer one) or a later recipients row moved a certification date; loading everything at once
never raised them. So the alerts that are not withdrawn must be equal, and a withdrawn alert must have no
live counterpart. Their audit trail (alert_event: the withdrawn alert's reopening, if it comes back) and the
bookkeeping of what detection has seen (touch, touched_person, detection_mark) differ by design; every other
table must be equal.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import diff_snapshots, snapshot
from rulecity import COUNTY, TOWNSHIP, VILLAGE, City, alerts, assert_flags, total
from sqlalchemy import select, text
from warehouses import kind_of, warehouse

from risk import pipeline
from risk.alerts.export import export_rows
from risk.db import gateway
from risk.db.tables import touch
from risk.detection import run as detect
from risk.ingest import delivery
from risk.settings import Settings
from risk.synth import generate

SEED = 20251130
NOT_COMPARED = {"alert", "alert_event", "touch", "touched_person", "detection_mark"}
DECIDED = ("alert_id", "rule", "person_id", "village_code", "severity", "score", "amount_at_risk", "status",
           "evidence")


def live(url: str) -> dict:
    """The alerts that are not withdrawn, on what the contract fixes."""
    with gateway.transaction(url) as conn:
        rows = export_rows(conn, include_withdrawn=True)
    return {(r["rule"], r["person_id"]): {c: r[c] for c in DECIDED} for r in rows if r["status"] != "withdrawn"}


def withdrawn(url: str) -> set:
    with gateway.transaction(url) as conn:
        return {(r["rule"], r["person_id"]) for r in export_rows(conn, include_withdrawn=True)
                if r["status"] == "withdrawn"}


def assert_same_warehouse(nightly: str, at_once: str) -> None:
    a, b = live(nightly), live(at_once)
    assert a, "no alerts at all: the test would prove nothing"
    assert a.keys() == b.keys(), f"only night by night: {set(a) - set(b)}; only at once: {set(b) - set(a)}"
    differ = {k: [c for c in DECIDED if a[k][c] != b[k][c]] for k in a if a[k] != b[k]}
    assert not differ, f"alerts that differ, and in what: {differ}"
    assert not withdrawn(nightly) & set(b), "a withdrawn alert is live when everything is loaded at once"
    assert not withdrawn(at_once), "loading at once withdrew something"
    x = {k: v for k, v in snapshot(nightly, tables=None).items() if k not in NOT_COMPARED}
    y = {k: v for k, v in snapshot(at_once, tables=None).items() if k not in NOT_COMPARED}
    assert x == y, diff_snapshots(x, y)


def assert_nothing_left_to_find(url: str, night: str) -> None:
    """Deciding every rule for everyone again (as a first detection does) changes no alert: the night's
    detection missed nobody. Done in a transaction that is rolled back."""
    columns = "alert_id, village_code, amount_at_risk_cents, status, evidence, rule_version"
    with gateway.engine_for(url).connect() as conn, conn.begin() as tx:
        before = sorted(conn.execute(text(f"SELECT {columns} FROM alert")).all())
        conn.execute(text("DELETE FROM detection_mark"))
        detect.detect(conn, night)
        after = sorted(conn.execute(text(f"SELECT {columns} FROM alert")).all())
        tx.rollback()
    missed = set(after) - set(before)
    assert not missed, f"after the night of {night}, a whole detection still changes: {sorted(missed)[:5]}"


# ---------------------------------------------------------------- a generated city, night by night


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nights-city")
    generate(out, people=500, months=5, seed=SEED % 1000)
    return out / "landing"


def night_by_night(url: str, landing: Path, days: list[str], var: Path) -> None:
    s = Settings(database_url=url, var_dir=var)
    pipeline.prepare(s)
    for day in days:
        pipeline.load_day(s, landing, day)
        pipeline.detect(s)
        assert_nothing_left_to_find(url, day)


def all_at_once(url: str, landing: Path, days: list[str], var: Path) -> None:
    s = Settings(database_url=url, var_dir=var)
    pipeline.prepare(s)
    for day in days:
        pipeline.load_day(s, landing, day)
    pipeline.detect(s)


@pytest.mark.slow
@pytest.mark.parametrize("order", ["in date order", "shuffled"])
def test_night_by_night_equals_everything_at_once(db_url, city, tmp_path, order):
    days = delivery.delivery_days(city)
    if order == "shuffled":  # older days after newer ones: facts are displaced, alerts withdrawn
        # the days that bring regions stay first: a row whose village is not known yet gets a quality reason
        # that depends on the order (the loader's business, and not detection's)
        regions = [d for d in days if any((city / d).glob("regions.*"))]
        rest = [d for d in days if d not in regions]
        random.Random(SEED).shuffle(rest)
        days = regions + rest
    with warehouse(kind_of(db_url), tmp_path, "at-once.db") as at_once:
        night_by_night(db_url, city, days, tmp_path / "var")
        all_at_once(at_once, city, sorted(days), tmp_path / "var-at-once")
        assert_same_warehouse(db_url, at_once)


# ---------------------------------------------------------------- each kind of touch, by name


def nightly(c: City, url: str, county_by_county: bool = False) -> dict:
    """Load every day not loaded yet one by one, detecting after each (split by county if asked, as the
    nightly DAG does); returns the last night's detection summary (per part when split)."""
    s = c.settings(url)
    pipeline.prepare(s)
    summary: dict = {}
    for day in [d for d in c.days if d not in delivery.loaded_days(s)]:
        c.load(url, [day])
        if county_by_county:
            parts = pipeline.detection_parts(s, groups=100)  # one county each
            summary = {part[0]: pipeline.detect(s, part=part) for part in parts}
        else:
            summary = pipeline.detect(s)
        assert_nothing_left_to_find(url, day)
    return summary


def at_once(c: City, url: str, tmp_path: Path, rejects: int = 0) -> dict:
    """The same landing loaded at once (in date order) into a fresh warehouse of the same kind, detected once."""
    with warehouse(kind_of(url), tmp_path, "at-once.db") as fresh:
        fresh_city = City(tmp_path / "at-once")
        fresh_city.rows = c.rows
        fresh_city.load(fresh, rejects=rejects)
        fresh_city.detect(fresh)
        return live(fresh)


def looked_at(summary: dict, rule: str) -> int:
    found = summary["rules"][rule]
    assert found["scope"] == "touched", f"{rule} ran whole on a night after the first"
    return found["people"]


def test_a_backfill_records_nothing_and_runs_whole_then_a_file_is_one_touch(db_url, tmp_path):
    c = City(tmp_path)
    people = [c.person(f"19{40 + i}-01-0{1 + i % 9}", "M") for i in range(6)]
    for p in people:
        c.pay("2025-02-10", p, "resident_pension", "2025-02", "300.00")
    c.load(db_url)
    with gateway.transaction(db_url) as conn:
        assert conn.execute(select(touch)).all() == [], "loads before any detection are not recorded"
    first = c.detect(db_url)
    assert {r["scope"] for r in first["rules"].values()} == {"whole"}
    for p in people:
        c.pay("2025-03-10", p, "resident_pension", "2025-03", "300.00")
    c.load(db_url)
    with gateway.transaction(db_url) as conn:
        recorded = conn.execute(select(touch.c.source, touch.c.delivery_day, touch.c.person_id)).all()
    assert recorded == [("payments", "2025-03-10", None)], "a file of six payments is one touch"
    c.detect(db_url)
    with gateway.transaction(db_url) as conn:
        assert conn.execute(select(touch)).all() == [], "what every part has seen is forgotten"


def test_a_night_without_new_facts_looks_at_nobody(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1944-04-04", "F")
    c.death("2025-03-01", p, "2025-01-20")
    c.pay("2025-03-10", p, "resident_pension", "2025-03", "250.00")
    c.run(db_url)
    before = live(db_url)
    again = c.detect(db_url)
    assert {rule: looked_at(again, rule) for rule in again["rules"]} == dict.fromkeys(again["rules"], 0)
    assert live(db_url) == before and before


def test_a_late_death_record_touches_every_earlier_payment_and_card_event(db_url, tmp_path):
    c = City(tmp_path)
    p = c.person("1946-02-02", "F")
    others = [c.person("1950-03-03", "M"), c.person("1951-04-04", "F")]
    paid = [c.pay(f"2025-{m:02d}-10", p, "resident_pension", f"2025-{m:02d}", f"3{m:02d}.00") for m in range(2, 7)]
    for q in others:
        for m in range(2, 7):
            c.pay(f"2025-{m:02d}-10", q, "resident_pension", f"2025-{m:02d}", "280.00")
    cards = [c.card("2025-05-01", p, "2025-04-03T10:00:00+08:00", "pharmacy", "12.00"),
             c.card("2025-07-01", p, "2025-06-20T08:00:00+08:00", "transit", "2.00")]
    withdrawal = c.card("2025-07-01", p, "2025-06-21T08:00:00+08:00", "withdrawal", "500.00")
    nightly(c, db_url)
    assert live(db_url) == {}
    death = c.death("2025-08-01", p, "2025-02-15")  # months late: every earlier fact it makes wrong is flagged
    summary = nightly(c, db_url)
    assert looked_at(summary, "deceased_payment") == 1 and looked_at(summary, "card_after_death") == 1
    assert looked_at(summary, "dual_benefit") == 0, "a death record touches no rule that does not read deaths"
    found = alerts(db_url)
    assert_flags(found[("deceased_payment", p.person_id)], total(*(f.row["amount"] for f in paid[1:])), paid[1:],
                 lawful=[paid[0]])
    assert_flags(found[("card_after_death", p.person_id)], "14.00", cards, lawful=[withdrawal])
    assert found[("deceased_payment", p.person_id)].names(death, flagged=False)
    assert found[("deceased_payment", p.person_id)].first_seen == "2025-08-01"
    assert live(db_url) == at_once(c, db_url, tmp_path)


OTHER_COUNTY, OTHER_TOWNSHIP, OTHER_VILLAGE = "431103000000", "431103001000", "431103001001"


def two_counties(c: City) -> None:
    c.rows[(c.master_day, "regions")] += [
        {"code": OTHER_COUNTY, "name": "冷水滩区", "level": "county", "parent_code": "431100000000"},
        {"code": OTHER_TOWNSHIP, "name": "梧桐街道", "level": "township", "parent_code": OTHER_COUNTY},
        {"code": OTHER_VILLAGE, "name": "丙村", "level": "village", "parent_code": OTHER_TOWNSHIP}]
    assert COUNTY[:6] != OTHER_COUNTY[:6] and VILLAGE.startswith(TOWNSHIP[:9])


def test_a_payment_into_a_shared_account_touches_its_people_in_every_county(db_url, tmp_path):
    c = City(tmp_path)
    two_counties(c)
    account = "6217999900000001"
    here = [c.person("1950-05-05", "M", account=account), c.person("1951-06-06", "F", account=account)]
    there = c.person("1952-07-07", "M", account=account)
    c.registered[there.person_id].row["village_code"] = OTHER_VILLAGE
    mar = [c.pay("2025-03-10", p, "resident_pension", "2025-03", "310.00") for p in here]
    nightly(c, db_url, county_by_county=True)
    assert live(db_url) == {}, "two people sharing an account is lawful"
    late = c.pay("2025-03-20", there, "resident_pension", "2025-03", "320.00")  # the third, from the other county
    summary = nightly(c, db_url, county_by_county=True)
    assert looked_at(summary[COUNTY[:6]], "shared_account") == 2
    assert looked_at(summary[OTHER_COUNTY[:6]], "shared_account") == 1
    found = alerts(db_url)
    for p, paid in zip(here, mar, strict=True):
        assert_flags(found[("shared_account", p.person_id)], "310.00", [paid])
        assert found[("shared_account", p.person_id)].village_code == VILLAGE
    assert_flags(found[("shared_account", there.person_id)], "320.00", [late])
    assert found[("shared_account", there.person_id)].village_code == OTHER_VILLAGE
    assert live(db_url) == at_once(c, db_url, tmp_path)


@pytest.mark.parametrize("delivered_as", ["recipients row", "certification card event"])
def test_a_certification_delivered_later_lifts_the_periods_after_it(db_url, tmp_path, delivered_as):
    c = City(tmp_path)
    p = c.person("1948-08-08", "M", certified="2024-01-10")
    paid = [c.pay(f"2025-{m:02d}-10", p, "employee_pension", f"2025-{m:02d}", f"20{m:02d}.00") for m in range(2, 6)]
    nightly(c, db_url)
    assert_flags(alerts(db_url)[("certification_overdue", p.person_id)], total(*(f.row["amount"] for f in paid)),
                 paid)
    if delivered_as == "recipients row":  # the bureau's later delivery names a newer certification
        renewal = c.recipient_row(p, "2025-06-01", certified="2025-03-20")
    else:
        renewal = c.card("2025-06-01", p, "2025-03-20T09:30:00+08:00", "certification")
    summary = nightly(c, db_url)
    assert looked_at(summary, "certification_overdue") == 1
    alert = alerts(db_url)[("certification_overdue", p.person_id)]
    assert_flags(alert, paid[0].row["amount"], [paid[0]], lawful=paid[1:])  # February ended before it
    assert alert.names(renewal, flagged=False)
    assert live(db_url) == at_once(c, db_url, tmp_path)


def test_a_certification_from_before_the_first_payment_delivered_later_flags_them(db_url, tmp_path):
    """Without any certification, the 12 months count from the first paid period; a certification event
    dated long before it, delivered later, makes the count start earlier: its people are touched too."""
    c = City(tmp_path)
    p = c.person("1949-09-09", "F", certified=None)
    paid = [c.pay(f"2025-{m:02d}-10", p, "resident_pension", f"2025-{m:02d}", f"2{m:02d}.00") for m in range(2, 5)]
    nightly(c, db_url)
    assert live(db_url) == {}
    c.card("2025-06-01", p, "2023-06-01T09:00:00+08:00", "certification")
    summary = nightly(c, db_url)
    assert looked_at(summary, "certification_overdue") == 1
    assert_flags(alerts(db_url)[("certification_overdue", p.person_id)], total(*(f.row["amount"] for f in paid)),
                 paid)
    assert live(db_url) == at_once(c, db_url, tmp_path)


def test_a_recipient_moving_village_moves_their_alerts(db_url, tmp_path):
    c = City(tmp_path)
    two_counties(c)
    p = c.person("1945-10-10", "M")
    c.person("1947-10-10", "M")  # both counties are parts of detection before and after the move
    neighbour = c.person("1946-10-10", "F")
    c.registered[neighbour.person_id].row["village_code"] = OTHER_VILLAGE
    c.death("2025-04-01", p, "2025-02-10")
    c.pay("2025-03-10", p, "resident_pension", "2025-03", "400.00")
    nightly(c, db_url, county_by_county=True)
    assert alerts(db_url)[("deceased_payment", p.person_id)].village_code == VILLAGE
    c.recipient_row(p, "2025-05-01", certified="2025-01-10", village_code=OTHER_VILLAGE)
    summary = nightly(c, db_url, county_by_county=True)
    assert looked_at(summary[OTHER_COUNTY[:6]], "deceased_payment") == 1
    assert looked_at(summary[COUNTY[:6]], "deceased_payment") == 0
    assert alerts(db_url)[("deceased_payment", p.person_id)].village_code == OTHER_VILLAGE
    assert live(db_url) == at_once(c, db_url, tmp_path)


def test_a_displaced_fact_withdraws_the_alert_it_raised_and_flags_the_standing_one(db_url, tmp_path):
    """§1: of two deliveries of a payment_id the earliest stands. Delivered newest first, the newer row raises
    an alert for its person; when the older day arrives it displaces that row (a removed fact, touched), the
    alert is withdrawn and the standing row's person is flagged instead."""
    c = City(tmp_path)
    p, q = c.person("1944-11-11", "F"), c.person("1944-12-12", "M")
    c.death("2025-02-01", p, "2025-01-20")
    c.death("2025-02-01", q, "2025-01-20")
    c.pay("2025-04-10", q, "resident_pension", "2025-03", "150.00", payment_id="PAY-X")  # earliest: stands
    newer = c.pay("2025-05-10", p, "resident_pension", "2025-04", "160.00", payment_id="PAY-X")
    c.write()
    nightly_days = ["2025-01-02", "2025-02-01", "2025-05-10"]
    for day in nightly_days:
        c.load(db_url, [day])
        c.detect(db_url)
    assert_flags(alerts(db_url)[("deceased_payment", p.person_id)], "160.00", [newer])
    c.load(db_url, ["2025-04-10"], rejects=0)
    summary = c.detect(db_url)
    assert looked_at(summary, "deceased_payment") == 2
    assert_nothing_left_to_find(db_url, "2025-05-10")
    assert withdrawn(db_url) == {("deceased_payment", p.person_id)}
    assert live(db_url)[("deceased_payment", q.person_id)]["amount_at_risk"] == "150.00"
    assert live(db_url) == at_once(c, db_url, tmp_path, rejects=1)  # in date order the newer row is a conflict


def test_record_keeps_a_file_as_one_touch_and_a_removed_fact_with_its_person(sqlite_url):
    """The loader's side (risk.detection.touched.record): stored rows are found again by their file, removed ones are
    kept with their person (and, for a payment, account and period); what no rule reads is not kept, and
    nothing is kept before a first detection."""
    import pandas as pd

    from risk.db.tables import detection_mark
    from risk.detection import touched

    stored = pd.DataFrame({"payment_id": ["P1", "P2"], "person_id": ["A", "B"], "delivery_day": "2025-03-10",
                           "source_file": "2025-03-10/payments.csv", "bank_account": "X", "period": None})
    removed = pd.DataFrame({"payment_id": ["P0"], "person_id": ["C"], "bank_account": ["Y"],
                            "period": [pd.Timestamp("2025-02-01").date()], "delivery_day": ["2025-03-11"]})
    gateway.migrate(sqlite_url)
    with gateway.transaction(sqlite_url) as conn:
        touched.record(conn, "payments", stored, removed)
        assert conn.execute(select(touch)).all() == [], "before a first detection nothing is kept"
        conn.execute(detection_mark.insert().values(part="431102", rule="dual_benefit", rule_version=1, touch_seq=0))
        touched.record(conn, "payments", stored, removed)
        touched.record(conn, "regions", stored.iloc[:0], stored.iloc[:0])
        touched.record(conn, "recipients", stored.iloc[:0], removed)  # replaced recipients rows: not kept
        kept = conn.execute(select(touch.c.source, touch.c.delivery_day, touch.c.source_file, touch.c.person_id,
                                   touch.c.bank_account, touch.c.period).order_by(touch.c.seq)).all()
    assert [tuple(map(str, k)) for k in kept] == [
        ("payments", "2025-03-10", "2025-03-10/payments.csv", "None", "None", "None"),
        ("payments", "None", "None", "C", "Y", "2025-02-01")]


def test_a_new_version_of_a_rule_runs_whole_once(db_url, tmp_path):
    from dataclasses import replace

    from risk.detection.registry import RULES

    c = City(tmp_path)
    p = c.person("1943-01-01", "M")
    c.death("2025-03-01", p, "2025-01-20")
    c.pay("2025-03-10", p, "resident_pension", "2025-03", "210.00")
    c.run(db_url)
    newer = tuple(replace(r, version=r.version + 1) if r.code == "deceased_payment" else r for r in RULES)
    with gateway.transaction(db_url) as conn:
        outcomes = {o.rule: o for o in detect.detect(conn, "2025-03-10", rules=newer)}
        again = {o.rule: o for o in detect.detect(conn, "2025-03-10", rules=newer)}
    assert outcomes["deceased_payment"].people == -1, "a new version decides the whole city"
    assert outcomes["card_after_death"].touched_only and outcomes["card_after_death"].people == 0
    assert again["deceased_payment"].touched_only and again["deceased_payment"].people == 0


@pytest.mark.postgres
def test_parts_of_a_first_detection_run_at_once_take_turns_for_the_city_wide_step(tmp_path):
    """On PostgreSQL the DAG's county parts may run at the same time. On a first detection the first one to
    come runs every rule over the city; the others wait for it, then find nothing left to do."""
    from concurrent.futures import ThreadPoolExecutor

    c = City(tmp_path)
    two_counties(c)
    for n in range(3):
        p = c.person(f"194{n}-02-02", "F")
        q = c.person(f"194{n}-03-03", "M")
        c.registered[q.person_id].row["village_code"] = OTHER_VILLAGE
        for who in (p, q):
            c.death("2025-03-01", who, "2025-01-20")
            c.pay("2025-03-10", who, "resident_pension", "2025-03", "190.00")
    with warehouse("postgres", tmp_path) as url:
        c.load(url)
        s = c.settings(url)
        parts = pipeline.detection_parts(s, groups=100)  # one county each
        with ThreadPoolExecutor(len(parts)) as pool:
            summaries = list(pool.map(lambda part: pipeline.detect(s, part=part), parts))
        city_wide = [x for x in summaries if x["rules"]["deceased_payment"]["people"] == "all"]
        assert len(city_wide) == 1, "exactly one part ran the city-wide step"
        assert len(live(url)) == 6
        assert live(url) == at_once(c, url, tmp_path)
