"""Reading one delivered file (contract §1): UTF-8 with or without BOM, .csv or .csv.gz, any column order.

A file is either read into a frame of text values (one row per record, with its 1-based line in the file)
or refused whole with a `FileRejected` that says why. Ragged rows do not refuse the file: they come back
as row problems for the quality queue.
"""
from __future__ import annotations

import csv
import gzip
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from risk.contract import SOURCES, Source

log = logging.getLogger(__name__)

LINE = "_line"


class FileRejected(Exception):
    """The whole file cannot be read; the message (Chinese / English) names the problem."""


@dataclass
class ReadFile:
    source: Source
    path: Path
    frame: pd.DataFrame  # text columns of the contract (absent optional ones added empty) + _line
    warnings: list[str] = field(default_factory=list)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, reason) of unparseable rows

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.bad_rows)


def files_of_day(day_dir: Path) -> tuple[dict[str, Path], list[str], list[tuple[str, Path]]]:
    """The contract files delivered in one day folder, by source name; warnings about other files; and
    second files of a source already delivered that day (`x.csv` beside `x.csv.gz`), to be rejected whole."""
    found: dict[str, Path] = {}
    warnings: list[str] = []
    extra: list[tuple[str, Path]] = []
    names = {s.name for s in SOURCES}
    for p in sorted(day_dir.iterdir()):
        stem = p.name.removesuffix(".gz").removesuffix(".csv") if p.name.endswith((".csv", ".csv.gz")) else None
        if stem in names and p.is_file():
            if stem in found:
                warnings.append(f"{day_dir.name}: 同一来源有两个文件 / two files for {stem}: "
                                f"{found[stem].name} and {p.name}; {found[stem].name} is read")
                extra.append((stem, p))
                continue
            found[stem] = p
        else:
            warnings.append(f"{day_dir.name}/{p.name}: 不是约定的数据文件，已忽略 / not a contract file, ignored")
    return found, warnings, extra


BOM = b"\xef\xbb\xbf"


def _raw(path: Path) -> bytes:
    """The file's bytes, decompressed, without a leading BOM; refused when it cannot be read or is binary."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise FileRejected(f"文件无法解压或读取 / cannot read or decompress the file: {e}") from None
    if b"\x00" in raw[:65536]:
        raise FileRejected("不是文本CSV文件（含二进制内容）/ not a CSV text file (binary content)")
    return raw[len(BOM):] if raw.startswith(BOM) else raw


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise FileRejected(f"不是UTF-8编码（第{line}行）/ not UTF-8 encoded (line {line})") from None


def _parse_fast(raw: bytes) -> pd.DataFrame | None:
    """pyarrow's reader, straight from the bytes, when every record is one physical line; None when it
    does not fit (or the text is not UTF-8: the careful reader then says where).

    Quoted values may hold line breaks and blank lines would be skipped: both would shift line numbers,
    so such files go to the careful reader, which counts lines itself.
    """
    end = len(raw)
    while end and raw[end - 1] in b"\r\n":  # trailing line ends shift nothing
        end -= 1
    if raw.find(b'"', 0, end) >= 0 or raw.find(b"\n\n", 0, end) >= 0 or raw.find(b"\n\r\n", 0, end) >= 0:
        return None
    first = raw.find(b"\n", 0, end)
    try:
        header = raw[: first if first >= 0 else end].decode("utf-8").rstrip("\r").split(",")
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(raw)[:end]),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False, null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None
    return table.to_pandas()


def _parse_careful(text: str) -> tuple[list[str], list[list[str]], list[int], list[tuple[int, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("文件为空，没有表头 / the file is empty: no header row") from None
    except csv.Error as e:
        raise FileRejected(f"不是有效的CSV / not valid CSV: {e}") from None
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str]] = []
    start = reader.line_num + 1
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            bad.append((start, f"CSV格式错误 / malformed CSV: {e}"))
            start = reader.line_num + 1
            continue
        if rec and len(rec) != len(header):
            bad.append((start, f"字段数为{len(rec)}，表头为{len(header)} / {len(rec)} fields, header has {len(header)}"))
        elif rec:
            rows.append(rec)
            lines.append(start)
        start = reader.line_num + 1
    return header, rows, lines, bad


def read_file(source: Source, path: Path) -> ReadFile:
    """Read one delivered file of `source`; raise FileRejected when it cannot be read at all."""
    raw = _raw(path)
    newline = raw.find(b"\n")
    if not raw[: newline if newline >= 0 else len(raw)].strip():
        raise FileRejected("文件为空或第一行不是表头 / the file is empty or its first line is not a header")
    frame = _parse_fast(raw)
    bad: list[tuple[int, str]] = []
    if frame is not None:
        header = list(frame.columns)
        frame[LINE] = pd.RangeIndex(2, len(frame) + 2)
    else:
        header, rows, lines, bad = _parse_careful(_decode(raw))
        frame = pd.DataFrame(rows, columns=header, dtype="str") if rows else pd.DataFrame(columns=header, dtype="str")
        frame[LINE] = pd.array(lines, dtype="int64")
    header = [h.strip() for h in header]
    frame.columns = header + [LINE]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileRejected(f"表头列名重复 / the header repeats columns: {', '.join(dupes)}")
    known = set(source.column_names)
    if not known & set(header):
        raise FileRejected(f"第一行不是{source.zh}的表头 / the first line is not a header of {source.name}: "
                           f"none of {', '.join(source.column_names)}")
    missing = [c for c in source.required_columns if c not in header]
    if missing:
        raise FileRejected(f"缺少必填列 / required column missing: {', '.join(missing)}")
    warnings = []
    unknown = [h for h in header if h not in known]
    if unknown:
        warnings.append(f"{path.parent.name}/{path.name}: 未知列已忽略 / unknown columns ignored: {', '.join(unknown)}")
        log.warning("%s", warnings[-1])
    for c in source.column_names:
        if c not in frame.columns:
            frame[c] = ""
    frame = frame[[*source.column_names, LINE]].copy()
    for c in source.column_names:
        frame[c] = frame[c].astype("str").str.strip()
    frame = frame.reset_index(drop=True)
    return ReadFile(source=source, path=path, frame=frame, warnings=warnings, bad_rows=bad)
