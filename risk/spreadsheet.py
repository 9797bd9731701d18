"""Text a spreadsheet would run as a formula, made plain text: every CSV and Excel export a person opens goes
through here (CSV/formula injection, as OWASP describes it).

Excel, WPS and LibreOffice take a cell that begins with `=`, `+`, `-` or `@` for a formula, and skip a leading
tab or carriage return before deciding: a delivered village name `=HYPERLINK("http://…","点此")`, a comment
`+cmd|' /C calc'!A0` or `@SUM(A1:A9)` would run on the supervisor's machine. Such a text gets a single quote
(') in front, which makes it text: `'=HYPERLINK(…)` shows the text as delivered (with the quote), runs nothing.

Decided: the full-width signs `＝ ＋ － ＠` count too. Excel and WPS with a Chinese (or Japanese) input method
turn a full-width sign at the start of an entry into the formula sign, and the delivered text here is Chinese;
a legitimate value that begins with one is as rare as with `=`, so marking it costs nothing.

A number is not a formula: a plain decimal (`-12.50`, `3`, `0.05`, digits with at most one point and an ASCII
minus) is left as it is, so an amount stays a number in any column; ints, floats, Decimals and dates are not
text and pass untouched. JSON (`[…`, `{…`) and every other text that does not begin with a trigger is unchanged.

One rule, three shapes: `cell` (one value), `cells` (a column as a list), `column` (an Arrow column, for the
Excel writer, without a Python call per cell); `writer` and `dict_writer` are csv's with every cell passed
through `cell` (and no line break left unquoted).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

TRIGGERS = "=+-@\t\r＝＋－＠"
QUOTE = "'"
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # fullmatch: a plain decimal, ASCII digits only
# the same two rules for Arrow's (RE2) kernels
ARROW_TRIGGER = "^[" + TRIGGERS.replace("-", r"\-").replace("\t", r"\t").replace("\r", r"\r") + "]"
_ARROW_NUMBER = r"^-?[0-9]+(?:\.[0-9]+)?$"
# any value in a column joined by NUL begins with a trigger (a quick look before the exact one)
_ANY_STARTS = re.compile("(?:^|\x00)[" + re.escape(TRIGGERS) + "]")


def risky(text: str) -> bool:
    """Would a spreadsheet take this text for a formula?"""
    return bool(text) and text[0] in TRIGGERS and _NUMBER.fullmatch(text) is None


def cell(value: Any) -> Any:
    """The value as an export writes it: a text a spreadsheet would run, with a quote in front; anything else
    (other text, numbers, None, dates) as it is."""
    return QUOTE + value if isinstance(value, str) and risky(value) else value


def cells(values: Sequence[Any]) -> Sequence[Any]:
    """A column's values through `cell`; a column of text none of which begins with a trigger (the usual
    case: codes, names, amounts) is looked at in one pass and returned as it is."""
    try:
        joined = "\x00".join(values)
    except TypeError:  # not all text
        return [cell(v) for v in values]
    if _ANY_STARTS.search(joined) is None:
        return values
    return [cell(v) for v in values]


def column(text: pa.Array) -> pa.Array:
    """`cell` on an Arrow string column, in Arrow's kernels (nulls stay null)."""
    starts = pc.match_substring_regex(text, ARROW_TRIGGER)
    if not pc.any(starts).as_py():
        return text
    risky_ = pc.and_(starts, pc.invert(pc.match_substring_regex(text, _ARROW_NUMBER)))
    return pc.if_else(risky_, pc.binary_join_element_wise(QUOTE, text, ""), text)


class _Writer:
    """csv's writer with every cell through `cell`. A row holding a line break that the line terminator does not
    cover (a carriage return under "\n": csv leaves such a field unquoted) is written with every field quoted,
    so that no spreadsheet starts a row, and a formula, inside a cell."""

    def __init__(self, f: Any, **options: Any) -> None:
        self._plain = csv.writer(f, **options)
        self._quoted = csv.writer(f, **{**options, "quoting": csv.QUOTE_ALL})
        self._breaks = tuple(c for c in "\r\n" if c not in self._plain.dialect.lineterminator)

    def writerow(self, row: Iterable[Any]) -> Any:
        values = [cell(v) for v in row]
        broken = any(isinstance(v, str) and any(c in v for c in self._breaks) for v in values)
        return (self._quoted if broken else self._plain).writerow(values)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(f: Any, **options: Any) -> _Writer:
    """csv.writer(f, **options) whose cells go through `cell`."""
    return _Writer(f, **options)


class _DictWriter(csv.DictWriter):
    def __init__(self, f: Any, fieldnames: Sequence[str], restval: Any = "", extrasaction: Any = "raise",
                 **options: Any) -> None:
        super().__init__(f, fieldnames, restval, extrasaction, **options)
        self.writer = _Writer(f, **options)  # type: ignore[assignment]


def dict_writer(f: Any, fieldnames: Sequence[str], **options: Any) -> csv.DictWriter:
    """csv.DictWriter(f, fieldnames, **options) whose cells go through `cell` (as `writer`)."""
    return _DictWriter(f, fieldnames, **options)
