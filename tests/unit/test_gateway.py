"""The one gateway's bulk writes and key lookups, on SQLite and PostgreSQL: what goes in comes back."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from warehouses import warehouse

from risk.db import gateway
from risk.db.tables import payment, sighting


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path: Path):
    with warehouse(request.param, tmp_path) as u:
        gateway.migrate(u)
        yield u


def _payments(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "payment_id": pd.Series([f"P{i:06d}" for i in range(start, start + n)], dtype="str"),
        "person_id": "431102196001150139", "benefit_type": "resident_pension", "period": "2025-03-01",
        "amount_cents": pd.Series(range(1, n + 1), dtype="int64"), "paid_on": "2025-03-10",
        "bank_account": "6217000000000001", "delivery_day": "2025-03-10", "source_file": "2025-03-10/payments.csv",
        "source_line": pd.Series(range(2, n + 2), dtype="int64"),
    })


def test_text_with_quotes_commas_and_line_breaks_arrives_as_it_was(url: str) -> None:
    rows = _payments(3)
    rows["bank_account"] = pd.Series(['62,17"00"', "a\nb\r\nc", "tab\there\\"], dtype="str")
    with gateway.transaction(url) as conn:
        gateway.insert_frame(conn, payment, rows)
        back = gateway.keys_present(conn, payment, "payment_id", rows["payment_id"], ["bank_account"])
    assert dict(zip(back["payment_id"], back["bank_account"], strict=True)) == dict(
        zip(rows["payment_id"], rows["bank_account"], strict=True))


def test_a_frame_glued_to_an_empty_one_is_written_whole(url: str) -> None:
    """pandas leaves an empty first chunk in a column after a concat with an empty frame; Arrow's CSV writer
    garbled such a column (COPY then failed on a NUL byte)."""
    empty = pd.DataFrame({"source": pd.Series([], dtype="str"), "delivery_day": pd.Series([], dtype=object),
                          "source_line": pd.Series([], dtype=object), "record_key": pd.Series([], dtype="str"),
                          "source_file": pd.Series([], dtype=object), "row_hash": pd.Series([], dtype="str"),
                          "kind": pd.Series([], dtype=object), "within_file": pd.Series([], dtype=bool)})
    one = pd.DataFrame({"source": pd.Series(["payments"], dtype="str"), "delivery_day": ["2025-10-10"],
                        "source_line": [2977], "record_key": pd.Series(["P000023563"], dtype="str"),
                        "source_file": ["2025-10-10/payments.csv"],
                        "row_hash": pd.Series(["905a5e6eb588b563"], dtype="str"), "kind": ["redelivery"],
                        "within_file": [True]})
    glued = pd.concat([empty, one], ignore_index=True)
    with gateway.transaction(url) as conn:
        assert gateway.insert_frame(conn, sighting, glued) == 1
        back = gateway.keys_present(conn, sighting, "record_key", glued["record_key"], ["row_hash", "source_line"])
    assert back.to_dict("records") == [{"record_key": "P000023563", "row_hash": "905a5e6eb588b563",
                                        "source_line": 2977}]


def test_keys_present_and_delete_keys_work_on_many_keys(url: str) -> None:
    with gateway.transaction(url) as conn:
        gateway.insert_frame(conn, payment, _payments(50_000))
        asked = pd.Series([f"P{i:06d}" for i in range(49_000, 52_000)], dtype="str")
        found = gateway.keys_present(conn, payment, "payment_id", asked, ["source_line"])
        assert sorted(found["payment_id"]) == [f"P{i:06d}" for i in range(49_000, 50_000)]
        assert gateway.delete_keys(conn, payment, "payment_id", asked) == 1_000
        assert gateway.estimated_rows(conn, payment) >= 49_000
        left = gateway.keys_present(conn, payment, "payment_id", asked, [])
    assert left.empty


def test_insert_new_inserts_only_keys_not_held_and_says_which(url: str) -> None:
    with gateway.transaction(url) as conn:
        gateway.insert_frame(conn, payment, _payments(10))
        later = _payments(20, start=5)  # P000005..P000024: the first five are held already
        later["delivery_day"] = "2025-04-10"
        later["source_file"] = "2025-04-10/payments.csv"
        went_in = gateway.insert_new(conn, payment, "payment_id", later)
        assert later.loc[went_in, "payment_id"].tolist() == [f"P{i:06d}" for i in range(10, 25)]
        held = gateway.keys_present(conn, payment, "payment_id", later["payment_id"], ["delivery_day"])
    days = dict(zip(held["payment_id"], held["delivery_day"], strict=True))
    assert all(days[f"P{i:06d}"] == "2025-03-10" for i in range(5, 10))  # the earlier rows were not touched
    assert all(days[f"P{i:06d}"] == "2025-04-10" for i in range(10, 25))


BIG_SORT = """
import resource, sys
from risk.db import gateway
with gateway.reading(f"sqlite:///{sys.argv[1]}") as conn:
    conn.exec_driver_sql("PRAGMA cache_size=-4096")  # a 4 MiB cache, so that 80 MB of keys outgrow it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    groups = conn.exec_driver_sql(
        "SELECT COUNT(*) FROM (SELECT k FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < 400000) SELECT hex(randomblob(100)) AS k FROM n) GROUP BY k)").scalar()
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(groups, grew // 1024)
"""


def test_a_sqlite_sort_bigger_than_the_cache_spills_to_a_file_not_into_the_process(tmp_path: Path) -> None:
    """A whole detection sorts more than SQLite's cache holds: what does not fit goes to temporary files
    (which the system caches), so the process that runs it (the night's, beside the features' worker) does
    not grow by the size of the sort. Held in memory, this 80 MB sort grew the process by about 90 MiB."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", BIG_SORT, str(tmp_path / "sort.db")], capture_output=True,
                         text=True, check=True).stdout.split()
    groups, grew_mib = int(out[0]), int(out[1])
    assert groups == 400_000 and grew_mib < 30, f"the process grew by {grew_mib} MiB during the sort"
