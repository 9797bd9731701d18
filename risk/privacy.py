"""Personal information (PIPL) never leaves the system unmasked in a log line: every log record written by a
process that runs our code has ID-shaped numbers masked (`430102********1234`), database errors carry no
row values (the engines hide SQL parameters), and `risk privacy scan` checks log and message folders for any
resident's full ID number or name, so that a leak is found by a command, not by an audit.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from risk.identity.numbers import check_char, mask_id, mask_name

# The one shape of a personal number in free text: 15 to 19 characters, not inside a longer number, the last
# may be an X: resident IDs (18 characters, or 15 digits for a legacy one) and bank card numbers (16 to 19
# digits), in half-width or full-width characters (１１０１…, common in hand-typed Chinese data) or a mix.
# Every log line, operator message and free text shown masked goes through `redact`.
_PERSONAL_NUMBER = re.compile(r"(?<![0-9A-Za-z０-９Ａ-Ｚａ-ｚ])([0-9０-９]{14,18}[0-9Xx０-９Ｘｘ])(?![0-9A-Za-z０-９Ａ-Ｚａ-ｚ])")


def redact(text: str) -> str:
    """`text` with every personal number masked as `mask_id` does: an ID keeps its address code and last
    four characters, a bank card number its bank's six digits and last four (as card slips print them)."""
    return _PERSONAL_NUMBER.sub(lambda m: mask_id(m.group(1)), text)


_installed = False


def install() -> None:
    """Mask ID-shaped numbers in every log record this process creates from now on, whichever logger and
    handler it goes to (the command line's log file, an Airflow task's log). Safe to call more than once."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def masked_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to logging's own error handling
            return record
        cleaned = redact(message)
        if cleaned != message:
            _mask(record, cleaned)
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True


def _mask(record: logging.LogRecord, cleaned: str) -> None:
    """Mask the record's format string and each of its arguments, keeping their shape: a formatter may read
    the arguments themselves (uvicorn's access log unpacks its five; with none it failed and the whole line
    was lost). Only when that does not mask everything is the message replaced by its masked text."""
    args = record.args
    if isinstance(args, tuple):
        masked_args: object = tuple(redact(a) if isinstance(a, str) else a for a in args)
    elif isinstance(args, Mapping):
        masked_args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
    else:
        masked_args = args
    msg = redact(record.msg) if isinstance(record.msg, str) else record.msg
    record.msg, record.args = msg, masked_args  # type: ignore[assignment]
    try:
        if record.getMessage() == cleaned:
            return
    except Exception:
        pass
    record.msg, record.args = cleaned, None


# -- scanning what left the system ---------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    kind: str  # id_number | resident_id | resident_name
    shown: str  # masked: a finding never repeats what it found

    def __str__(self) -> str:
        words = {"id_number": "身份证号 / ID number", "resident_id": "参保人身份证号 / a resident's ID number",
                 "resident_name": "参保人姓名 / a resident's name"}[self.kind]
        return f"{self.path}:{self.line}: 未脱敏的{words}: {self.shown}"


def _valid_id(value: str) -> bool:
    value = value.upper()
    return len(value) == 18 and check_char(value[:17]) == value[17]


def _text_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            yield path


def scan(paths: Iterable[Path], ids: Iterable[str] = (), names: Iterable[str] = ()) -> list[Finding]:
    """Every line in the files under `paths` that shows a full ID number (any with a valid check character,
    and any of `ids`) or one of `names` (two characters or more). Binary files are skipped."""
    known_ids = set(ids)
    wanted = {n for n in names if n and len(n) >= 2}
    found = []
    for path in _text_files(paths):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if b"\0" in raw[:4096]:
            continue
        for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
            for m in _PERSONAL_NUMBER.finditer(line):
                value = unicodedata.normalize("NFKC", m.group(1)).upper()
                if value in known_ids:
                    found.append(Finding(path, number, "resident_id", mask_id(value)))
                elif _valid_id(value):
                    found.append(Finding(path, number, "id_number", mask_id(value)))
            found += [Finding(path, number, "resident_name", mask_name(n)) for n in _names_in(line, wanted)]
    return found


def _names_in(line: str, names: set[str]) -> list[str]:
    """The names of `names` in `line`, longest first at each place (a set lookup per place and length, so
    that a million names cost no more than a few)."""
    if not names:
        return []
    lengths = sorted({len(n) for n in names}, reverse=True)
    hits, i = [], 0
    while i < len(line):
        for n in lengths:
            if line[i:i + n] in names:
                hits.append(line[i:i + n])
                i += n - 1
                break
        i += 1
    return hits


def residents(conn) -> tuple[set[str], set[str]]:
    """The ID numbers and names of every person in the warehouse (benefit recipients, death and custody
    records)."""
    from sqlalchemy import select

    from risk.db.tables import death, incarceration, recipient

    ids, names = set(), set()
    for table in (recipient, death, incarceration):
        for person_id, name in conn.execute(select(table.c.person_id, table.c.name)):
            ids.add(person_id)
            names.add(name)
    return ids, names
