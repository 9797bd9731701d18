"""The Excel export's workbook, as a spreadsheet program reads it (openpyxl here)."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from risk.web import xlsx


def test_a_workbook_opens_with_its_header_frozen_text_intact_and_amounts_as_numbers():
    header = ["预警编号 alert_id", "姓名（脱敏）name (masked)", "村 village", "涉及金额 amount_at_risk", "备注 note"]
    rows = [["a-1", "张*", "<东&西> \"村\"", xlsx.Number("1234.50"), "ok"],
            ["a-2", "李*", None, Decimal("0.05"), "tab\there, bell\x07 gone"],
            ["a-3", "", "  spaced  ", 7, "=1+1"]]
    wb = load_workbook(io.BytesIO(xlsx.workbook("预警 alerts", header, rows)))
    ws = wb.active
    assert ws.title == "预警 alerts" and ws.freeze_panes == "A2"
    got = list(ws.values)
    assert list(got[0]) == header
    assert got[1] == ("a-1", "张*", "<东&西> \"村\"", 1234.5, "ok")
    assert got[2] == ("a-2", "李*", None, 0.05, "tab\there, bell gone")  # an empty cell keeps the next in place
    assert got[3] == ("a-3", None, "  spaced  ", 7, "'=1+1")  # text a spreadsheet would run: a quote in front
    assert sum(r[3] for r in got[1:]) == pytest.approx(1241.55)


def test_columns_past_z_and_many_rows():
    header = [f"c{i}" for i in range(30)]
    rows = [[n * 100 + i for i in range(30)] for n in range(5000)]
    ws = load_workbook(io.BytesIO(xlsx.workbook("s", header, rows)), read_only=True).active
    got = list(ws.values)
    assert len(got) == 5001 and got[-1] == tuple(4999 * 100 + i for i in range(30))
    assert xlsx.column_letters(28)[-3:] == ["Z", "AA", "AB"]


def test_a_sheet_name_excel_refuses_is_refused():
    with pytest.raises(ValueError):
        xlsx.workbook("a/b", ["x"], [])


def test_each_cell_keeps_its_own_kind_in_a_column_of_mixed_values():
    """A column is written at once, but a cell's kind is its own: amounts among text, a yes/no as text, an
    empty string and None as no cell (a row of them: no cells at all), XML's special characters and disallowed ones in any row."""
    from datetime import date

    header = ["混合 mixed", "金额 amount"]
    rows = [[xlsx.Number("12.30"), xlsx.Number("1.00")], [True, xlsx.Number("2.00")], ["", None],
            [None, xlsx.Number("3.50")], [date(2025, 3, 1), 4], ["a<b&c>\x1fd", Decimal("5")]]
    got = list(load_workbook(io.BytesIO(xlsx.workbook("s", header, rows)), read_only=True).active.values)
    assert got[1:] == [(12.3, 1.0), ("True", 2.0), (), (None, 3.5), ("2025-03-01", 4),
                       ("a<b&c>d", 5)]


def test_a_workbook_from_columns_is_the_workbook_from_rows():
    """The export hands its values column by column: the file holds what its rows give, part for part, byte
    for byte (the zip's own timestamps aside), and columns that do not fit the header are refused."""
    import zipfile

    def parts(content: bytes) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            return {name: z.read(name) for name in z.namelist()}

    header = ["预警编号 alert_id", "涉及金额 amount_at_risk", "村 village"]
    rows = [[f"a-{n}", xlsx.Number(f"{n}.50"), "东村" if n % 3 else ""] for n in range(1, 200)]
    columns = [[r[j] for r in rows] for j in range(3)]
    assert parts(xlsx.workbook_of_columns("s", header, columns)) == parts(xlsx.workbook("s", header, rows))
    assert parts(xlsx.workbook_of_columns("s", header, [[], [], []])) == parts(xlsx.workbook("s", header, []))
    with pytest.raises(ValueError):
        xlsx.workbook_of_columns("s", header, columns[:2])
    with pytest.raises(ValueError):
        xlsx.workbook_of_columns("s", header, [columns[0], columns[1], columns[2][:-1]])


def sheet_xml(content: bytes) -> str:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return z.read("xl/worksheets/sheet1.xml").decode("utf-8")


def test_no_cell_is_a_formula_text_that_would_run_gets_a_quote_and_numbers_stay_numbers():
    """Delivered text that a spreadsheet runs once the cell is edited (=, +, -, @, a tab or CR first, or the
    full-width signs) reads with a quote in front; amounts, negative ones too, are number cells; a "number"
    that is not one is text, and nothing ever becomes an <f> element."""
    import xml.etree.ElementTree as ET

    hostile = ['=HYPERLINK("http://x.example","点此")', "+1+1", "-1+1", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "＝1+1",
               "－1"]
    rows = [[text, xlsx.Number("-12.50"), -3, Decimal("-0.05")] for text in hostile]
    rows += [["-12.50", xlsx.Number("</v><f>1+1</f><v>"), xlsx.Number("=1+1"), Decimal("NaN")],
             ["[1, 2]", xlsx.Number("1E+3"), Decimal("1E+3"), None]]
    content = xlsx.workbook("s", ["a", "b", "c", "d"], rows)
    root = ET.fromstring(sheet_xml(content))
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    assert root.iter(f"{main}c") and not list(root.iter(f"{main}f"))  # cells, and not one formula
    got = list(load_workbook(io.BytesIO(content)).active.values)[1:]
    assert [r[0] for r in got[:len(hostile)]] == ["'" + t for t in hostile]
    assert all(r[1:] == (-12.5, -3, -0.05) for r in got[:len(hostile)])  # numbers, negative ones too
    assert got[-2] == ("-12.50", "</v><f>1+1</f><v>", "'=1+1", "NaN")  # as text (a plain number as text stays)
    assert got[-1] == ("[1, 2]", 1000, 1000, None)
    # a character XML has no place for is left out first: it cannot hide an "=" from the check
    hidden = xlsx.workbook("s", ["a"], [["\x01=1+1"], ["\x0b@SUM(A1)"]])
    assert list(load_workbook(io.BytesIO(hidden)).active.values)[1:] == [("'=1+1",), ("'@SUM(A1)",)]
