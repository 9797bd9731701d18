"""Keys, re-deliveries and conflicts (contract §1), the ledger (§5), and the promise that loading days in any
order, or twice, ends in the same warehouse -- on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import (
    COLUMNS,
    REGIONS,
    VILLAGE,
    assert_balanced,
    base_day,
    database,
    diff_snapshots,
    incarceration,
    ledger_of,
    load,
    make_id,
    masked,
    payment,
    recipient,
    rejects,
    rows_of,
    settings,
    snapshot,
    write,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import inspect

from risk import pipeline
from risk.db import gateway, tables
from risk.ingest import ahead, delivery, intake

D0, D1, D2, D3 = "2025-03-01", "2025-03-10", "2025-04-10", "2025-05-10"
A, B, C = make_id(seq=1), make_id(seq=2, male=False), make_id(seq=3)


def _landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    base_day(landing, D0, people=[recipient(A), recipient(B, name="李梅"), recipient(C)])
    return landing


def _payment(url: str, payment_id: str) -> dict:
    found = [p for p in rows_of(url, "payment") if p["payment_id"] == payment_id]
    assert len(found) == 1
    return found[0]


# ---------------------------------------------------------------- append-only: across days


def test_exact_redelivery_on_a_later_day_is_skipped_and_counted(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(landing, D1, "payments", [payment("P1", A), payment("P2", B)])
    write(landing, D2, "payments", [payment("P3", C), payment("P1", A)])  # P1 again, same content
    s = settings(sqlite_url, tmp_path)
    _, _, day2 = load(s, landing, D0, D1, D2)

    p1 = _payment(sqlite_url, "P1")
    assert (p1["delivery_day"], p1["source_line"]) == (D1, 2)
    assert sorted(p["payment_id"] for p in rows_of(sqlite_url, "payment")) == ["P1", "P2", "P3"]
    assert rejects(sqlite_url) == []
    led = ledger_of(sqlite_url, D2, "payments")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (2, 1, 0, 1)
    assert (day2["files"][0]["loaded"], day2["files"][0]["redelivered"]) == (1, 1)
    assert_balanced(sqlite_url)


def test_same_key_other_content_on_a_later_day_is_a_conflict(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(landing, D1, "payments", [payment("P1", A, amount="300.00"), payment("P2", B)])
    write(landing, D2, "payments", [payment("P3", C), payment("P1", A, amount="3000.00")])
    load(settings(sqlite_url, tmp_path), landing, D0, D1, D2)

    assert _payment(sqlite_url, "P1")["amount_cents"] == 30000  # the earliest stands
    got = rejects(sqlite_url)
    assert [(r["source"], r["delivery_day"], r["line"], r["key"], r["kind"]) for r in got] == [
        ("payments", D2, "3", "P1", "conflict")
    ]
    assert "P1" in got[0]["reason"] and D1 in got[0]["reason"] and "already delivered" in got[0]["reason"]
    led = ledger_of(sqlite_url, D2, "payments")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (2, 1, 1, 0)
    assert_balanced(sqlite_url)


def test_older_day_loaded_after_a_newer_one_still_stands(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(landing, D1, "payments", [payment("P1", A, amount="300.00"), payment("P2", B)])
    write(landing, D2, "payments", [payment("P3", C), payment("P1", A, amount="3000.00"), payment("P2", B)])
    s = settings(sqlite_url, tmp_path)
    load(s, landing, D0, D2, D1)  # the newer day first

    p1 = _payment(sqlite_url, "P1")
    assert (p1["amount_cents"], p1["delivery_day"], p1["source_line"]) == (30000, D1, 2)
    assert _payment(sqlite_url, "P2")["delivery_day"] == D1
    got = rejects(sqlite_url)
    assert [(r["delivery_day"], r["line"], r["key"], r["kind"]) for r in got] == [(D2, "3", "P1", "conflict")]
    assert D1 in got[0]["reason"]  # names the row that stands now
    led = ledger_of(sqlite_url, D2, "payments")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (3, 1, 1, 1)
    assert_balanced(sqlite_url)


def test_three_versions_of_a_key_loaded_backwards(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(landing, D1, "payments", [payment("P1", A, amount="1.00")])
    write(landing, D2, "payments", [payment("P1", A, amount="2.00"), payment("P1", A, amount="1.00")])
    write(landing, D3, "payments", [payment("P1", A, amount="2.00")])
    load(settings(sqlite_url, tmp_path), landing, D0, D3, D2, D1)

    assert _payment(sqlite_url, "P1")["delivery_day"] == D1
    got = [(r["delivery_day"], r["line"], r["kind"]) for r in rejects(sqlite_url)]
    # D2 line 2 and D3 line 2 differ from the standing row; D2 line 3 is an exact re-delivery of it
    assert got == [(D2, "2", "conflict"), (D3, "2", "conflict")]
    led = ledger_of(sqlite_url, D2, "payments")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (2, 0, 1, 1)
    assert_balanced(sqlite_url)


# ---------------------------------------------------------------- append-only: within one file


def test_duplicates_within_one_file(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(
        landing,
        D1,
        "payments",
        [
            payment("P1", A, amount="300.00"),  # 2 stands
            payment("P2", B),  # 3
            payment("P1", A, amount="300.00"),  # 4 same: re-delivery
            payment("P1", A, amount="301.00"),  # 5 other content: conflict
        ],
    )
    load(settings(sqlite_url, tmp_path), landing, D0, D1)

    p1 = _payment(sqlite_url, "P1")
    assert (p1["amount_cents"], p1["source_line"]) == (30000, 2)
    got = rejects(sqlite_url)
    assert [(r["line"], r["key"], r["kind"]) for r in got] == [("5", "P1", "conflict")]
    assert "line 2" in got[0]["reason"]
    led = ledger_of(sqlite_url, D1, "payments")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (4, 2, 1, 1)


def test_invalid_first_line_does_not_make_a_later_duplicate_a_conflict(
    sqlite_url: str, tmp_path: Path
) -> None:
    landing = _landing(tmp_path)
    write(landing, D1, "payments", [payment("P1", A, amount="-1.00"), payment("P1", A, amount="1.00")])
    load(settings(sqlite_url, tmp_path), landing, D0, D1)
    assert _payment(sqlite_url, "P1")["source_line"] == 3
    assert [(r["line"], r["kind"]) for r in rejects(sqlite_url)] == [("2", "invalid")]
    assert_balanced(sqlite_url)


# ---------------------------------------------------------------- upsert sources


def test_upsert_latest_delivery_day_stands_in_any_order(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(landing, D1, "recipients", [recipient(A, bank_account="NEW-1"), recipient(C)])  # A changes, C same
    write(landing, D2, "recipients", [recipient(A, bank_account="NEWER-2")])
    s = settings(sqlite_url, tmp_path)
    load(s, landing, D2, D0, D1)  # the latest first

    stored = {r["person_id"]: r for r in rows_of(sqlite_url, "recipient")}
    assert (stored[A]["bank_account"], stored[A]["delivery_day"]) == ("NEWER-2", D2)
    assert stored[B]["delivery_day"] == D0
    assert rejects(sqlite_url) == []  # an older version is superseded, not rejected
    assert_balanced(sqlite_url)


def test_first_delivery_of_an_upsert_row_is_not_counted_as_a_redelivery(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The ledger's re-deliveries are "exact re-deliveries of rows already loaded" (contract §5): when a later
    recipients file repeats a person unchanged, the first delivery was loaded, not re-delivered."""
    landing = _landing(tmp_path)  # A, B and C delivered on D0
    write(landing, D2, "recipients", [recipient(A)])  # A again, unchanged
    load(settings(sqlite_url, tmp_path), landing, D0, D2)
    first = ledger_of(sqlite_url, D0, "recipients")
    assert (first["rows_read"], first["loaded"], first["redelivered"]) == (3, 3, 0)
    assert_balanced(sqlite_url)


def test_upsert_duplicate_in_one_file_first_line_stands(sqlite_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write(landing, D0, "regions", REGIONS)
    write(
        landing,
        D0,
        "recipients",
        [
            recipient(A, bank_account="FIRST"),  # 2
            recipient(B),  # 3
            recipient(A, bank_account="FIRST"),  # 4 same: re-delivery
            recipient(A, bank_account="SECOND", name="张三丰"),  # 5 conflict
        ],
    )
    load(settings(sqlite_url, tmp_path), landing, D0)

    stored = {r["person_id"]: r for r in rows_of(sqlite_url, "recipient")}
    assert (stored[A]["bank_account"], stored[A]["source_line"]) == ("FIRST", 2)
    got = rejects(sqlite_url)
    assert [(r["line"], r["key"], r["kind"]) for r in got] == [("5", A, "conflict")]
    led = ledger_of(sqlite_url, D0, "recipients")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (4, 2, 1, 1)


def test_conflict_reason_masks_a_person_id_key(sqlite_url: str, tmp_path: Path) -> None:
    """Reasons mask person_id values (as the validation reasons do); the key column carries the ID."""
    landing = tmp_path / "landing"
    write(landing, D0, "regions", REGIONS)
    write(
        landing, D0, "recipients", [recipient(A, bank_account="FIRST"), recipient(A, bank_account="SECOND")]
    )
    load(settings(sqlite_url, tmp_path), landing, D0)
    [r] = rejects(sqlite_url)
    assert r["key"] == A
    assert A not in r["reason"], r["reason"]
    assert masked(A) in r["reason"]


# ---------------------------------------------------------------- references: rows waiting for their region


NEW_TOWNSHIP = "431102002000"
NEW_VILLAGE = "431102002001"
NEW_REGIONS = [
    {"code": NEW_TOWNSHIP, "name": "新镇", "level": "township", "parent_code": "431102000000"},
    {"code": NEW_VILLAGE, "name": "新村", "level": "village", "parent_code": NEW_TOWNSHIP},
]


def test_recipient_waits_for_its_village_then_loads(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(landing, D1, "recipients", [recipient(make_id(seq=40), village_code=NEW_VILLAGE)])
    write(landing, D2, "regions", NEW_REGIONS)
    s = settings(sqlite_url, tmp_path)
    load(s, landing, D0, D1)
    assert [(r["delivery_day"], r["line"], r["kind"]) for r in rejects(sqlite_url)] == [
        (D1, "2", "reference")
    ]
    assert_balanced(sqlite_url)
    load(s, landing, D2)
    assert rejects(sqlite_url) == []
    person = [r for r in rows_of(sqlite_url, "recipient") if r["village_code"] == NEW_VILLAGE]
    assert [(p["delivery_day"], p["source_line"]) for p in person] == [(D1, 2)]
    assert_balanced(sqlite_url)


def test_rows_waiting_on_a_chain_of_regions_are_admitted_in_any_order(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A recipient waits for its village, the village waits for its township: once the township arrives both
    must load, whichever of them waited first."""
    landing = _landing(tmp_path)
    write(landing, D1, "recipients", [recipient(make_id(seq=40), village_code=NEW_VILLAGE)])
    write(landing, D2, "regions", NEW_REGIONS[:1])  # the township
    write(landing, D3, "regions", NEW_REGIONS[1:])  # the village
    in_order = settings(sqlite_url, tmp_path)
    load(in_order, landing, D0, D1, D2, D3)
    assert rejects(sqlite_url) == []

    other = settings(sqlite_url.replace("warehouse.db", "other.db"), tmp_path)
    load(other, landing, D1, D3, D0, D2)  # recipient waits, village waits, ..., the township arrives last
    assert rejects(other.database_url) == []
    assert snapshot(other.database_url) == snapshot(sqlite_url), diff_snapshots(
        snapshot(sqlite_url), snapshot(other.database_url)
    )


def test_a_waiting_row_keeps_its_place_in_its_file(sqlite_url: str, tmp_path: Path) -> None:
    """Within one recipients file the first line of a person stands and a later line with other content is a
    conflict -- also when the first line had to wait for its village and the later one did not."""
    landing = _landing(tmp_path)
    person = make_id(seq=41)
    write(
        landing,
        D1,
        "recipients",
        [
            recipient(person, village_code=NEW_VILLAGE),  # 2: waits for its village
            recipient(person, village_code=VILLAGE),
        ],
    )  # 3
    write(landing, D2, "regions", NEW_REGIONS)
    regions_first = settings(sqlite_url.replace("warehouse.db", "regions-first.db"), tmp_path)
    load(regions_first, landing, D0, D2, D1)
    stored = [r for r in rows_of(regions_first.database_url, "recipient") if r["person_id"] == person]
    assert [(r["source_line"], r["village_code"]) for r in stored] == [(2, NEW_VILLAGE)]
    assert [(r["line"], r["kind"]) for r in rejects(regions_first.database_url)] == [("3", "conflict")]

    load(settings(sqlite_url, tmp_path), landing, D0, D1, D2)  # the first line waits, then is admitted
    assert snapshot(sqlite_url) == snapshot(regions_first.database_url), diff_snapshots(
        snapshot(regions_first.database_url), snapshot(sqlite_url)
    )
    assert_balanced(sqlite_url)


def test_upsert_conflict_in_a_file_stays_when_a_later_day_supersedes(sqlite_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write(landing, D0, "regions", REGIONS)
    write(
        landing, D0, "recipients", [recipient(A, bank_account="FIRST"), recipient(A, bank_account="SECOND")]
    )
    write(landing, D1, "recipients", [recipient(A, bank_account="THIRD")])
    load(settings(sqlite_url, tmp_path), landing, D1, D0)
    stored = [r for r in rows_of(sqlite_url, "recipient") if r["person_id"] == A]
    assert [(r["bank_account"], r["delivery_day"]) for r in stored] == [("THIRD", D1)]
    assert [(r["delivery_day"], r["line"], r["kind"]) for r in rejects(sqlite_url)] == [(D0, "3", "conflict")]
    led = ledger_of(sqlite_url, D0, "recipients")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (2, 1, 1, 0)
    assert_balanced(sqlite_url)


# ---------------------------------------------------------------- the same day twice


def test_loading_a_day_twice_changes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    write(
        landing,
        D1,
        "payments",
        [payment("P1", A), payment("P1", A, amount="2.00"), payment("P2", B, amount="x")],
    )
    write(landing, D1, "recipients", [recipient(make_id(seq=40), village_code=NEW_VILLAGE)])
    write(landing, D1, "incarcerations", [incarceration("J1", A)])
    s = settings(sqlite_url, tmp_path)
    load(s, landing, D0, D1)
    first = snapshot(sqlite_url)
    load(s, landing, D1, D0)
    assert snapshot(sqlite_url) == first, diff_snapshots(first, snapshot(sqlite_url))
    assert_balanced(sqlite_url)


# ---------------------------------------------------------------- sample days, any order (contract §1)


def _read_sample(sample: Path, day: str, source: str) -> list[dict]:
    folder = sample / day
    path = folder / f"{source}.csv" if (folder / f"{source}.csv").exists() else folder / f"{source}.csv.gz"
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


SAMPLE_DAYS = ["2025-03-01", "2025-03-10", "2025-04-10", "2025-04-15", "2025-06-15"]
OWN_DAYS = ["2025-03-08", "2025-04-20", "2025-05-20", "2025-06-20"]
ALL_DAYS = sorted(SAMPLE_DAYS + OWN_DAYS)
# a shuffle in which a recipient waiting for a new village, and the village waiting for a township from the
# master-data day, both come before that day
SHUFFLED = [
    "2025-05-20",
    "2025-04-20",
    "2025-06-20",
    "2025-03-10",
    "2025-06-15",
    "2025-03-01",
    "2025-04-15",
    "2025-03-08",
    "2025-04-10",
]
READMITTED = make_id("1958-08-08", area="431102", seq=77, male=False)
CHANGED = "431125196205276096"  # a sample recipient whose bank account changes on 2025-05-20


@pytest.fixture(scope="module")
def mixed_landing(tmp_path_factory: pytest.TempPathFactory, sample_landing: Path) -> Path:
    """Sample days plus days of our own with conflicts, re-deliveries, an upsert and a late region."""
    sample = sample_landing
    landing = tmp_path_factory.mktemp("mixed") / "landing"
    for day in SAMPLE_DAYS:
        shutil.copytree(sample / day, landing / day)
    pay = {r["payment_id"]: r for r in _read_sample(sample, "2025-03-10", "payments")}
    # an older day that conflicts with 2025-03-10's P000000001 (older wins)
    write(
        landing,
        "2025-03-08",
        "payments",
        [{**pay["P000000001"], "amount": "999.99"}, payment("P900000001", "431125196205276096")],
    )
    write(
        landing,
        "2025-04-20",
        "payments",
        [
            pay["P000000002"],
            pay["P000000003"],  # exact re-deliveries
            {**pay["P000000004"], "paid_on": "2025-03-11"},  # conflict
            pay["P000000001"],  # same as 2025-03-10, which is itself the conflicting version
            payment("P900000002", CHANGED),
            payment("P900000002", CHANGED),  # same twice in one file
            payment("P900000003", CHANGED),
            payment("P900000003", CHANGED, amount="1.23"),  # differs in one file
            payment("P900000004", CHANGED, amount="1.234"),  # invalid
        ],
        columns=list(reversed(COLUMNS["payments"])),
    )
    people = {r["person_id"]: r for r in _read_sample(sample, "2025-03-01", "recipients")}
    unchanged = next(p for p in people if p != CHANGED)
    write(
        landing,
        "2025-05-20",
        "recipients",
        [
            {**people[CHANGED], "bank_account": "6200000000000000001"},  # upsert: the later stands
            people[unchanged],  # same as 2025-03-01
            recipient(READMITTED, village_code=NEW_VILLAGE),  # its village comes on 2025-06-20
        ],
    )
    write(
        landing, "2025-06-20", "regions", [NEW_REGIONS[0] | {"parent_code": "431102000000"}, NEW_REGIONS[1]]
    )
    return landing


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path_factory: pytest.TempPathFactory, mixed_landing: Path):
    """The backend, a way to get fresh warehouses on it, and the mixed landing loaded in date order."""
    kind = request.param
    folder = tmp_path_factory.mktemp(f"order-{kind}")
    stack = []

    def fresh(name: str) -> str:
        sub = folder / name
        sub.mkdir()
        cm = database(kind, sub)
        stack.append(cm)
        return cm.__enter__()

    url = fresh("date-order")
    s = settings(url, folder)
    load(s, mixed_landing, *ALL_DAYS)
    reference = snapshot(url)
    yield {
        "kind": kind,
        "fresh": fresh,
        "folder": folder,
        "url": url,
        "reference": reference,
        "landing": mixed_landing,
    }
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def test_date_order_gives_what_the_contract_says(backend) -> None:
    url = backend["url"]
    assert_balanced(url)
    got = {(r["delivery_day"], r["line"], r["key"], r["kind"]) for r in rejects(url)}
    assert got == {
        ("2025-03-10", "2", "P000000001", "conflict"),  # 2025-03-08 stands
        ("2025-04-10", "3006", "BAD00003", "invalid"),  # from the sample's expected rejects
        ("2025-04-20", "4", "P000000004", "conflict"),
        ("2025-04-20", "5", "P000000001", "conflict"),
        ("2025-04-20", "9", "P900000003", "conflict"),
        ("2025-04-20", "10", "P900000004", "invalid"),
    }
    p1 = [p for p in rows_of(url, "payment") if p["payment_id"] == "P000000001"]
    assert [(p["delivery_day"], p["amount_cents"]) for p in p1] == [("2025-03-08", 99999)]
    people = {r["person_id"]: r for r in rows_of(url, "recipient")}
    assert (people[CHANGED]["bank_account"], people[CHANGED]["delivery_day"]) == (
        "6200000000000000001",
        "2025-05-20",
    )
    assert people[READMITTED]["village_code"] == NEW_VILLAGE
    led = ledger_of(url, "2025-04-20", "payments")
    assert (led["rows_read"], led["loaded"], led["rejected"], led["redelivered"]) == (9, 2, 4, 3)
    deaths = {d["record_id"]: d for d in rows_of(url, "death")}
    assert deaths["D0000088"]["person_id"] == "431102192401269456"  # the sample's legacy ID
    assert deaths["D0000088"]["person_id_delivered"] == "431102240126945"


@pytest.mark.parametrize("order", ["reverse", "shuffled"])
def test_any_order_gives_the_same_warehouse(backend, order: str) -> None:
    days = list(reversed(ALL_DAYS)) if order == "reverse" else SHUFFLED
    assert sorted(days) == ALL_DAYS
    url = backend["fresh"](order)
    load(settings(url, backend["folder"]), backend["landing"], *days)
    # the older day's conflicting row stands although it was loaded after the newer one
    p1 = [p for p in rows_of(url, "payment") if p["payment_id"] == "P000000001"]
    assert [(p["delivery_day"], p["amount_cents"]) for p in p1] == [("2025-03-08", 99999)]
    assert ("2025-03-10", "2", "P000000001", "conflict") in {
        (r["delivery_day"], r["line"], r["key"], r["kind"]) for r in rejects(url)
    }
    # the recipient whose village came with a day loaded later is in
    assert READMITTED in {r["person_id"] for r in rows_of(url, "recipient")}
    got = snapshot(url)
    assert got == backend["reference"], diff_snapshots(backend["reference"], got)
    assert_balanced(url)


_PERMUTATION = itertools.count()


@examples(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.permutations(ALL_DAYS))
def test_every_order_of_the_delivery_days_gives_the_same_warehouse(backend, days: list[str]) -> None:
    """A property (Hypothesis picks the orders, and shrinks a failing one to the fewest days out of place):
    whatever order departments' days arrive in, the warehouse ends the same, table by table."""
    url = backend["fresh"](f"permutation-{next(_PERMUTATION)}")
    load(settings(url, backend["folder"]), backend["landing"], *days)
    got = snapshot(url)
    assert got == backend["reference"], diff_snapshots(backend["reference"], got)


def test_loading_all_days_in_one_go_gives_the_same_warehouse(backend, monkeypatch) -> None:
    """`risk run`'s way: every pending day in one call, the self-contained facts checked ahead in batches
    that span days (here two files a batch at most), the big tables' indexes set aside and built again."""
    monkeypatch.setattr(delivery, "BULK_MIN_ROWS", 0)
    monkeypatch.setattr(ahead, "BATCH_BYTES", 400_000)
    monkeypatch.setattr(ahead, "PARALLEL_BYTES", 2**62)  # checked ahead in this process, where the spies are
    batches: list[int] = []
    check_batch = intake.check_batch
    monkeypatch.setattr(intake, "check_batch", lambda source, files, typed=False, **kw: batches.append(len(files))
                        or check_batch(source, files, typed, **kw))
    set_aside: list[str] = []
    indexes_set_aside = gateway.indexes_set_aside
    monkeypatch.setattr(gateway, "indexes_set_aside", lambda url, ts: set_aside.extend(t.name for t in ts) or
                        indexes_set_aside(url, ts))
    url = backend["fresh"]("in-one-go")
    s = settings(url, backend["folder"])
    pipeline.prepare(s)
    summaries = delivery.load_days(s, backend["landing"], ALL_DAYS)
    assert [d["day"] for d in summaries] == ALL_DAYS
    assert max(batches) >= 2 and set_aside == ["payment", "card_event"]
    got = snapshot(url)
    assert got == backend["reference"], diff_snapshots(backend["reference"], got)
    assert_balanced(url)
    with gateway.transaction(url) as conn:
        for table in (tables.payment, tables.card_event):
            assert {ix.name for ix in table.indexes} <= {ix["name"] for ix in inspect(conn).get_indexes(table.name)}


def test_checking_ahead_in_a_worker_process_gives_the_same_warehouse(backend, monkeypatch) -> None:
    """A load big enough checks the self-contained facts in a process of its own, beside the one storing, a
    big file in slices (here of 7 rows, so that rejected rows fall in several), and hands the typed rows
    over in files that are gone when the load is."""
    monkeypatch.setattr(ahead, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(intake, "SUITE_ROWS", 7)
    url = backend["fresh"]("worker-process")
    s = settings(url, backend["folder"])
    pipeline.prepare(s)
    with ahead.Intake(backend["landing"], ALL_DAYS) as checking:
        assert checking.parallel and checking.suite_rows == 7
    spools: list[Path] = []
    close = ahead.Intake.close
    monkeypatch.setattr(ahead.Intake, "close", lambda self: spools.append(self.spool) or close(self))
    delivery.load_days(s, backend["landing"], ALL_DAYS)
    assert spools and all(p is not None and not p.exists() for p in spools), spools
    got = snapshot(url)
    assert got == backend["reference"], diff_snapshots(backend["reference"], got)
    assert_balanced(url)


def test_a_big_file_checked_in_slices_gets_the_verdicts_of_the_whole(sample_landing: Path, tmp_path: Path) -> None:
    """Slices of 1,000 rows (two months of card events with rejected rows, each file several slices) pass and
    reject exactly the rows one suite run over both files does, in the same order, typed the same, whether
    the rows stay in memory or go to the spool the worker process leaves them in."""
    from risk.contract import BY_NAME

    source = BY_NAME["card_events"]
    files = [(day, sample_landing / day / "card_events.csv.gz") for day in ("2025-11-01", "2025-12-01")]
    whole = intake.check_batch(source, files, typed=True, suite_rows=10**9)
    assert all(c.rows_read > 3_000 and c.rejections for c in whole), [(c.rows_read, len(c.rejections)) for c in whole]
    for spool in (None, tmp_path):
        sliced = intake.check_batch(source, files, typed=True, suite_rows=1_000, spool=spool)
        assert all(bool(c.rows_file) == (spool is not None) for c in sliced)
        for got, want in zip(sliced, whole, strict=True):
            assert got.rejections == want.rejections
            pd.testing.assert_frame_equal(ahead.spooled_rows(got).rows, want.rows)
            assert not got.rows_file
    assert list(tmp_path.iterdir()) == []  # each spooled file is gone once read


LOADER_KILLED = """
import sys, time
from risk.contract import BY_NAME
from risk.ingest.ahead import Intake
days = sys.argv[2:]
with Intake(sys.argv[1], days, parallel=True, suite_rows=50) as checking:
    checking.take(days[0], BY_NAME["card_events"])
    print(*checking.executor._processes, flush=True)
    time.sleep(600)
"""


def test_the_checking_worker_ends_when_the_loading_process_is_killed(sample_landing: Path) -> None:
    """A loader killed (a task's timeout, the kernel short of memory) takes its checking worker with it
    within seconds, instead of leaving it checking, and holding memory, for no one."""
    import psutil

    days = ["2025-11-01", "2025-12-01"]
    loader = subprocess.Popen([sys.executable, "-c", LOADER_KILLED, str(sample_landing), *days],
                              stdout=subprocess.PIPE, text=True)
    try:
        worker = psutil.Process(int(loader.stdout.readline()))
        assert worker.is_running() and worker.ppid() == loader.pid
        loader.kill()
        loader.wait(timeout=10)
        try:
            worker.wait(timeout=10)  # reaped by whoever adopted it; gone either way
        except psutil.TimeoutExpired:
            pytest.fail(f"the checking worker {worker.pid} outlived its loader by 10 s")
        except psutil.NoSuchProcess:
            pass
        assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    finally:
        loader.kill()


def _dies_in_a_worker(source, batch, *rest):
    """The worker process's task, which ends its process at once (as the kernel ends one out of memory)."""
    assert multiprocessing.parent_process() is not None
    os._exit(9)


def test_a_checking_worker_that_dies_leaves_its_work_to_the_loading_process(backend, monkeypatch, caplog) -> None:
    monkeypatch.setattr(ahead, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(ahead, "checked_in_worker", _dies_in_a_worker)
    url = backend["fresh"]("worker-dies")
    s = settings(url, backend["folder"])
    pipeline.prepare(s)
    with caplog.at_level(logging.WARNING, logger="risk.ingest.ahead"):
        delivery.load_days(s, backend["landing"], ALL_DAYS)
    assert "the checking worker stopped" in caplog.text
    got = snapshot(url)
    assert got == backend["reference"], diff_snapshots(backend["reference"], got)
    assert_balanced(url)


@pytest.mark.postgres
def test_postgresql_statistics_are_refreshed_for_the_tables_a_load_changed_a_lot(tmp_path: Path,
                                                                                 sample_landing: Path) -> None:
    """With autovacuum off (as on these machines) a loaded table has no statistics and no visibility map,
    and the rules' plans are many times slower: a load vacuums and analyses what it changed by a tenth or
    more (never-analysed tables first of all), and leaves alone what it barely touched."""
    from sqlalchemy import text

    def vacuumed(url: str) -> dict[str, int]:
        with gateway.transaction(url) as conn:
            return dict(conn.execute(text("SELECT relname, vacuum_count FROM pg_stat_user_tables")).all())

    with database("postgres", tmp_path) as url:
        s = settings(url, tmp_path)
        pipeline.prepare(s)
        delivery.load_days(s, sample_landing, ["2025-03-01", "2025-03-10", "2025-04-01"])
        first = vacuumed(url)
        assert {t: first[t] for t in ("region", "recipient", "supervisor", "certification", "payment",
                                      "card_event", "death")} == dict.fromkeys(
            ("region", "recipient", "supervisor", "certification", "payment", "card_event", "death"), 1)
        assert first["incarceration"] == 0  # nothing loaded into it yet
        with gateway.transaction(url) as conn:
            planned = dict(conn.execute(text(
                "SELECT relname, reltuples FROM pg_class WHERE relname IN ('payment', 'recipient')")).all())
        assert min(planned.values()) > 0
        delivery.load_days(s, sample_landing, ["2025-04-10", "2025-04-15"])  # a month's payments, a few deaths
        second = vacuumed(url)
        assert second["payment"] == 2 and second["death"] == 1 and second["recipient"] == 1


def test_indexes_a_stopped_bulk_load_left_out_are_built_by_the_next_run(backend) -> None:
    url = backend["fresh"]("stopped-bulk")
    s = settings(url, backend["folder"])
    pipeline.prepare(s)
    with gateway.transaction(url) as conn:  # what a bulk load killed before its end leaves
        for ix in tables.card_event.indexes:
            ix.drop(conn)
    pipeline.prepare(s)
    with gateway.transaction(url) as conn:
        names = {ix["name"] for ix in inspect(conn).get_indexes("card_event")}
    assert {ix.name for ix in tables.card_event.indexes} <= names


def test_loading_every_day_again_changes_nothing(backend) -> None:
    """Runs last on the date-order warehouse: every day loaded a second time."""
    url = backend["url"]
    load(settings(url, backend["folder"]), backend["landing"], *ALL_DAYS)
    assert snapshot(url) == backend["reference"], diff_snapshots(backend["reference"], snapshot(url))
    assert_balanced(url)


# ---------------------------------------------------------------- the whole sample (contract §7)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sample_run(request, tmp_path_factory: pytest.TempPathFactory, sample_landing: Path):
    """`pipeline.run` over the whole sample landing, once per database."""
    folder = tmp_path_factory.mktemp(f"sample-{request.param}")
    with database(request.param, folder) as url:
        summary = pipeline.run(settings(url, folder), sample_landing)
        yield url, summary


@pytest.mark.slow
def test_sample_rejects_exactly_the_expected_rows(sample_run, sample_landing: Path) -> None:
    url, summary = sample_run
    with open(sample_landing.parent / "expected-rejects.csv", encoding="utf-8", newline="") as f:
        expected = sorted((r["source"], r["delivery_day"], r["line"], r["key"]) for r in csv.DictReader(f))
    got = sorted((r["source"], r["delivery_day"], r["line"], r["key"]) for r in rejects(url))
    assert got == expected
    assert len(summary.days) == len([p for p in sample_landing.iterdir() if p.is_dir()])


@pytest.mark.slow
def test_sample_ledger_balances_for_every_file(sample_run, sample_landing: Path) -> None:
    url, _ = sample_run
    led = assert_balanced(url)
    delivered = sorted(f"{p.parent.name}/{p.name}" for p in sample_landing.glob("*/*.csv*"))
    assert sorted(r["file_name"] for r in led) == delivered
    assert sum(r["redelivered"] for r in led) >= 4  # across days and within one file (contract §7)
    people = rows_of(url, "recipient")
    assert len(people) == 3000


@pytest.mark.slow
def test_sample_ledger_command_agrees(sample_run, tmp_path: Path) -> None:
    url, _ = sample_run
    done = subprocess.run(
        [str(RISK), "quality", "ledger", "--db", url],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert rows and all(r["balanced"] == "True" for r in rows)
    assert {"rows_read", "loaded", "rejected", "redelivered"} <= set(rows[0])


RISK = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "risk"


def _env(tmp_path: Path) -> dict:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RISK_VAR_DIR": str(tmp_path / "var")}
