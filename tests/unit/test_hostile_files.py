"""Files as an attacker or a broken export would send them (issue 12, findings 1 and 2, and the links): a
NUL byte, a gzip bomb, a line without end, a link out of the landing. Each costs its own row or file, never
the night, and never more memory than the limits allow."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    assert_balanced,
    base_day,
    make_id,
    payment,
    recipient,
    rejects,
    rows_of,
    write,
    write_raw,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk import pipeline
from risk.contract import BY_NAME, SOURCES
from risk.errors import FileRejected
from risk.ingest.read import Limits, read_bytes, read_file
from risk.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DAY, NEXT = "2025-03-10", "2025-04-10"
PAYMENTS = BY_NAME["payments"]


def _people(n: int) -> list[str]:
    return [make_id(seq=i, born=f"19{50 + i % 10}-01-15") for i in range(n)]


def _payment_rows(people: list[str], prefix: str, period: str = "2025-03") -> list[dict]:
    return [payment(f"{prefix}{i:05d}", pid, period=period, paid_on=f"{period}-10",
                    bank_account=f"62170000{i:08d}") for i, pid in enumerate(people)]


def _run(url: str, landing: Path, tmp_path: Path, **over) -> pipeline.RunSummary:
    s = Settings(database_url=url, var_dir=tmp_path / "var", **over)
    return pipeline.run(s, landing, send_digests=False)


# ---------------------------------------------------------------- finding 1: a NUL byte


def test_a_nul_byte_is_a_bad_value_in_its_row_and_the_rest_loads(db_url: str, tmp_path: Path) -> None:
    """One NUL in the first 64 KiB and one past it (where PostgreSQL's COPY used to fail the night): each
    costs its own row, named by line and field; the rest of the file, and the next day, load; a rerun
    loads nothing twice and fails nothing."""
    landing = tmp_path / "landing"
    people = _people(1200)
    base_day(landing, people=[recipient(p, bank_account=f"62170000{i:08d}") for i, p in enumerate(people)])
    path = write(landing, DAY, "payments", _payment_rows(people, "P"))
    lines = path.read_bytes().split(b"\n")
    assert sum(len(x) + 1 for x in lines[:1000]) > 65536  # line 1001 lies past the first 64 KiB
    lines[2] = lines[2].replace(b"62170000", b"6217\x000000", 1)  # line 3: bank_account
    lines[1000] = lines[1000].replace(b"resident_pension", b"resident\x00pension", 1)  # line 1001: benefit_type
    path.write_bytes(b"\n".join(lines))
    write(landing, NEXT, "payments", _payment_rows(people[:10], "Q", period="2025-04"))

    _run(db_url, landing, tmp_path)
    got = {int(r["line"]): r for r in rejects(db_url) if r["source"] == "payments"}
    assert sorted(got) == [3, 1001]
    assert "bank_account" in got[3]["reason"] and "NUL" in got[3]["reason"]
    assert "benefit_type" in got[1001]["reason"] and "NUL" in got[1001]["reason"]
    paid = rows_of(db_url, "payment")
    assert len(paid) == 1200 - 2 + 10
    assert not any("\x00" in str(v) for row in paid for v in row.values())
    assert_balanced(db_url)

    again = _run(db_url, landing, tmp_path)  # the next night: nothing pending, nothing fails
    assert again.days == []
    assert len(rows_of(db_url, "payment")) == 1200 - 2 + 10


def test_a_file_whose_first_line_holds_a_nul_is_refused_whole_as_binary(tmp_path: Path) -> None:
    path = write_raw(tmp_path, DAY, "payments", b"payment_id,\x00person_id\nP1,x\n")
    with pytest.raises(FileRejected, match="NUL"):
        read_file(PAYMENTS, path)


# ---------------------------------------------------------------- finding 2: bounded reading


def _bomb(path: Path, mib: int, line_end: bool) -> Path:
    """A gzip file of `mib` MiB of text that compresses to almost nothing: a header, then one endless
    line (line_end False) or many identical short lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"payment_id,person_id,benefit_type,period,amount,paid_on,bank_account\n"
    block = (b"a" * 2**20) if not line_end else (b"P1,x,y,2025-03,1.00,2025-03-10,1\n" * 32768)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        for _ in range(mib):
            f.write(block)
    return path


PEAK = """
import resource, sys
from pathlib import Path
from risk.contract import BY_NAME
from risk.ingest.read import Limits, read_file
from risk.errors import FileRejected
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_file(BY_NAME["payments"], Path(sys.argv[1]), Limits(file_bytes=int(sys.argv[2]) * 2**20))
    print("read")
except FileRejected as e:
    print("refused:", e)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("line_end", [False, True], ids=["one-line bomb", "many-line bomb"])
def test_a_gzip_bomb_is_refused_at_the_limit_without_growing_past_it(tmp_path: Path, line_end: bool) -> None:
    """1 GiB of text in a gzip file of about a megabyte: read a slice at a time, refused as soon as it
    passes the limit (64 MiB here), and the process never holds more than the limit."""
    bomb = _bomb(tmp_path / "landing" / DAY / "payments.csv.gz", 1024, line_end)
    assert bomb.stat().st_size < 8 * 2**20
    out = subprocess.run([sys.executable, "-c", PEAK, str(bomb), "64"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.splitlines()
    assert out[0].startswith("refused:") and "64 MiB" in out[0] and "RISK_MAX_FILE_MIB" in out[0]
    assert int(out[1]) < 200, f"the process grew by {out[1]} MiB reading a refused bomb"


def test_a_day_with_a_file_over_the_limit_loads_the_rest_and_the_nights_after(db_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    people = _people(5)
    base_day(landing, people=[recipient(p) for p in people])
    _bomb(landing / DAY / "card_events.csv.gz", 40, line_end=True)
    write(landing, DAY, "payments", _payment_rows(people, "P"))
    write(landing, NEXT, "payments", _payment_rows(people, "Q", period="2025-04"))

    summary = _run(db_url, landing, tmp_path, max_file_mib=32)
    assert [d["day"] for d in summary.days] == ["2025-03-01", DAY, NEXT]
    whole = [r for r in rejects(db_url) if r["source"] == "card_events"]
    assert len(whole) == 1 and whole[0]["line"] == "" and "32 MiB" in whole[0]["reason"]
    assert len(rows_of(db_url, "payment")) == 10
    assert _run(db_url, landing, tmp_path, max_file_mib=32).days == []  # nothing left to block a later night


def test_a_line_longer_than_a_row_may_be_costs_that_row_and_the_lines_after_keep_their_numbers(tmp_path: Path) -> None:
    people = _people(3)
    path = write(tmp_path, DAY, "payments", _payment_rows(people, "P"))
    lines = path.read_text().split("\n")
    lines.insert(2, "P9," + "x" * 100_000)  # line 3, and a broken amount on what is now line 5
    lines[4] = lines[4].replace("300.00", "3OO.00")
    path.write_text("\n".join(lines))
    read = read_file(PAYMENTS, path, Limits(row_bytes=64 * 2**10))
    assert [(line, why[:20]) for line, _f, why in read.bad_rows] == [(3, "第3行超过65,536字节，未读入 / ")]
    assert read.frame["_line"].tolist() == [2, 4, 5]  # the numbers as delivered
    assert read.frame["amount"].tolist()[-1] == "3OO.00"  # judged by the checks later, with its own line


def test_a_header_longer_than_a_row_may_be_refuses_the_file(tmp_path: Path) -> None:
    path = write_raw(tmp_path, DAY, "payments", b"payment_id," + b"y" * 70_000 + b"\nP1\n")
    with pytest.raises(FileRejected, match="first line is longer"):
        read_file(PAYMENTS, path)


# ---------------------------------------------------------------- links out of the landing


def test_links_out_of_the_landing_are_not_followed(sqlite_url: str, tmp_path: Path) -> None:
    landing, outside = tmp_path / "landing", tmp_path / "elsewhere"
    people = _people(3)
    base_day(landing, people=[recipient(p) for p in people])
    secret = write(outside, DAY, "payments", _payment_rows(people, "S"))
    (landing / DAY).mkdir()
    os.symlink(secret, landing / DAY / "payments.csv")  # a file that points out
    os.symlink(outside / DAY, landing / "2025-03-20")  # a whole day that points out
    write(landing, "2025-03-25", "payments", _payment_rows(people, "P"))
    os.symlink(landing / "2025-03-25" / "payments.csv", landing / "2025-03-25" / "payments.csv.gz")  # inside

    summary = _run(sqlite_url, landing, tmp_path)
    assert [d["day"] for d in summary.days] == ["2025-03-01", DAY, "2025-03-25"]
    day = next(d for d in summary.days if d["day"] == DAY)
    assert day["files"] == [] and any("out of the landing" in w for w in day["warnings"])
    assert sorted(p["payment_id"] for p in rows_of(sqlite_url, "payment")) == ["P00000", "P00001", "P00002"]


# ---------------------------------------------------------------- properties: whatever the bytes


VALID = ("payment_id,person_id,benefit_type,period,amount,paid_on,bank_account\n"
         f"P1,{make_id(seq=1)},resident_pension,2025-03,300.00,2025-03-10,6217000000000001\n"
         f"P2,{make_id(seq=2)},resident_pension,2025-03,300.00,2025-03-10,6217000000000002\n").encode()


def _no_nul_and_lines_add_up(read) -> None:
    frame = read.frame
    assert not any("\x00" in v for c in frame.columns if c != "_line" for v in frame[c].tolist())
    lines = frame["_line"].tolist() + [line for line, _f, _w in read.bad_rows]
    assert len(lines) == len(set(lines)), "a line read twice"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048), source=st.sampled_from([s.name for s in SOURCES]))
def test_random_bytes_are_read_or_refused_never_a_crash(data: bytes, source: str) -> None:
    try:
        read = read_bytes(BY_NAME[source], bytearray(data), Path(f"{DAY}/{source}.csv"), Limits(row_bytes=256))
    except FileRejected:
        return
    _no_nul_and_lines_add_up(read)


@settings(max_examples=300, deadline=None)
@given(at=st.integers(min_value=0, max_value=len(VALID)), noise=st.binary(min_size=1, max_size=300))
def test_a_good_file_with_bytes_thrown_in_is_read_or_refused_never_a_crash(at: int, noise: bytes) -> None:
    raw = bytearray(VALID[:at] + noise + VALID[at:])
    try:
        read = read_bytes(PAYMENTS, raw, Path(f"{DAY}/payments.csv"), Limits(row_bytes=256))
    except FileRejected:
        return
    _no_nul_and_lines_add_up(read)



# ---------------------------------------------------------------- a file that is mostly broken


def test_a_file_whose_rows_mostly_fail_is_refused_whole_as_broken(db_url: str, tmp_path: Path, monkeypatch) -> None:
    """Past MAX_REJECTED_ROWS failing rows (five here) a file is a broken export, not a few bad rows: it is
    refused whole, with a few of the reasons, and its rejections never pile up (two million of them took a
    load to 14 GB). A file with fewer failing rows loads as always, and rows waiting for their region are
    not failures."""
    from risk.ingest import intake

    monkeypatch.setattr(intake, "MAX_REJECTED_ROWS", 5)
    landing = tmp_path / "landing"
    people = _people(12)
    base_day(landing, people=[recipient(p) for p in people])
    shifted = [{**row, "amount": row["paid_on"], "paid_on": row["amount"]} for row in _payment_rows(people, "P")]
    write(landing, DAY, "payments", shifted[:6] + _payment_rows(people, "Q")[6:])  # 6 of 12 fail: refused
    write(landing, DAY, "deaths", [])
    write(landing, NEXT, "payments", shifted[:3] + _payment_rows(people, "R")[3:])  # 3 of 12 fail: loaded
    waiting = [recipient(make_id(seq=90 + i), village_code="431102001099") for i in range(8)]  # no such village
    write(landing, NEXT, "recipients", waiting)

    _run(db_url, landing, tmp_path)
    got = [r for r in rejects(db_url) if r["source"] == "payments"]
    whole = [r for r in got if r["delivery_day"] == DAY]
    assert len(whole) == 1 and whole[0]["line"] == ""
    assert "more than 5 of its 12 rows fail their checks" in whole[0]["reason"] and "amount" in whole[0]["reason"]
    assert sorted(int(r["line"]) for r in got if r["delivery_day"] == NEXT) == [2, 3, 4]
    assert sorted(p["payment_id"][0] for p in rows_of(db_url, "payment")) == ["R"] * 9
    waiting_rows = [r for r in rejects(db_url) if r["source"] == "recipients"]
    assert len(waiting_rows) == 8  # waiting for their village, one by one, not refused as broken
    assert_balanced(db_url)


def test_a_big_file_whose_first_rows_nearly_all_fail_is_refused_before_the_rest_is_checked(
        sqlite_url: str, tmp_path: Path, monkeypatch) -> None:
    """A bigger file than BROKEN_SAMPLE rows (four here) is checked that many rows first: when nearly all
    of them fail (a shifted export), the file is refused whole without building the failures of the rest."""
    from risk.ingest import checks, intake

    monkeypatch.setattr(intake, "BROKEN_SAMPLE", 4)
    suite_runs = []
    run_suite = checks.run_suite
    monkeypatch.setattr(checks, "run_suite", lambda source, frame: suite_runs.append(len(frame)) or run_suite(source, frame))
    landing = tmp_path / "landing"
    people = _people(10)
    base_day(landing, people=[recipient(p) for p in people])
    shifted = [{**row, "amount": row["paid_on"], "paid_on": row["amount"]} for row in _payment_rows(people, "P")]
    write(landing, DAY, "payments", shifted)

    _run(sqlite_url, landing, tmp_path)
    whole = [r for r in rejects(sqlite_url) if r["source"] == "payments"]
    assert len(whole) == 1 and "4 of the first 4 of its 10 rows fail their checks" in whole[0]["reason"]
    assert 4 in suite_runs and 6 not in suite_runs  # the other six rows were never checked
    assert rows_of(sqlite_url, "payment") == []
