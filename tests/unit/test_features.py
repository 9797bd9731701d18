"""Behavioural features (risk.scoring.features) on small hand-built warehouses.

Each person below is built for one feature: their rows go straight into the warehouse tables (after the
migrations) through risk.db.gateway.insert_frame, and the test checks the value the feature must take.
as_of is 2025-06-30 with a 90-day window: (2025-04-01, 2025-06-30].
The whole city is checked on SQLite and on PostgreSQL; the window boundary uses the `db_url` fixture.
"""
from __future__ import annotations

import math
from datetime import date
from itertools import count

import pandas as pd
import pytest
from helpers import base_day, database, load, make_id, settings, write
from helpers import card_event as event_row
from helpers import recipient as recipient_row

from risk.db import gateway
from risk.db.tables import card_event, certification, payment, recipient
from risk.scoring.catalogue import CATALOGUE, FEATURE_NAMES, Unusual, describe, format_value
from risk.scoring.features import compute_features

AS_OF = date(2025, 6, 30)
HOME_VILLAGE, HOME_COUNTY = "431102001001", "431102000000"
OTHER_VILLAGE = "431103002001"  # another county of the city
GUANGZHOU = "440106000000"


class Warehouse:
    """Rows for the fact tables, written in one go by `load(url)`."""

    def __init__(self) -> None:
        self.people: list[dict] = []
        self.events: list[dict] = []
        self.payments: list[dict] = []
        self.certifications: list[dict] = []
        self._seq = count(1)

    def _prov(self) -> dict:
        n = next(self._seq)
        return {"delivery_day": "2025-07-01", "source_file": "x.csv", "source_line": n + 1,
                "row_hash": f"{n:032d}"}

    def person(self, born: str = "1950-03-15", village: str = HOME_VILLAGE, account: str | None = None,
               certified: str | None = "2025-06-01") -> str:
        pid = make_id(born, area=village[:6], seq=len(self.people))
        self.people.append({"person_id": pid, "name": "张三", "gender": "M", "birth_date": born,
                            "village_code": village, "bank_account": account or f"62170{len(self.people):011d}",
                            "card_no": "A12345678", "last_certified_on": certified, "phone": None,
                            **self._prov()})
        return pid

    def account_of(self, pid: str) -> str:
        return next(p["bank_account"] for p in self.people if p["person_id"] == pid)

    def event(self, pid: str, day: str, event_type: str = "other", hour: int = 10, county: str = HOME_COUNTY,
              institution: str = "T1", yuan: float = 0.0) -> None:
        n = len(self.events)
        self.events.append({
            "event_id": f"E{n}", "person_id": pid, "card_no": "A12345678",
            "occurred_at": f"{day}T{hour:02d}:30:00+08:00",
            "occurred_utc": pd.Timestamp(f"{day} {hour:02d}:30:00") - pd.Timedelta(hours=8),
            "occurred_on": day, "occurred_hour": hour, "event_type": event_type, "county_code": county,
            "institution_id": institution, "amount_cents": round(yuan * 100), "admitted_on": None,
            **self._prov()})

    def pay(self, pid: str, period: str, yuan: float, benefit: str = "resident_pension",
            paid_on: str | None = None, account: str | None = None) -> None:
        n = len(self.payments)
        self.payments.append({
            "payment_id": f"P{n}", "person_id": pid, "benefit_type": benefit, "period": f"{period}-01",
            "amount_cents": round(yuan * 100), "paid_on": paid_on or f"{period}-10",
            "bank_account": account or self.account_of(pid), **self._prov()})

    def certify(self, pid: str, day: str) -> None:
        n = len(self.certifications)
        self.certifications.append({"person_id": pid, "delivery_day": "2025-07-01", "source_line": n + 2,
                                    "certified_on": day, "source_file": "recipients.csv"})

    def load(self, url: str) -> None:
        gateway.migrate(url)
        with gateway.transaction(url) as conn:
            for table, rows in ((recipient, self.people), (card_event, self.events),
                                (payment, self.payments), (certification, self.certifications)):
                if rows:
                    gateway.insert_frame(conn, table, pd.DataFrame(rows))

    def features(self, url: str, as_of: date = AS_OF, window_days: int = 90) -> pd.DataFrame:
        self.load(url)
        with gateway.transaction(url) as conn:
            return compute_features(conn, as_of, window_days)


def build_city() -> tuple[Warehouse, dict[str, str]]:
    w, who = Warehouse(), {}

    # night and away from home: 3 of 4 events at 02:00, 2 of 4 outside the home county (2 counties)
    p = who["night"] = w.person()
    w.event(p, "2025-05-03", "medical", hour=2, county=GUANGZHOU, yuan=100)
    w.event(p, "2025-05-04", "pharmacy", hour=2, county=GUANGZHOU, institution="GZ1", yuan=20)
    w.event(p, "2025-05-05", "withdrawal", hour=2, yuan=500)
    w.event(p, "2025-05-06", "other", hour=14, yuan=0)
    w.event(p, "2025-03-01", "other", hour=3, county=GUANGZHOU)  # before the window: not counted

    # pharmacy: 2 at P1 on May 5 (+1 at P2 that day), 1 more at P1 in May, 1 at P1 in June
    p = who["pharmacy"] = w.person()
    for day, inst in (("2025-05-05", "P1"), ("2025-05-05", "P1"), ("2025-05-05", "P2"), ("2025-05-20", "P1"),
                      ("2025-06-01", "P1")):
        w.event(p, day, "pharmacy", institution=inst, yuan=30)

    # peers: resident pension of 300 a month in the home county, one of them paid 1500; another county 600
    for name, yuan in (("peer1", 300), ("peer2", 300), ("peer3", 300), ("inflated", 1500)):
        p = who[name] = w.person()
        for period in ("2025-04", "2025-05", "2025-06"):
            w.pay(p, period, yuan)
    p = who["other_county"] = w.person(village=OTHER_VILLAGE)
    for period in ("2025-04", "2025-05", "2025-06"):
        w.pay(p, period, 600)
    # two recurring types: the ratio of each against its own peers, the larger counts; arrears of
    # two periods paid at once count as two months
    p = who["two_types"] = w.person()
    w.pay(p, "2025-04", 300)
    w.pay(p, "2025-05", 300)
    w.pay(p, "2025-03", 3000, benefit="work_injury", paid_on="2025-05-10")
    w.pay(p, "2025-04", 3000, benefit="work_injury", paid_on="2025-05-10")
    # lump sums never count towards the monthly amount
    w.pay(p, "2025-05", 9000, benefit="funeral_grant")

    # one account, three people; one of them registered another account
    shared = w.account_of(who["peer1"])
    for name in ("acct_a", "acct_b"):
        p = who[name] = w.person(account=shared if name == "acct_a" else None)
        w.pay(p, "2025-05", 100, benefit="work_injury", account=shared)

    # certification: an event after the recipients row's date, a delivered date, a future date ignored,
    # none on record (counted from the first paid recurring period)
    p = who["cert_event"] = w.person(certified="2025-01-01")
    w.event(p, "2025-03-01", "certification")
    p = who["cert_delivered"] = w.person(certified="2024-12-31")
    w.certify(p, "2025-05-01")
    w.certify(p, "2025-08-01")  # after as_of: not yet
    p = who["cert_future"] = w.person(certified="2025-08-01")
    w.pay(p, "2025-02", 300, paid_on="2025-02-10")
    w.pay(p, "2025-05", 300)
    p = who["never_certified"] = w.person(certified=None)
    w.pay(p, "2025-02", 300, paid_on="2025-02-10")

    # ages: a birthday on as_of counts, the day after does not
    who["age65"] = w.person(born="1960-06-30")
    who["age64"] = w.person(born="1960-07-01")

    # the card: last used 10 days before as_of; never used
    p = who["card_recent"] = w.person()
    w.event(p, "2025-06-20", "transit", yuan=2)
    w.event(p, "2025-07-05", "transit", yuan=2)  # after as_of
    who["nothing"] = w.person(certified=None)
    w.event(who["night"], "2025-01-05", "other")  # the warehouse's first card event
    return w, who


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def city(request, tmp_path_factory) -> tuple[pd.DataFrame, dict[str, str]]:
    w, who = build_city()
    with database(request.param, tmp_path_factory.mktemp("features")) as url:
        yield w.features(url), who


def test_one_float_row_per_recipient_and_no_nan(city):
    f, who = city
    assert list(f.columns) == list(FEATURE_NAMES)
    assert f.index.name == "person_id" and f.index.is_unique and set(f.index) == set(who.values())
    assert all(str(t) == "float64" for t in f.dtypes)
    assert not f.isna().any().any()


def test_counts_per_30_days_night_away_and_amounts(city):
    f, who = city
    night = f.loc[who["night"]]
    assert night["medical_per_30d"] == pytest.approx(1 / 3)
    assert night["pharmacy_per_30d"] == pytest.approx(1 / 3)
    assert night["withdrawal_per_30d"] == pytest.approx(1 / 3)
    assert night["other_per_30d"] == pytest.approx(1 / 3)
    assert night["transit_per_30d"] == 0
    assert night["night_share"] == 0.75
    assert night["away_share"] == 0.5
    assert night["distinct_counties"] == 2
    assert night["card_amount_per_30d"] == pytest.approx(620 / 3)
    assert night["card_max_amount"] == 500
    assert night["withdrawal_amount_share"] == pytest.approx(500 / 620)


def test_busiest_pharmacy_day_and_month(city):
    f, who = city
    assert f.loc[who["pharmacy"], "pharmacy_busiest_day"] == 2
    assert f.loc[who["pharmacy"], "pharmacy_busiest_month"] == 3
    assert f.loc[who["pharmacy"], "pharmacy_per_30d"] == pytest.approx(5 / 3)
    assert f.loc[who["night"], "pharmacy_busiest_day"] == 1


def test_payment_against_peers_of_the_same_benefit_and_county(city):
    f, who = city
    ratio = f["payment_peer_ratio"]
    # home county resident pension: 300, 300, 300, 300 (two_types), 1500 → median 300
    assert ratio[who["peer1"]] == pytest.approx(1.0)
    assert ratio[who["inflated"]] == pytest.approx(5.0)
    assert ratio[who["other_county"]] == pytest.approx(1.0)  # its own county's median
    # work injury in the home county: 3000 a month (two_types), 100 (acct_a), 100 (acct_b) → median 100
    assert ratio[who["two_types"]] == pytest.approx(30.0)
    assert ratio[who["acct_a"]] == pytest.approx(1.0)
    assert ratio[who["nothing"]] == 1.0  # nothing paid: neutral


def test_people_paid_into_the_same_account(city):
    f, who = city
    for name in ("peer1", "acct_a", "acct_b"):
        assert f.loc[who[name], "account_people"] == 3
    assert f.loc[who["peer2"], "account_people"] == 1
    assert f.loc[who["nothing"], "account_people"] == 1
    assert f.loc[who["acct_b"], "other_account_share"] == 1.0  # registered elsewhere
    assert f.loc[who["acct_a"], "other_account_share"] == 0.0  # the shared account is their own
    assert f.loc[who["peer1"], "other_account_share"] == 0.0


def test_days_since_certification(city):
    f, who = city
    days = f["days_since_certification"]
    assert days[who["cert_event"]] == (AS_OF - date(2025, 3, 1)).days
    assert days[who["cert_delivered"]] == (AS_OF - date(2025, 5, 1)).days
    # last_certified_on after as_of does not count: none on record, so from the first paid period
    assert days[who["cert_future"]] == (AS_OF - date(2025, 2, 1)).days
    assert days[who["never_certified"]] == (AS_OF - date(2025, 2, 1)).days
    assert days[who["peer1"]] == (AS_OF - date(2025, 6, 1)).days
    assert days[who["nothing"]] == 0  # neither certified nor paid: neutral


def test_age_and_card_silence(city):
    f, who = city
    assert f.loc[who["age65"], "age"] == 65
    assert f.loc[who["age64"], "age"] == 64
    assert f.loc[who["card_recent"], "days_since_card_use"] == 10
    assert f.loc[who["card_recent"], "transit_per_30d"] == pytest.approx(1 / 3)  # 2025-07-05 is after as_of
    # never used: as long as the warehouse's card records go back (2025-01-05)
    assert f.loc[who["nothing"], "days_since_card_use"] == (AS_OF - date(2025, 1, 5)).days


def test_nobody_with_nothing_gets_the_neutral_values(city):
    f, who = city
    row = f.loc[who["nothing"]]
    for name, feature in CATALOGUE.items():
        if name in ("age", "days_since_card_use"):
            continue
        assert row[name] == feature.neutral, name


def test_window_boundary(db_url):
    """(as_of - window_days, as_of]: the day exactly window_days before as_of is out, the next day in."""
    w = Warehouse()
    p = w.person()
    w.event(p, "2025-04-01", "transit", yuan=1)  # 90 days before as_of: out
    w.event(p, "2025-04-02", "medical", yuan=2)  # in
    w.event(p, "2025-06-30", "medical", hour=23, yuan=4)  # as_of itself: in
    w.event(p, "2025-07-01", "medical", hour=0, yuan=8)  # after: out
    w.pay(p, "2025-03", 100, paid_on="2025-04-01")  # out
    w.pay(p, "2025-04", 300, paid_on="2025-04-02")  # in
    w.pay(p, "2025-07", 900, paid_on="2025-07-01")  # out
    f = w.features(db_url)
    row = f.loc[p]
    assert row["transit_per_30d"] == 0
    assert row["medical_per_30d"] == pytest.approx(2 / 3)
    assert row["card_amount_per_30d"] == pytest.approx(6 / 3)
    assert row["card_max_amount"] == 4
    assert row["night_share"] == 0
    assert row["payment_peer_ratio"] == 1.0  # alone in its group, and only the 300 counted
    assert row["days_since_card_use"] == 0


def test_a_shorter_window_sees_less(sqlite_url):
    w = Warehouse()
    p = w.person()
    w.event(p, "2025-06-01", "pharmacy", yuan=10)  # 29 days before as_of: in a 30-day window
    w.event(p, "2025-05-31", "pharmacy", yuan=10)  # 30 days before: out
    f = w.features(sqlite_url, window_days=30)
    assert f.loc[p, "pharmacy_per_30d"] == 1
    with gateway.transaction(sqlite_url) as conn, pytest.raises(ValueError):
        compute_features(conn, AS_OF, window_days=0)


def test_busiest_month_is_a_calendar_month_across_the_new_year(db_url):
    """Months are calendar months, also when the window spans December and January; the day just
    outside the window does not count."""
    w = Warehouse()
    p = w.person()
    for day in ("2024-12-30", "2024-12-31", "2025-01-01", "2025-01-02", "2025-01-03", "2024-10-18"):
        w.event(p, day, "pharmacy", institution="P1")
    w.event(p, "2025-01-02", "pharmacy", institution="P2")  # another pharmacy: its own month
    w.event(p, "2024-10-17", "pharmacy", institution="P1")  # 90 days before as_of: out
    w.event(p, "2025-01-16", "pharmacy", institution="P1")  # after as_of: out
    w.load(db_url)
    with gateway.transaction(db_url) as conn:
        row = compute_features(conn, date(2025, 1, 15), 90).loc[p]
    assert row["pharmacy_busiest_month"] == 3  # P1 in January 2025 (December has 2, October 1)
    assert row["pharmacy_busiest_day"] == 1
    assert row["pharmacy_per_30d"] == pytest.approx(7 / 3)


def test_busiest_month_in_a_window_inside_one_month(sqlite_url):
    w = Warehouse()
    p = w.person()
    for day in ("2025-06-26", "2025-06-27", "2025-06-27"):
        w.event(p, day, "pharmacy", institution="P1")
    w.event(p, "2025-06-25", "pharmacy", institution="P1")  # 5 days before as_of: out
    f = w.features(sqlite_url, window_days=5)
    assert f.loc[p, "pharmacy_busiest_month"] == 3
    assert f.loc[p, "pharmacy_busiest_day"] == 2


def test_a_county_gets_the_rows_the_city_gets(db_url):
    """Each county computed alone equals its rows of the whole city, also where an account is shared
    across counties and where a card is used in the other county."""
    w = Warehouse()
    home, away = w.person(), w.person(village=OTHER_VILLAGE)
    shared = w.account_of(home)
    third = w.person(village=OTHER_VILLAGE, account=shared)
    for p in (home, away, third):
        w.pay(p, "2025-05", 300, account=shared)
        w.pay(p, "2025-06", 300 if p != third else 900)
    w.event(home, "2025-05-03", "medical", county="431103000000", yuan=50)
    w.event(away, "2025-05-03", "pharmacy", county=HOME_COUNTY, institution="P9", yuan=5)
    w.certify(away, "2025-04-01")
    w.load(db_url)
    with gateway.transaction(db_url) as conn:
        city = compute_features(conn, AS_OF, 90)
        parts = [compute_features(conn, AS_OF, 90, counties=[c]) for c in (HOME_COUNTY[:6], OTHER_VILLAGE[:6])]
    assert [len(part) for part in parts] == [1, 2]
    pd.testing.assert_frame_equal(pd.concat(parts).sort_index(), city, check_exact=True)
    assert city.loc[home, "account_people"] == 3  # the other two live in the other county
    assert city.loc[home, "away_share"] == 1.0 and city.loc[away, "away_share"] == 1.0
    # (300 + 900) / 2 a month against the median of its county's two people, 300 and 600
    assert city.loc[third, "payment_peer_ratio"] == pytest.approx(600 / 450)


def test_facts_of_people_who_are_not_recipients_change_nobody(sqlite_url):
    """Card events and payments under an ID that is not a recipient's (a deceased non-recipient, say)
    make no row and move no peer median; an account they were paid into counts them as a person."""
    w = Warehouse()
    a, b = w.person(), w.person()
    stranger = make_id("1940-02-02", area=HOME_COUNTY[:6], seq=99)
    for p in (a, b):
        w.pay(p, "2025-05", 300)
    w.pay(stranger, "2025-05", 30_000, account=w.account_of(a))
    w.event(stranger, "2025-05-05", "pharmacy", institution="P1")
    f = w.features(sqlite_url)
    assert stranger not in f.index and len(f) == 2
    assert f.loc[a, "payment_peer_ratio"] == 1.0 and f.loc[b, "payment_peer_ratio"] == 1.0
    assert f.loc[a, "account_people"] == 2 and f.loc[b, "account_people"] == 1


def test_empty_warehouse(sqlite_url):
    f = Warehouse().features(sqlite_url)
    assert f.empty and list(f.columns) == list(FEATURE_NAMES)


# ---------------------------------------------------------------- the catalogue


def test_catalogue_covers_every_feature_in_both_languages():
    for name, f in CATALOGUE.items():
        assert f.name == name and f.zh and f.en and f.unusual in Unusual
        assert not math.isnan(f.neutral)
        for lang in ("zh", "en"):
            sentence = describe(name, 3.0, 1.0, lang)
            assert sentence and "{" not in sentence
            assert describe(name, 3.0, None, lang) in sentence


def test_describe_reads_as_plain_words():
    assert describe("night_share", 0.62, 0.03, "zh") == "夜间（0–5点）用卡占比 62%，同类人员通常为 3%"
    assert describe("night_share", 0.62, 0.03, "en") == "62% of card use at night (0–5 h); people like them: 3%"
    assert describe("pharmacy_per_30d", 34, 1.5, "zh") == "每30天药店购药 34 次，同类人员通常为 1.5 次"
    assert describe("payment_peer_ratio", 5, 1, "en") == ("monthly benefit 5.0× the median of the same benefit "
                                                          "in the same county; people like them: 1.0×")
    assert describe("days_since_certification", 400, 120, "zh") == "距最近一次资格认证已 400 天，同类人员通常为 120 天"
    assert describe("card_max_amount", 12345.6, None, "en") == "largest single card amount ¥12,346"
    assert format_value("account_people", 1, "en") == "1 person"
    with pytest.raises(ValueError):
        describe("night_share", 0.5, 0.1, "fr")
    with pytest.raises(KeyError):
        describe("no_such_feature", 1, 1, "zh")


def test_from_a_landing_folder_night_is_beijing_time(tmp_path, sqlite_url):
    """Through the pipeline: a UTC timestamp late on 9 June is 02:30 on 10 June in Beijing (night)."""
    landing = tmp_path / "landing"
    pid = make_id("1950-01-01", seq=7)
    base_day(landing, "2025-03-01", [recipient_row(pid)])
    write(landing, "2025-07-01", "card_events", [
        event_row("E1", pid, occurred_at="2025-06-09T18:30:00Z", event_type="withdrawal", amount="500.00"),
        event_row("E2", pid, occurred_at="2025-06-10T10:00:00+08:00", county_code=GUANGZHOU),
    ])
    load(settings(sqlite_url, tmp_path), landing, "2025-03-01", "2025-07-01")
    with gateway.transaction(sqlite_url) as conn:
        row = compute_features(conn, AS_OF).loc[pid]
    assert row["night_share"] == 0.5
    assert row["away_share"] == 0.5
    assert row["withdrawal_amount_share"] == pytest.approx(500 / 535.5)
    assert row["days_since_card_use"] == 20


def test_lookups_by_person_in_chunks(sqlite_url):
    """The few-people lookups (silent cards, never certified) give the same answer however they are cut."""
    from sqlalchemy import func, select

    from risk.scoring.aggregates import for_people

    w = Warehouse()
    a, b, c = w.person(), w.person(), w.person()
    w.event(a, "2025-02-01", "transit")
    w.event(a, "2025-03-01", "transit")
    w.event(b, "2025-01-15", "medical")
    w.load(sqlite_url)
    e = card_event.c

    def query(ids):
        return select(e.person_id, func.max(e.occurred_on).label("day")).where(e.person_id.in_(ids)) \
            .group_by(e.person_id)

    with gateway.transaction(sqlite_url) as conn:
        whole = for_people(conn, query, pd.Index([a, b, c]))
        cut = for_people(conn, query, pd.Index([a, b, c]), chunk=1)
        none = for_people(conn, query, pd.Index([]))
    pd.testing.assert_frame_equal(whole.sort_index(), cut.sort_index(), check_dtype=False)
    assert len(whole) == 2
    assert none.empty and list(none.columns) == ["day"]
