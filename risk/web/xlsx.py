"""An Excel workbook of one sheet, written directly: the five parts of Office Open XML (SpreadsheetML) that
Excel, WPS and LibreOffice need, strings inline, numbers as numbers, the header row frozen.

The search's export is a whole city's alerts when nothing narrows it; openpyxl builds a cell object per cell
and took about half a millisecond a row here (seconds for a city), where this writes a row as one string.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from xml.sax.saxutils import quoteattr

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Number(str):
    """A number written as it is spelled (e.g. an amount `"1234.50"`): a number cell, exact to the fen."""


Cell = str | int | Decimal | None

# the text of a cell, escaped for XML in one pass; characters XML 1.0 does not allow (a delivered name could
# hold one) are left out
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\ufffe": None, "\uffff": None,
                       **{chr(c): None for c in range(32) if chr(c) not in "\t\n\r"}})
_SPECIAL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # what _TEXT changes (most text has none)


def _text(value: object) -> str:
    text = str(value)
    return text.translate(_TEXT) if _SPECIAL.search(text) else text


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
    text; an empty or None cell is left out."""
    if len(sheet_name) > 31 or re.search(r"[\[\]:*?/\\]", sheet_name):
        raise ValueError(f"not a sheet name Excel accepts: {sheet_name!r}")
    letters = column_letters(len(header))
    body = [_SHEET_START]
    for n, values in enumerate([header, *rows], start=1):
        cells = "".join(
            ("" if v is None or v == "" else
             f'<c r="{letter}{n}"><v>{v}</v></c>' if isinstance(v, Number | int | Decimal) and not isinstance(v, bool)
             else f'<c r="{letter}{n}" t="inlineStr"><is><t xml:space="preserve">{_text(v)}</t></is></c>')
            for letter, v in zip(letters, values, strict=True))
        body.append(f'<row r="{n}">{cells}</row>')
    body.append(_SHEET_END)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, xml in _PARTS.items():
            z.writestr(name, xml)
        z.writestr("xl/workbook.xml", _WORKBOOK.format(name=quoteattr(sheet_name)))
        z.writestr("xl/worksheets/sheet1.xml", "".join(body))
    return buf.getvalue()
