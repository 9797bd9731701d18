"""Reading one delivered file (contract §1): UTF-8 with or without BOM, .csv or .csv.gz, any column order.

A file is either read into a frame of text values (one row per record, with its 1-based line in the file)
or refused whole with a `FileRejected` that says why. Ragged rows, rows holding a NUL byte and lines longer
than a row may be (`Limits.row_bytes`) do not refuse the file: they come back as row problems for the
quality queue, and the rest is read.

What a hostile or broken file can cost is bounded: the file is read (and decompressed) a slice at a time,
and a file larger than `Limits.file_bytes` as text is refused whole as soon as it passes that size, before
the rest is read: a small gzip bomb never grows past it.
"""
from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from risk.contract import SOURCES, Source
from risk.errors import FileRejected

log = logging.getLogger(__name__)

LINE = "_line"


@dataclass(frozen=True)
class Limits:
    """What one delivered file may be. The biggest file of a generated million-person city is a month of
    card events, about 170 MiB as text; a bigger file than `file_bytes` is refused whole with its reason
    (RISK_MAX_FILE_MIB: a file costs its load about ten times its size in memory, 1,991 MiB on SQLite for
    207.6 MiB of card events, benchmarks.big_files). A record is a few hundred bytes: a longer line is a
    broken or hostile row."""

    file_bytes: int = 200 * 2**20  # decompressed
    row_bytes: int = 64 * 2**10  # one physical line

    @classmethod
    def of_mib(cls, file_mib: int | None) -> Limits:
        return cls(file_bytes=file_mib * 2**20) if file_mib else cls()


DEFAULT_LIMITS = Limits()
CHUNK = 8 * 2**20  # read (and decompressed) this much at a time


@dataclass
class ReadFile:
    source: Source
    path: Path
    frame: pd.DataFrame  # text columns of the contract (absent optional ones added empty) + _line
    warnings: list[str] = field(default_factory=list)
    bad_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (line, field, reason) of rows not read

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
    landing = day_dir.parent.resolve()
    for p in sorted(day_dir.iterdir()):
        if not inside(p, landing):
            warnings.append(f"{day_dir.name}/{p.name}: 链接指向落地目录之外，未读 / a link out of the landing "
                            "folder: not read")
            log.warning("%s", warnings[-1])
            continue
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


def inside(path: Path, landing: Path) -> bool:
    """Whether `path`, links followed, lies inside the (resolved) landing folder: a delivery is read from
    the landing and nowhere else, whatever a link in it points to."""
    try:
        return path.resolve().is_relative_to(landing)
    except (OSError, RuntimeError):  # a loop of links
        return False


BOM = b"\xef\xbb\xbf"
NUL = b"\x00"


def _raw(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytearray:
    """The file's bytes, decompressed a slice at a time, without a leading BOM; refused when it cannot be
    read or grows past `limits.file_bytes`."""
    raw = bytearray()  # grown in place (a big block is remapped, not copied): never the file twice
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as f:
            while chunk := f.read(CHUNK):
                if len(raw) + len(chunk) > limits.file_bytes:
                    mib = limits.file_bytes // 2**20
                    raise FileRejected(f"文件超过{mib} MiB（解压后），未读入 / the file is larger than {mib} MiB as "
                                       f"text (decompressed): not read (the limit is RISK_MAX_FILE_MIB)")
                raw += chunk
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise FileRejected(f"文件无法解压或读取 / cannot read or decompress the file: {e}") from None
    if raw.startswith(BOM):
        del raw[:len(BOM)]
    return raw


def _cut_long_lines(raw: bytearray, limit: int) -> tuple[bytearray, list[tuple[int, str, str]]]:
    """`raw` with every line longer than `limit` bytes emptied (its line end stays, so the lines after it
    keep their numbers), and those lines as row problems (line, field, reason). A line that long holds a
    window of limit/2 bytes with no line end, so only such windows are looked at (a memchr each), not every
    line. `raw` itself is returned when no line is that long."""
    step = max(limit // 2, 1)
    cut: list[tuple[int, int]] = []
    pos, size = 0, len(raw)
    while pos < size:
        window_end = min(pos + step, size)
        if raw.find(b"\n", pos, window_end) >= 0:
            pos = window_end
            continue
        start = raw.rfind(b"\n", 0, pos) + 1  # the line around a window with no line end
        end = raw.find(b"\n", window_end)
        end = size if end < 0 else end
        if end - start > limit:
            cut.append((start, end))
        pos = end + 1
    if not cut:
        return raw, []
    problems: list[tuple[int, str, str]] = []
    kept: list[memoryview] = []
    line, counted, previous_end = 1, 0, 0
    view = memoryview(raw)
    for start, end in cut:
        line += raw.count(b"\n", counted, start)
        counted = start
        problems.append((line, "", f"第{line}行超过{limit:,}字节，未读入 / line {line} is longer than {limit:,} "
                                    "bytes: not read"))
        kept.append(view[previous_end:start])
        previous_end = end
    kept.append(view[previous_end:])
    out = bytearray().join(kept)
    del kept
    view.release()
    return out, problems


def _decode(raw: bytes | bytearray) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if raw.find(NUL) >= 0:  # neither text nor UTF-8: an image, a spreadsheet, UTF-16
            raise FileRejected("不是文本CSV文件（含二进制内容）/ not a CSV text file (binary content)") from None
        line = raw.count(b"\n", 0, e.start) + 1
        raise FileRejected(f"不是UTF-8编码（第{line}行）/ not UTF-8 encoded (line {line})") from None


def _parse_fast(raw: bytes | bytearray) -> pd.DataFrame | None:
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


def _parse_careful(text: str) -> tuple[list[str], list[list[str]], list[int], list[tuple[int, str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("文件为空，没有表头 / the file is empty: no header row") from None
    except csv.Error as e:
        raise FileRejected(f"不是有效的CSV / not valid CSV: {e}") from None
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, str, str]] = []
    start = reader.line_num + 1
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            bad.append((start, "", f"CSV格式错误 / malformed CSV: {e}"))
            start = reader.line_num + 1
            continue
        if rec and len(rec) != len(header):
            bad.append((start, "", f"字段数为{len(rec)}，表头为{len(header)} / {len(rec)} fields, header has {len(header)}"))
        elif rec:
            rows.append(rec)
            lines.append(start)
        start = reader.line_num + 1
    return header, rows, lines, bad


def read_file(source: Source, path: Path, limits: Limits = DEFAULT_LIMITS) -> ReadFile:
    """Read one delivered file of `source`; raise FileRejected when it cannot be read at all."""
    return read_bytes(source, _raw(path, limits), path, limits)


def read_bytes(source: Source, raw: bytearray, path: Path, limits: Limits = DEFAULT_LIMITS) -> ReadFile:
    """A delivered file's bytes (decompressed, without BOM: see `_raw`) read as `read_file` does; `raw`
    may be changed. `path` names the file in warnings."""
    newline = raw.find(b"\n")
    first = raw[: newline if newline >= 0 else len(raw)]
    if not first.strip():
        raise FileRejected("文件为空或第一行不是表头 / the file is empty or its first line is not a header")
    if NUL in first:
        raise FileRejected("第一行含有NUL字节，不是文本CSV文件 / the first line holds a NUL byte: not a CSV text file")
    if len(first) > limits.row_bytes:
        raise FileRejected(f"第一行超过{limits.row_bytes:,}字节，不是表头 / the first line is longer than "
                           f"{limits.row_bytes:,} bytes: not a header")
    del first
    kept, bad = _cut_long_lines(raw, limits.row_bytes)
    if kept is not raw:
        _release(raw)
        raw = kept
    has_nul = raw.find(NUL) >= 0
    frame = _parse_fast(raw)
    if frame is not None:
        header = list(frame.columns)
        frame[LINE] = pd.RangeIndex(2, len(frame) + 2)
    else:
        header, rows, lines, careful = _parse_careful(_decode(raw))
        bad += careful
        frame = pd.DataFrame(rows, columns=header, dtype="str") if rows else pd.DataFrame(columns=header, dtype="str")
        frame[LINE] = pd.array(lines, dtype="int64")
    _release(raw)  # what the frame holds is read: the bytes go before the frame is tidied
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
    if has_nul:
        frame, holding = _without_nul(frame, header)
        bad += holding
    for c in source.column_names:
        if c not in frame.columns:
            frame[c] = ""
    frame = frame[[*source.column_names, LINE]].copy()
    for c in source.column_names:
        frame[c] = frame[c].astype("str").str.strip()
    frame = frame.reset_index(drop=True)
    return ReadFile(source=source, path=path, frame=frame, warnings=warnings, bad_rows=sorted(bad))


def _release(raw: bytearray) -> None:
    """Free the file's bytes now: the caller's reference would keep them alive until the file is read.
    Where a parser still holds a view of them (a failed parse's leftovers), they go with the last reference."""
    try:
        raw.clear()
    except BufferError:
        pass


def _without_nul(frame: pd.DataFrame, header: list[str]) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """The rows with no NUL byte in any delivered value, and the others as row problems naming the first
    field that holds one. A NUL is a bad value like any other: the row goes to the quality queue and the
    rest of the file loads (PostgreSQL cannot store one; SQLite would, silently)."""
    found = pd.Series("", index=frame.index, dtype="str")
    for c in header:
        holds = frame[c].astype("str").str.contains("\x00", regex=False) & (found == "")
        found = found.mask(holds, c)
    hit = found != ""
    problems = [(int(line), field, f"{field}含有NUL字节（二进制内容）/ {field} holds a NUL byte (binary content)")
                for line, field in zip(frame.loc[hit, LINE].tolist(), found[hit].tolist(), strict=True)]
    return frame.loc[~hit], problems
