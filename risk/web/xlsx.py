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
from xml.sax.saxutils import escape, quoteattr

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Cell = str | int | Decimal | None

# characters XML 1.0 does not allow (a delivered name could hold one): left out of a cell's text
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

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


def _cell(ref: str, value: Cell) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return f'<c r="{ref}"><v>{value}</v></c>'
    text = escape(_NOT_XML.sub("", str(value)))
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def workbook(sheet_name: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """The .xlsx file: one sheet named `sheet_name` (at most 31 characters, none of []:*?/\\), the header
    in its first row (frozen), then the rows."""
    if len(sheet_name) > 31 or re.search(r"[\[\]:*?/\\]", sheet_name):
        raise ValueError(f"not a sheet name Excel accepts: {sheet_name!r}")
    letters = column_letters(len(header))
    body = [_SHEET_START]
    for n, values in enumerate([header, *rows], start=1):
        cells = "".join(_cell(f"{letter}{n}", v) for letter, v in zip(letters, values, strict=True))
        body.append(f'<row r="{n}">{cells}</row>')
    body.append(_SHEET_END)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, xml in _PARTS.items():
            z.writestr(name, xml)
        z.writestr("xl/workbook.xml", _WORKBOOK.format(name=quoteattr(sheet_name)))
        z.writestr("xl/worksheets/sheet1.xml", "".join(body))
    return buf.getvalue()
