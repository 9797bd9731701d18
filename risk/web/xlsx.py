"""An Excel workbook of one sheet, written directly: the five parts of Office Open XML (SpreadsheetML) that
Excel, WPS and LibreOffice need, strings inline, numbers as numbers, the header row frozen.

The search's export is a whole city's alerts when nothing narrows it; openpyxl builds a cell object per cell
and took about half a millisecond a row here (seconds for a city). This writes the sheet a column at a time
with Arrow's string kernels: each column's cells are escaped and wrapped in one call per step, then the
rows joined (a city's 11,911 alerts: about a third faster than a Python expression per cell).

No cell is ever a formula: a cell is inline text or a number's value, never an <f>; text a spreadsheet would run
once edited (`=…`, `+…`, `-…`, `@…`) gets a quote in front (`risk.spreadsheet`, on the whole column), and a
"number" whose spelling is not a plain number is written as text, so nothing reaches a <v> but digits.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from xml.sax.saxutils import quoteattr

import pyarrow as pa
import pyarrow.compute as pc

from risk import spreadsheet

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Number(str):
    """A number written as it is spelled (e.g. an amount `"1234.50"`): a number cell, exact to the fen."""


Cell = str | int | Decimal | None

# characters XML 1.0 does not allow (a delivered name could hold one): left out of the text
_NOT_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{FFFE}\x{FFFF}]"
_SPECIAL = r"[&<>\r]"  # what XML needs escaped (most text has none)
_ATTENTION = f"{spreadsheet.ARROW_TRIGGER}|{_NOT_XML}|{_SPECIAL}"  # anything _inline changes
# what a <v> may hold: a number as Python spells an int or a Decimal (anything else is written as text)
_NUMERIC = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_NULL = pa.scalar(None, pa.string())


def _inline(text: pa.Array) -> pa.Array:
    """The column's text as it goes in a cell's <t>: characters XML does not allow left out; then text that a
    spreadsheet would run given a quote in front (`risk.spreadsheet`; in this order, so that a character left
    out cannot uncover an "="); then escaped for XML (&, <, >, and CR, which a reader would turn into LF).
    Most columns need none of it: one look finds that."""
    if not pc.any(pc.match_substring_regex(text, _ATTENTION)).as_py():
        return text
    if pc.any(pc.match_substring_regex(text, _NOT_XML)).as_py():
        text = pc.replace_substring_regex(text, _NOT_XML, "")
    text = spreadsheet.column(text)
    if pc.any(pc.match_substring_regex(text, _SPECIAL)).as_py():
        for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
            text = pc.replace_substring(text, raw, entity)
    return text


def _is_number(v: object) -> bool:
    return isinstance(v, Number | int | Decimal) and not isinstance(v, bool)


def _cells(letter: str, rows: pa.Array, values: Sequence[Cell]) -> pa.Array:
    """One column's cells, a string per row: its <c> element (text inline, numbers as numbers), or "" for an
    empty or None value (no cell: the next keeps its place by its reference)."""
    texts: Sequence[str | None] | None
    numbers: Sequence[str | None] | None
    if all(type(v) is str for v in values):  # the usual column: all text
        texts, numbers = values, None  # type: ignore[assignment]
    else:
        texts = [None if v is None or _is_number(v) else str(v) for v in values]
        numbers = [str(v) if _is_number(v) else None for v in values]
    text = pa.array(texts, pa.string())
    number = None
    if numbers is not None:
        number = pa.array(numbers, pa.string())
        plain = pc.match_substring_regex(number, _NUMERIC)
        text = pc.coalesce(text, pc.if_else(plain, _NULL, number))  # a Number that is not one: text
        number = pc.if_else(plain, number, _NULL)
    text = _inline(text)
    text = pc.if_else(pc.equal(text, ""), _NULL, text)
    cell = pc.binary_join_element_wise(f'<c r="{letter}', rows, '" t="inlineStr"><is><t xml:space="preserve">',
                                       text, "</t></is></c>", "")
    if number is not None:
        cell = pc.coalesce(cell, pc.binary_join_element_wise(f'<c r="{letter}', rows, '"><v>', number, "</v></c>", ""))
    return pc.fill_null(cell, "")


_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="xl/workbook.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
        '</Relationships>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
        '</Relationships>'),
}
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name={name} sheetId="1" r:id="rId1"/></sheets></workbook>')
_SHEET_START = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
    '<sheetData>')
_SHEET_END = "</sheetData></worksheet>"


def column_letters(n: int) -> list[str]:
    """The names of the first n columns: A … Z, AA, AB, …"""
    names = []
    for i in range(1, n + 1):
        name = ""
        while i:
            i, rest = divmod(i - 1, 26)
            name = chr(65 + rest) + name
        names.append(name)
    return names


def workbook(sheet_name: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """The .xlsx file: one sheet named `sheet_name` (at most 31 characters, none of []:*?/\\), the header
    in its first row (frozen), then the rows. Numbers (int, Decimal, Number) go in as numbers, the rest as
    text (`risk.spreadsheet`: a text that would run as a formula gets a quote in front); an empty or None cell
    is left out."""
    rows = list(rows)
    if any(len(values) != len(header) for values in rows):
        raise ValueError("every row must have as many values as the header")
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in header]
    return workbook_of_columns(sheet_name, header, columns)


def workbook_of_columns(sheet_name: str, header: Sequence[str], columns: Sequence[Sequence[Cell]]) -> bytes:
    """`workbook` from the values column by column (each column's values, the header apart), as an export
    that reads its rows into columns has them: no row is built."""
    if len(sheet_name) > 31 or re.search(r"[\[\]:*?/\\]", sheet_name):
        raise ValueError(f"not a sheet name Excel accepts: {sheet_name!r}")
    if len(columns) != len(header) or len({len(values) for values in columns}) > 1:
        raise ValueError("one column of values per header, all as long")
    numbers = pa.array(range(1, (len(columns[0]) if columns else 0) + 2)).cast(pa.string())
    cells = [_cells(letter, numbers, [name, *values])
             for letter, name, values in zip(column_letters(len(header)), header, columns, strict=True)]
    lines = pc.binary_join_element_wise('<row r="', numbers, '">', *cells, "</row>", "")
    body = [_SHEET_START, *lines.to_pylist(), _SHEET_END]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, xml in _PARTS.items():
            z.writestr(name, xml)
        z.writestr("xl/workbook.xml", _WORKBOOK.format(name=quoteattr(sheet_name)))
        z.writestr("xl/worksheets/sheet1.xml", "".join(body))
    return buf.getvalue()
