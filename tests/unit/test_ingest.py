"""Reading delivered files (contract §1): encodings, compression, quoting, column order, line numbers, and
files that cannot be read at all (one quality row each, the rest of the day still loads)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from helpers import (
    COLUMNS,
    REGIONS,
    assert_balanced,
    base_day,
    card_event,
    csv_text,
    death,
    ledger_of,
    load,
    make_id,
    payment,
    recipient,
    rejects,
    rows_of,
    settings,
    write,
    write_raw,
)

from risk.contract import BY_NAME
from risk.errors import FileRejected
from risk.ingest.read import read_file

DAY = "2025-03-10"
PAYMENTS = BY_NAME["payments"]
CARDS = BY_NAME["card_events"]
DEATHS = BY_NAME["deaths"]


def _payments(n: int = 3) -> list[dict]:
    return [payment(f"P{i}", make_id(seq=i), amount=f"{100 + i}.50") for i in range(1, n + 1)]


# ---------------------------------------------------------------- read_file: what a file turns into


def _values(rf, column: str) -> list[str]:
    return rf.frame[column].tolist()


def test_plain_and_gzipped_files_read_the_same(tmp_path: Path) -> None:
    rows = _payments()
    plain = read_file(PAYMENTS, write(tmp_path / "a", DAY, "payments", rows))
    gz = read_file(PAYMENTS, write(tmp_path / "b", DAY, "payments", rows, gz=True))
    assert plain.frame.astype(str).equals(gz.frame.astype(str))
    assert _values(gz, "payment_id") == ["P1", "P2", "P3"]
    assert gz.frame["_line"].tolist() == [2, 3, 4]


def test_bom_and_crlf_leave_no_trace_in_names_or_values(tmp_path: Path) -> None:
    rf = read_file(PAYMENTS, write(tmp_path, DAY, "payments", _payments(), bom=True, crlf=True))
    assert "payment_id" in rf.frame.columns
    assert _values(rf, "payment_id") == ["P1", "P2", "P3"]
    assert _values(rf, "bank_account") == ["6217000000000001"] * 3  # last column: no trailing \r
    assert rf.warnings == []


def test_gzipped_file_with_bom_and_crlf(tmp_path: Path) -> None:
    rf = read_file(PAYMENTS, write(tmp_path, DAY, "payments", _payments(), gz=True, bom=True, crlf=True))
    assert _values(rf, "payment_id") == ["P1", "P2", "P3"]
    assert _values(rf, "bank_account")[-1] == "6217000000000001"


def test_any_column_order(tmp_path: Path) -> None:
    cols = list(reversed(COLUMNS["payments"]))
    rf = read_file(PAYMENTS, write(tmp_path, DAY, "payments", _payments(), columns=cols))
    assert list(rf.frame.columns[: len(PAYMENTS.columns)]) == PAYMENTS.column_names
    assert _values(rf, "amount") == ["101.50", "102.50", "103.50"]


def test_optional_column_may_be_absent(tmp_path: Path) -> None:
    cols = [c for c in COLUMNS["card_events"] if c != "admitted_on"]
    rf = read_file(CARDS, write(tmp_path, DAY, "card_events", [card_event("E1")], columns=cols))
    assert _values(rf, "admitted_on") == [""]


def test_unknown_extra_column_is_ignored_with_a_warning(tmp_path: Path) -> None:
    rows = [{**r, "remark": "备注"} for r in _payments()]
    rf = read_file(PAYMENTS, write(tmp_path, DAY, "payments", rows, columns=[*COLUMNS["payments"], "remark"]))
    assert "remark" not in rf.frame.columns
    assert len(rf.warnings) == 1 and "remark" in rf.warnings[0]


def test_quoted_commas_quotes_and_newlines_keep_later_line_numbers(tmp_path: Path) -> None:
    text = (
        "event_id,person_id,card_no,occurred_at,event_type,county_code,institution_id,amount,admitted_on\n"
        f'E1,{make_id()},A12345678,2025-03-20T09:13:05+08:00,medical,431102000000,"医院,门诊\n二楼",10.00,\n'  # 2-3
        f'E2,{make_id()},A12345678,2025-03-20T09:13:05+08:00,medical,431102000000,"say ""hi""",11.00,\n'  # 4
        "\n"  # 5: a blank line
        f"E3,{make_id()},A12345678,2025-03-20T09:13:05+08:00,pharmacy,431102000000,I1,12.00,\n"  # 6
    )
    rf = read_file(CARDS, write_raw(tmp_path, DAY, "card_events", text))
    assert _values(rf, "event_id") == ["E1", "E2", "E3"]
    assert rf.frame["_line"].tolist() == [2, 4, 6]
    assert _values(rf, "institution_id")[:2] == ["医院,门诊\n二楼", 'say "hi"']


def test_ragged_row_is_a_row_problem_with_its_line(tmp_path: Path) -> None:
    rows = _payments(4)
    text = (
        csv_text(rows[:2], COLUMNS["payments"])
        + "P9,too,few\n"
        + csv_text(rows[2:], COLUMNS["payments"]).split("\n", 1)[1]
    )
    rf = read_file(PAYMENTS, write_raw(tmp_path, DAY, "payments", text))
    assert _values(rf, "payment_id") == ["P1", "P2", "P3", "P4"]
    assert rf.frame["_line"].tolist() == [2, 3, 5, 6]
    assert [line for line, _field, _why in rf.bad_rows] == [4]
    assert "3" in rf.bad_rows[0][2] and "7" in rf.bad_rows[0][2]  # 3 fields, header has 7
    assert rf.rows_read == 5


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    rf = read_file(PAYMENTS, write(tmp_path, DAY, "payments", []))
    assert rf.rows_read == 0


def test_spaces_around_header_names_and_values_are_trimmed(tmp_path: Path) -> None:
    text = (
        " payment_id , person_id,benefit_type,period,amount,paid_on,bank_account\n"
        f"  P1 ,{make_id()} ,resident_pension,2025-03, 300.00 ,2025-03-10,6217\n"
    )
    rf = read_file(PAYMENTS, write_raw(tmp_path, DAY, "payments", text))
    assert _values(rf, "payment_id") == ["P1"]
    assert _values(rf, "amount") == ["300.00"]


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("gbk", csv_text([death("D1")], COLUMNS["deaths"]).encode("gbk"), "UTF-8"),
        ("utf16", csv_text([death("D1")], COLUMNS["deaths"]).encode("utf-16"), "not a CSV text file"),
        (
            "png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)),
            "not a CSV text file",
        ),
        ("empty", b"", "empty"),
        ("bom only", "\ufeff".encode(), "empty"),
        ("blank first line", b"\n" + csv_text([death("D1")], COLUMNS["deaths"]).encode(), "empty"),
        ("no header", "D1,431102196001151234,张三,2025-03-01,health,2025-03-05\n".encode(), "not a header"),
        (
            "missing column",
            csv_text([death("D1")], [c for c in COLUMNS["deaths"] if c != "death_date"]).encode(),
            "required column missing: death_date",
        ),
        ("repeated column", b"record_id,record_id,person_id,name,death_date,source,reported_on\n", "repeats"),
    ],
)
def test_unreadable_files_are_refused_whole_with_a_clear_reason(tmp_path: Path, name, data, words) -> None:
    path = write_raw(tmp_path, DAY, "deaths", data)
    with pytest.raises(FileRejected, match=words):
        read_file(DEATHS, path)


def test_a_csv_gz_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deaths.csv.gz"
    path.write_text(csv_text([death("D1")], COLUMNS["deaths"]), encoding="utf-8")
    with pytest.raises(FileRejected, match="decompress"):
        read_file(DEATHS, path)


# ---------------------------------------------------------------- through load_day: into the warehouse


def test_a_day_of_awkward_but_contract_true_files_loads(sqlite_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    a, b = make_id(seq=1), make_id(seq=2, male=False)
    base_day(landing, people=[recipient(a), recipient(b, name="李梅")])
    # gzipped with BOM and CRLF, columns shuffled
    cols = ["amount", "bank_account", "period", "payment_id", "benefit_type", "paid_on", "person_id"]
    write(
        landing,
        DAY,
        "payments",
        [payment("P1", a), payment("P2", b)],
        columns=cols,
        gz=True,
        bom=True,
        crlf=True,
    )
    # an unknown column and an absent optional one
    cols = [c for c in COLUMNS["card_events"] if c != "admitted_on"] + ["terminal_os"]
    write(landing, DAY, "card_events", [{**card_event("E1", a), "terminal_os": "android"}], columns=cols)
    s = settings(sqlite_url, tmp_path)
    _, summary = load(s, landing, "2025-03-01", DAY)

    payments = rows_of(sqlite_url, "payment", "payment_id")
    assert [(p["payment_id"], p["person_id"], p["amount_cents"], p["source_line"]) for p in payments] == [
        ("P1", a, 30000, 2),
        ("P2", b, 30000, 3),
    ]
    assert payments[0]["source_file"].endswith("payments.csv.gz")
    events = rows_of(sqlite_url, "card_event")
    assert [(e["event_id"], e["admitted_on"]) for e in events] == [("E1", None)]
    card_summary = next(f for f in summary["files"] if f["source"] == "card_events")
    assert any("terminal_os" in w for w in card_summary["warnings"])
    stored = rows_of(sqlite_url, "delivery_file")
    assert any("terminal_os" in (r["warnings"] or "") for r in stored if r["source"] == "card_events")
    assert rejects(sqlite_url) == []
    assert_balanced(sqlite_url)


def test_quoted_values_are_stored_exactly_on_both_databases(db_url: str, tmp_path: Path) -> None:
    """A value holding a comma, a double quote, a line break, a tab or a backslash arrives in the warehouse as
    delivered, whatever the database (PostgreSQL is loaded with COPY)."""
    landing = tmp_path / "landing"
    a = make_id(seq=1)
    institutions = ["医院,门诊\n二楼", 'say "hi"', "tab\there", r"C:\new\table"]
    base_day(landing, people=[recipient(a)])
    write(
        landing,
        DAY,
        "card_events",
        [card_event(f"E{i}", a, institution_id=v) for i, v in enumerate(institutions, 1)]
        + [card_event("E9", a, event_type="nonsense")],
    )
    s = settings(db_url, tmp_path)
    load(s, landing, "2025-03-01", DAY)

    stored = {e["event_id"]: (e["institution_id"], e["source_line"]) for e in rows_of(db_url, "card_event")}
    assert stored == {
        "E1": (institutions[0], 2),
        "E2": (institutions[1], 4),
        "E3": (institutions[2], 5),
        "E4": (institutions[3], 6),
    }
    assert [(r["line"], r["key"]) for r in rejects(db_url)] == [("7", "E9")]
    assert_balanced(db_url)


def test_line_numbers_in_the_quality_queue_count_physical_lines(sqlite_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    a = make_id(seq=1)
    base_day(landing, people=[recipient(a)])
    header = ",".join(COLUMNS["card_events"])
    ok = f"{a},A12345678,2025-03-20T09:13:05+08:00,pharmacy,431102000000"
    text = (
        f"{header}\r\n"
        f'E1,{ok},"多行\r\n机构\r\n名称",10.00,\r\n'  # lines 2-4
        f"E2,{ok},I1,10.00,\r\n"  # 5
        f"E3,{ok},I1,-1.00,\r\n"  # 6: negative amount
        "\r\n"  # 7: blank
        f"E4,{ok},I1\r\n"  # 8: ragged
        f"E5,{ok},I1,1.005,\r\n"  # 9: three decimals
        f"E6,{ok},I1,2.00,\r\n"  # 10
    )
    write_raw(landing, DAY, "card_events", text)
    load(settings(sqlite_url, tmp_path), landing, "2025-03-01", DAY)

    got = [(r["line"], r["key"], r["field"]) for r in rejects(sqlite_url)]
    assert got == [("6", "E3", "amount"), ("8", "", ""), ("9", "E5", "amount")]
    ragged = rejects(sqlite_url)[1]
    assert "9" in ragged["reason"] and "fields" in ragged["reason"]
    lines = {e["event_id"]: e["source_line"] for e in rows_of(sqlite_url, "card_event")}
    assert lines == {"E1": 2, "E2": 5, "E6": 10}
    assert ledger_of(sqlite_url, DAY, "card_events")["rows_read"] == 6
    assert_balanced(sqlite_url)


def test_unreadable_files_are_one_quality_row_each_and_the_rest_of_the_day_loads(
    sqlite_url: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    a = make_id(seq=1)
    base_day(landing, people=[recipient(a)])
    write(landing, DAY, "payments", [payment("P1", a)])  # fine
    write_raw(
        landing, DAY, "deaths", csv_text([death("D1", a, name="王五")], COLUMNS["deaths"]).encode("gbk")
    )
    write_raw(landing, DAY, "incarcerations", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    write_raw(landing, DAY, "supervisors", b"")
    write(
        landing,
        DAY,
        "card_events",
        [card_event("E1", a)],
        columns=[c for c in COLUMNS["card_events"] if c not in ("occurred_at", "amount")],
    )
    (landing / DAY / "notes.txt").write_text("not a contract file", encoding="utf-8")
    s = settings(sqlite_url, tmp_path)
    _, summary = load(s, landing, "2025-03-01", DAY)

    got = {r["source"]: r for r in rejects(sqlite_url)}
    assert sorted(got) == ["card_events", "deaths", "incarcerations", "supervisors"]
    for r in got.values():
        assert (r["delivery_day"], r["line"], r["key"]) == (DAY, "", "")
    assert "UTF-8" in got["deaths"]["reason"]
    assert "not a CSV text file" in got["incarcerations"]["reason"]
    assert "empty" in got["supervisors"]["reason"]
    assert "required column missing" in got["card_events"]["reason"]
    assert "occurred_at" in got["card_events"]["reason"] and "amount" in got["card_events"]["reason"]
    # the rest of the day is there
    assert [p["payment_id"] for p in rows_of(sqlite_url, "payment")] == ["P1"]
    assert [d["day"] for d in rows_of(sqlite_url, "delivery", "day")] == ["2025-03-01", DAY]
    assert any("notes.txt" in w for w in summary["warnings"])
    whole = {r["source"] for r in rows_of(sqlite_url, "delivery_file") if r["rejected_whole"]}
    assert whole == {"card_events", "deaths", "incarcerations", "supervisors"}
    assert_balanced(sqlite_url)


def test_two_files_for_one_source_in_a_day_are_warned_about(sqlite_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    a = make_id(seq=1)
    base_day(landing, people=[recipient(a)])
    write(landing, DAY, "payments", [payment("P1", a)])
    write(landing, DAY, "payments", [payment("P2", a)], gz=True)
    _, summary = load(settings(sqlite_url, tmp_path), landing, "2025-03-01", DAY)
    assert any("payments.csv" in w and "payments.csv.gz" in w for w in summary["warnings"])
    assert len(rows_of(sqlite_url, "payment")) == 1
    assert_balanced(sqlite_url)


def test_reloading_a_day_with_an_unreadable_file_keeps_one_row_for_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    base_day(landing)
    write_raw(landing, DAY, "deaths", "record_id,名字\n1,张三\n".encode("gbk"))
    s = settings(sqlite_url, tmp_path)
    load(s, landing, "2025-03-01", DAY, DAY)
    assert [(r["source"], r["line"]) for r in rejects(sqlite_url)] == [("deaths", "")]


def test_region_file_round_trip(sqlite_url: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    base_day(landing)
    load(settings(sqlite_url, tmp_path), landing, "2025-03-01")
    stored = {r["code"]: (r["name"], r["level"], r["parent_code"]) for r in rows_of(sqlite_url, "region")}
    assert stored == {r["code"]: (r["name"], r["level"], r["parent_code"] or None) for r in REGIONS}
    assert json.loads(rows_of(sqlite_url, "delivery")[0]["warnings"]) == []


def test_gzip_compressed_payload_is_identical_to_plain_bytes(tmp_path: Path) -> None:
    rows = _payments(2)
    path = write(tmp_path, DAY, "payments", rows, gz=True)
    assert gzip.decompress(path.read_bytes()).decode() == csv_text(rows, COLUMNS["payments"])
