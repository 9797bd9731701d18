"""Row validation (contract §2-3, Great Expectations suites in checks/): every kind of bad value is rejected
with its line, its key and a reason naming the field; personal data is masked in reasons; good values are
stored typed and exact."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

from helpers import (
    COUNTY,
    TOWNSHIP,
    VILLAGE,
    assert_balanced,
    base_day,
    card_event,
    check_char,
    death,
    incarceration,
    load,
    make_id,
    masked,
    payment,
    recipient,
    rejects,
    rows_of,
    settings,
    supervisor,
    write,
)

from risk.contract import SOURCES
from risk.ingest import checks

DAY = "2025-03-10"
ROOT = Path(__file__).resolve().parents[2]


def _load_and_reject(
    url: str,
    tmp_path: Path,
    source: str,
    rows: list[dict],
    *,
    master: list[dict] | None = None,
    extra: dict[str, list[dict]] | None = None,
) -> dict[str, dict]:
    """Load a base day then `rows` as `source` on DAY; return the quality rows of that file by line."""
    landing = tmp_path / "landing"
    base_day(landing, people=master or [])
    write(landing, DAY, source, rows)
    for name, more in (extra or {}).items():
        write(landing, DAY, name, more)
    load(settings(url, tmp_path), landing, "2025-03-01", DAY)
    assert_balanced(url)
    return {r["line"]: r for r in rejects(url) if r["source"] == source and r["delivery_day"] == DAY}


def _expect(got: dict[str, dict], line: int, key: str, field: str, *words: str) -> None:
    r = got.get(str(line))
    assert r is not None, f"line {line} ({key}) was not rejected; rejected: {sorted(got)}"
    assert r["key"] == key
    assert field in r["field"].split(","), f"line {line}: field {r['field']!r}, reason {r['reason']!r}"
    assert field in r["reason"], r["reason"]
    for w in words:
        assert w in r["reason"], f"line {line}: {w!r} not in {r['reason']!r}"


# ---------------------------------------------------------------- payments


def test_bad_payment_values_are_rejected_with_line_key_and_field(sqlite_url: str, tmp_path: Path) -> None:
    a = make_id(seq=1)
    bad_id = a[:17] + ("0" if a[17] != "0" else "1")
    rows = [
        payment("P01", a),  # 2 fine
        payment("P02", a, amount=""),  # 3 empty required
        payment("P03", a, benefit_type="pension"),  # 4 bad enum
        payment("P04", a, paid_on="2025-02-30"),  # 5 impossible date
        payment("P05", a, paid_on="2025/03/10"),  # 6 not YYYY-MM-DD
        payment("P06", a, period="2025-13"),  # 7 impossible month
        payment("P07", a, period="2025-03-01"),  # 8 a date, not a month
        payment("P08", a, amount="-4346.80"),  # 9 negative
        payment("P09", a, amount="12.345"),  # 10 three decimals
        payment("P10", a, amount="0"),  # 11 zero: must be > 0
        payment("P11", a, amount="0.00"),  # 12 zero with decimals
        payment("P12", bad_id),  # 13 wrong check character
        payment("P13", a, amount="1,000.00"),  # 14 not a number
        payment("", a),  # 15 empty key
        payment("P15", "", bank_account=""),  # 16 two empty fields
        payment("P16", a, amount="0.01"),  # 17 fine: the smallest amount
    ]
    got = _load_and_reject(sqlite_url, tmp_path, "payments", rows)
    _expect(got, 3, "P02", "amount", "empty")
    _expect(got, 4, "P03", "benefit_type", "not one of", "pension")
    _expect(got, 5, "P04", "paid_on", "not a real calendar date", "2025-02-30")
    _expect(got, 6, "P05", "paid_on", "YYYY-MM-DD")
    _expect(got, 7, "P06", "period", "YYYY-MM")
    _expect(got, 8, "P07", "period", "YYYY-MM")
    _expect(got, 9, "P08", "amount", "greater than 0", "-4346.80")
    _expect(got, 10, "P09", "amount", "two decimals", "12.345")
    _expect(got, 11, "P10", "amount", "greater than 0")
    _expect(got, 12, "P11", "amount", "greater than 0")
    _expect(got, 13, "P12", "person_id", "resident ID is not valid", masked(bad_id))
    _expect(got, 14, "P13", "amount", "two decimals")
    _expect(got, 15, "", "payment_id", "empty")
    _expect(got, 16, "P15", "person_id", "empty")
    _expect(got, 16, "P15", "bank_account", "empty")
    assert sorted(int(k) for k in got) == list(range(3, 17))
    assert bad_id not in json.dumps(list(got.values()), ensure_ascii=False)
    assert {r["kind"] for r in got.values()} == {"invalid"}
    assert sorted(p["payment_id"] for p in rows_of(sqlite_url, "payment")) == ["P01", "P16"]


def test_amounts_are_stored_exact_in_fen(db_url: str, tmp_path: Path) -> None:
    a = make_id(seq=1)
    amounts = {
        "P1": "0.01",
        "P2": "0.29",
        "P3": "1234567.89",
        "P4": "999999999999.99",
        "P5": "12",
        "P6": "7.1",
    }
    _load_and_reject(db_url, tmp_path, "payments", [payment(k, a, amount=v) for k, v in amounts.items()])
    stored = {p["payment_id"]: p["amount_cents"] for p in rows_of(db_url, "payment")}
    assert stored == {"P1": 1, "P2": 29, "P3": 123456789, "P4": 99999999999999, "P5": 1200, "P6": 710}
    p = rows_of(db_url, "payment", "payment_id")[0]
    assert p["period"] == date(2025, 3, 1) and p["paid_on"] == date(2025, 3, 10)


# ---------------------------------------------------------------- card events


def test_bad_card_event_values(sqlite_url: str, tmp_path: Path) -> None:
    a = make_id(seq=1)
    rows = [
        card_event("E01", a),  # 2 fine
        card_event("E02", a, occurred_at="2025-03-20T09:13:05"),  # 3 no offset
        card_event("E03", a, occurred_at="yesterday"),  # 4
        card_event("E04", a, occurred_at="2025-02-30T09:13:05+08:00"),  # 5 impossible day
        card_event("E05", a, occurred_at="2025-03-20 09:13:05+08:00"),  # 6 fine? space is not ISO 'T'
        card_event("E06", a, event_type="atm"),  # 7 bad enum
        card_event("E07", a, amount="-0.01"),  # 8 negative
        card_event(
            "E08", a, event_type="certification", amount="0", institution_id="T1"
        ),  # 9 fine: 0 allowed
        card_event("E09", a, county_code=VILLAGE),  # 10 a village, not a county
        card_event("E10", a, card_no="A1234"),  # 11 card number shape
        card_event("E11", a, admitted_on="2025-13-01"),  # 12 optional but delivered: must be a date
        card_event("E12", a, event_type="medical", admitted_on="2025-03-18"),  # 13 fine
        card_event("E13", a, occurred_at="2025-03-20T25:13:05+08:00"),  # 14 hour 25
    ]
    got = _load_and_reject(sqlite_url, tmp_path, "card_events", rows)
    _expect(got, 3, "E02", "occurred_at", "offset")
    _expect(got, 4, "E03", "occurred_at", "offset", "yesterday")
    _expect(got, 5, "E04", "occurred_at", "real")
    _expect(got, 6, "E05", "occurred_at", "offset")
    _expect(got, 7, "E06", "event_type", "not one of", "atm")
    _expect(got, 8, "E07", "amount", "at least 0")
    _expect(got, 10, "E09", "county_code", "county")
    _expect(got, 11, "E10", "card_no", "9")
    _expect(got, 12, "E11", "admitted_on", "date")
    _expect(got, 14, "E13", "occurred_at")
    assert sorted(got, key=int) == ["3", "4", "5", "6", "7", "8", "10", "11", "12", "14"]
    stored = {e["event_id"]: e for e in rows_of(sqlite_url, "card_event")}
    assert sorted(stored) == ["E01", "E08", "E12"]
    assert stored["E08"]["amount_cents"] == 0
    assert stored["E12"]["admitted_on"] == date(2025, 3, 18)


def test_timestamps_keep_their_offset_and_give_the_beijing_day(db_url: str, tmp_path: Path) -> None:
    a = make_id(seq=1)
    rows = [
        card_event("E1", a, occurred_at="2025-03-20T23:30:00+00:00"),  # Beijing 2025-03-21 07:30
        card_event("E2", a, occurred_at="2025-03-20T23:30:00Z"),
        card_event("E3", a, occurred_at="2025-03-20T09:13:05+08:00"),
        card_event("E4", a, occurred_at="2025-03-21T01:00:00+09:00"),  # Beijing 2025-03-21 00:00
        card_event("E5", a, occurred_at="2025-03-20T15:59:59.5-08:00"),  # Beijing 2025-03-21 07:59
    ]
    _load_and_reject(db_url, tmp_path, "card_events", rows)
    stored = {e["event_id"]: e for e in rows_of(db_url, "card_event")}
    assert {k: (e["occurred_on"], e["occurred_hour"]) for k, e in stored.items()} == {
        "E1": (date(2025, 3, 21), 7),
        "E2": (date(2025, 3, 21), 7),
        "E3": (date(2025, 3, 20), 9),
        "E4": (date(2025, 3, 21), 0),
        "E5": (date(2025, 3, 21), 7),
    }
    assert stored["E1"]["occurred_at"] == "2025-03-20T23:30:00+00:00"  # as delivered


# ---------------------------------------------------------------- recipients


def test_recipients_must_agree_with_their_id_and_live_in_a_known_village(
    sqlite_url: str, tmp_path: Path
) -> None:
    man, woman = make_id("1955-03-04", seq=1, male=True), make_id("1958-11-30", seq=2, male=False)
    first17 = "431102" + "19600230" + "123"
    no_such_day = first17 + check_char(first17)
    legacy = make_id("1950-07-04", seq=3)
    rows = [
        recipient(man),  # 2 fine
        recipient(woman, gender="M", name="李梅"),  # 3 gender disagrees
        recipient(make_id("1961-01-01", seq=4), birth_date="1961-01-02"),  # 4 birth date disagrees
        recipient(make_id("1961-01-01", seq=5), village_code="431102001999"),  # 5 unknown village
        recipient(make_id("1961-01-01", seq=6), village_code=TOWNSHIP),  # 6 a township is not a village
        recipient(no_such_day, name="王小明"),  # 7 impossible date in the ID
        recipient(make_id("1961-01-01", seq=7), gender="X"),  # 8 bad enum
        recipient(make_id("1961-01-01", seq=8), name=""),  # 9 empty name
        recipient(make_id("1961-01-01", seq=9), card_no="12345678"),  # 10 card number of 8
        recipient(legacy[:6] + legacy[8:17], birth_date="1950-07-04"),  # 11 legacy ID: fine
        recipient(
            make_id("1961-01-01", seq=10), last_certified_on="2024-02-30"
        ),  # 12 optional date, impossible
        recipient(make_id("1961-01-01", seq=11), last_certified_on="", phone=""),  # 13 fine
    ]
    # birth_date of the recipient at line 7 must be the impossible one so that only the ID is blamed
    rows[5]["birth_date"] = "1960-02-30"
    got = _load_and_reject(sqlite_url, tmp_path, "recipients", rows)
    _expect(got, 3, woman, "gender", "17th digit")
    _expect(got, 4, rows[2]["person_id"], "birth_date", "agree", "1961-01-02")
    _expect(got, 5, rows[3]["person_id"], "village_code", "not a known village", "431102001999")
    _expect(got, 6, rows[4]["person_id"], "village_code", "not a known village")
    _expect(got, 7, no_such_day, "person_id", "resident ID is not valid", masked(no_such_day))
    _expect(got, 8, rows[6]["person_id"], "gender", "not one of")
    _expect(got, 9, rows[7]["person_id"], "name", "empty")
    _expect(got, 10, rows[8]["person_id"], "card_no", "9")
    _expect(got, 12, rows[10]["person_id"], "last_certified_on", "real")
    assert sorted(got, key=int) == ["3", "4", "5", "6", "7", "8", "9", "10", "12"]
    assert got["5"]["kind"] == "reference"  # may pass once the village is delivered
    assert got["3"]["kind"] == "invalid"
    # masked: nothing but the key column shows a full ID; names never appear
    for r in got.values():
        assert "王小明" not in r["reason"] and "李梅" not in r["reason"]
        assert no_such_day not in r["reason"]
    stored = {r["person_id"]: r for r in rows_of(sqlite_url, "recipient")}
    assert sorted(stored) == sorted([man, legacy, rows[11]["person_id"]])
    assert stored[rows[11]["person_id"]]["phone"] is None
    assert stored[rows[11]["person_id"]]["last_certified_on"] is None
    assert stored[man]["birth_date"] == date(1955, 3, 4)


def test_a_row_rejected_for_what_it_is_does_not_name_the_village_not_known_yet(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Its reason must not depend on whether its village was delivered before it: that is load order."""
    bad_gender = recipient(make_id("1961-01-01", seq=12), gender="X", village_code="431102001999")
    got = _load_and_reject(sqlite_url, tmp_path, "recipients", [bad_gender])
    assert got["2"]["kind"] == "invalid" and got["2"]["field"] == "gender"
    assert "village" not in got["2"]["reason"]


def test_recipient_with_lowercase_x_is_stored_normalised(sqlite_url: str, tmp_path: Path) -> None:
    # find a person whose check character is X
    pid = next(p for p in (make_id("1960-01-15", seq=s) for s in range(100)) if p.endswith("X"))
    _load_and_reject(sqlite_url, tmp_path, "recipients", [recipient(pid.lower())])
    assert [r["person_id"] for r in rows_of(sqlite_url, "recipient")] == [pid]


# ---------------------------------------------------------------- deaths, incarcerations


def test_deaths_accept_legacy_and_lowercase_ids_and_keep_what_was_delivered(
    db_url: str, tmp_path: Path
) -> None:
    x_id = next(p for p in (make_id("1940-05-06", seq=s) for s in range(100)) if p.endswith("X"))
    rows = [
        death("D1", "431102240126945", name="周珍"),  # the sample's legacy ID
        death("D2", x_id.lower()),
        death("D3", make_id("2026-01-01"), name="赵六"),  # born after the delivery day
        death("D4", make_id(), source="hospital"),
        death("D5", make_id(), death_date="2025-02-29"),  # not a leap year
    ]
    got = _load_and_reject(db_url, tmp_path, "deaths", rows)
    _expect(got, 4, "D3", "person_id", "not valid", masked(make_id("2026-01-01")))
    _expect(got, 5, "D4", "source", "not one of", "hospital")
    _expect(got, 6, "D5", "death_date", "real")
    assert "赵六" not in got["4"]["reason"]
    stored = {d["record_id"]: (d["person_id"], d["person_id_delivered"]) for d in rows_of(db_url, "death")}
    assert stored == {"D1": ("431102192401269456", "431102240126945"), "D2": (x_id, x_id.lower())}


def test_incarceration_end_before_start_is_rejected(sqlite_url: str, tmp_path: Path) -> None:
    rows = [
        incarceration("J1", make_id(seq=1)),  # fine
        incarceration("J2", make_id(seq=2), start_date="2025-05-01", end_date="2025-04-30"),
        incarceration("J3", make_id(seq=3), end_date=""),  # still serving
        incarceration("J4", make_id(seq=4), sentence_type="prison"),
        incarceration("J5", make_id(seq=5), start_date="2025-05-01", end_date="2025-05-01"),  # same day: fine
    ]
    got = _load_and_reject(sqlite_url, tmp_path, "incarcerations", rows)
    _expect(got, 3, "J2", "end_date", "before start_date")
    _expect(got, 5, "J4", "sentence_type", "not one of")
    assert sorted(got, key=int) == ["3", "5"]
    stored = {r["record_id"]: r["end_date"] for r in rows_of(sqlite_url, "incarceration")}
    assert stored == {"J1": date(2025, 9, 30), "J3": None, "J5": date(2025, 5, 1)}


# ---------------------------------------------------------------- regions, supervisors


def test_region_codes_must_fit_their_level_and_parent(sqlite_url: str, tmp_path: Path) -> None:
    rows = [
        {"code": "431102001003", "name": "丙村", "level": "village", "parent_code": TOWNSHIP},  # 2 fine
        {
            "code": "431102002000",
            "name": "某镇",
            "level": "village",
            "parent_code": COUNTY,
        },  # 3 level mismatch
        {"code": "431102001004", "name": "丁村", "level": "village", "parent_code": COUNTY},  # 4 wrong parent
        {"code": "4311020010", "name": "短码", "level": "village", "parent_code": TOWNSHIP},  # 5 10 digits
        {"code": "431102001005", "name": "戊村", "level": "hamlet", "parent_code": TOWNSHIP},  # 6 bad level
        {
            "code": "431102009001",
            "name": "己村",
            "level": "village",
            "parent_code": "431102009000",
        },  # 7 unknown
    ]
    got = _load_and_reject(sqlite_url, tmp_path, "regions", rows)
    _expect(got, 3, "431102002000", "code", "level")
    _expect(got, 4, "431102001004", "parent_code", "enclosing")
    _expect(got, 5, "4311020010", "code", "12-digit")
    _expect(got, 6, "431102001005", "level", "not one of")
    _expect(got, 7, "431102009001", "parent_code")
    assert got["7"]["kind"] == "reference"
    assert "431102001003" in {r["code"] for r in rows_of(sqlite_url, "region")}


def test_a_village_whose_township_is_rejected_waits_for_it(sqlite_url: str, tmp_path: Path) -> None:
    """A region's parent must be a known region: a parent rejected in the same file is not known."""
    rows = [
        {"code": "431102003000", "name": "", "level": "township", "parent_code": COUNTY},  # 2 no name
        {"code": "431102003001", "name": "庚村", "level": "village", "parent_code": "431102003000"},  # 3
    ]
    got = _load_and_reject(sqlite_url, tmp_path, "regions", rows)
    _expect(got, 2, "431102003000", "name", "empty")
    codes = {r["code"] for r in rows_of(sqlite_url, "region")}
    assert "431102003000" not in codes
    assert "431102003001" not in codes, "a village was loaded under a township the warehouse does not have"
    _expect(got, 3, "431102003001", "parent_code")


def test_supervisor_region_must_be_known_and_fit_the_role(sqlite_url: str, tmp_path: Path) -> None:
    rows = [
        supervisor("v1"),  # 2 fine
        supervisor("v2", region_code="431102001999"),  # 3 unknown village
        supervisor("c1", role="county", region_code=VILLAGE),  # 4 a county supervisor on a village
        supervisor("a1", role="auditor", region_code="431100000000"),  # 5 fine
        supervisor("x1", role="boss"),  # 6 bad role
    ]
    got = _load_and_reject(sqlite_url, tmp_path, "supervisors", rows)
    _expect(got, 3, "v2", "region_code", "known region")
    _expect(got, 4, "c1", "region_code", "role")
    _expect(got, 6, "x1", "role", "not one of")
    assert sorted(r["user_id"] for r in rows_of(sqlite_url, "supervisor")) == ["a1", "v1"]


# ---------------------------------------------------------------- suites


def test_suites_in_git_equal_the_contract() -> None:
    for s in SOURCES:
        in_git = json.loads(checks.suite_path(s).read_text(encoding="utf-8"))
        assert in_git == checks.build_suite(s), f"checks/{s.name}.json differs from the contract"


def test_risk_quality_suites_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "risk"), "quality", "suites"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "RISK_VAR_DIR": str(tmp_path / "var"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "agrees" in done.stderr


def test_every_expectation_names_a_field_and_a_reason() -> None:
    for s in SOURCES:
        for e in checks.build_suite(s)["expectations"]:
            assert e["meta"]["field"] in s.column_names
            assert e["meta"]["zh"] and e["meta"]["en"]


def test_long_values_are_loaded_or_rejected_by_row_never_crash_the_day(db_url: str, tmp_path: Path) -> None:
    """The contract sets no length on keys or free text; the warehouse's column sizes must not turn a long
    value into an error that stops the day (PostgreSQL enforces VARCHAR lengths, SQLite does not)."""
    a = make_id(seq=1)
    long_id = "P" + "0" * 79  # an 80-character payment_id
    long_institution = "某某市第一人民医院" * 10  # 90 characters
    got = _load_and_reject(
        db_url,
        tmp_path,
        "payments",
        [payment(long_id, a), payment("P2", a)],
        extra={"card_events": [card_event("E1", a, institution_id=long_institution)]},
    )
    stored = {p["payment_id"] for p in rows_of(db_url, "payment")}
    assert "P2" in stored
    assert long_id in stored or [r["key"] for r in got.values()] == [long_id]
    events = {e["event_id"]: e["institution_id"] for e in rows_of(db_url, "card_event")}
    assert events.get("E1") == long_institution or any(
        r["source"] == "card_events" and r["key"] == "E1" for r in rejects(db_url)
    )
