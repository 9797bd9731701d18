"""A delivered file read and checked: the rows that pass, the rows that do not and why.

Great Expectations costs a fixed amount per expectation and per call, which dominates small files: the
facts whose checks need nothing beyond the file itself (payments, card events, deaths, custody records)
are checked in batches that span several delivery days (`check_batch`, driven ahead of the loader by
risk.ingest.ahead), one suite run per batch; master data
(regions, recipients, supervisors), whose checks read the regions the warehouse knows, one file at a time
when its day is loaded.
"""
from __future__ import annotations

import logging
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, select

from risk.contract import Source
from risk.db.tables import region
from risk.errors import FileRejected
from risk.ingest import checks, derived, quality
from risk.ingest.keys import typed_rows
from risk.ingest.read import DEFAULT_LIMITS, LINE, Limits, ReadFile, read_file

log = logging.getLogger(__name__)


@dataclass
class Checked:
    """One delivered file after reading and checking; `accepted` is None when it was refused whole."""

    source: Source
    day: str
    label: str  # `<day>/<file name>`, as the quality queue and the provenance name it
    accepted: pd.DataFrame | None = None  # the derived frame of the rows that passed (with `_line`)
    rejections: list[quality.Rejection] = field(default_factory=list)
    rows_read: int = 0
    rejected_whole: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # read, validate
    rows: pd.DataFrame | None = None  # the table rows (`keys.typed_rows`), when typed ahead
    path: str = ""
    rows_file: str = ""  # the table rows as an Arrow file, when typed ahead in the worker process


def context_of(conn: Connection, day: str) -> derived.Context:
    regions = dict(conn.execute(select(region.c.code, region.c.level)).all())
    return derived.Context(villages=frozenset(c for c, lv in regions.items() if lv == "village"),
                          regions=regions, today=date.fromisoformat(day))


def check_file(conn: Connection, source: Source, path: Path, day: str, limits: Limits = DEFAULT_LIMITS) -> Checked:
    """Read and check one file against what the warehouse knows now."""
    started = time.monotonic()
    checked, read = _read(source, path, day, limits)
    if read is None:
        return checked
    t_read = time.monotonic()
    accepted, invalid = validate(conn, source, read.frame, day)
    checked.accepted, checked.rejections = accepted, checked.rejections + invalid
    refused_as_broken(checked, len(read.frame))
    checked.seconds = {"read": round(t_read - started, 3), "validate": round(time.monotonic() - t_read, 3)}
    return checked


def _read(source: Source, path: Path, day: str, limits: Limits = DEFAULT_LIMITS) -> tuple[Checked, ReadFile | None]:
    label = f"{day}/{path.name}"
    checked = Checked(source=source, day=day, label=label, path=str(path))
    try:
        read = read_file(source, path, limits)
    except FileRejected as e:
        checked.rejected_whole = str(e)
        checked.rejections = [quality.Rejection(None, None, "file", "", str(e))]
        return checked, None
    checked.warnings = read.warnings
    checked.rows_read = read.rows_read
    checked.rejections = [quality.Rejection(line, None, "row", field, why) for line, field, why in read.bad_rows]
    return checked, read


def validate(conn: Connection, source: Source, frame: pd.DataFrame, day: str,
             context: derived.Context | None = None) -> tuple[pd.DataFrame, list[quality.Rejection]]:
    """Run the source's expectation suite; return the passing rows (checked frame) and the rejections."""
    context = context or context_of(conn, day)
    checked = derived.derive(source, frame, context)
    _, failures, _ = checks.run_suite(source, checked)
    reasons = checks.reasons_by_row(failures, checked, source.personal)
    while source.name == "regions":  # a region that fails cannot be the parent of others in its file
        failed = frozenset(str(checked.at[pos, "code"]) for pos in reasons)
        if failed <= context.rejected:
            break
        context = replace(context, rejected=failed)
        checked = derived.derive(source, frame, context)
        _, failures, _ = checks.run_suite(source, checked)
        reasons = checks.reasons_by_row(failures, checked, source.personal)
    return _split(source, frame, checked, reasons)


def _split(source: Source, frame: pd.DataFrame, checked: pd.DataFrame,
           reasons: dict[int, tuple[str, str, bool]]) -> tuple[pd.DataFrame, list[quality.Rejection]]:
    rejections = []
    for pos, (fields, why, reference_only) in sorted(reasons.items()):
        raw = {c: frame.at[pos, c] for c in source.column_names}
        rejections.append(quality.Rejection(int(frame.at[pos, LINE]), frame.at[pos, source.key] or None,
                                            "reference" if reference_only else "invalid", fields, why, raw))
    accepted = checked.drop(index=list(reasons)) if reasons else checked
    return accepted, rejections


def text_size(path: Path) -> int:
    """The file's size as text: a gzip file's trailer holds it (modulo 4 GiB)."""
    if path.name.endswith(".gz"):
        try:
            with path.open("rb") as f:
                f.seek(-4, 2)
                return struct.unpack("<I", f.read(4))[0]
        except (OSError, struct.error):
            return path.stat().st_size
    return path.stat().st_size


SUITE_ROWS = 400_000  # rows in one suite run at most: a month of card events (1.8 million rows at a
# million people) is checked in slices, so the frames Great Expectations builds stay a slice's


def check_batch(source: Source, files: list[tuple[str, Path]], typed: bool = False, spool: Path | None = None,
                suite_rows: int | None = None, limits: Limits = DEFAULT_LIMITS) -> list[Checked]:
    """Read and check files of one self-contained source (each with its delivery day): small files together
    in one suite run, a big one in slices of at most `suite_rows` rows (every check looks at one row, so
    the slices' verdicts are the whole file's). `typed`: also turn the good rows into table rows
    (`Checked.rows`, or with `spool` an Arrow file there, `Checked.rows_file`), leaving the checked frame."""
    started = time.monotonic()
    limit = suite_rows or SUITE_ROWS
    results: list[Checked] = []
    reads: list[tuple[int, pd.DataFrame]] = []
    for day, path in files:
        checked, read = _read(source, path, day, limits)
        results.append(checked)
        if read is not None:
            reads.append((len(results) - 1, read.frame))
    t_read = time.monotonic()
    done: dict[int, list[pd.DataFrame]] = {i: [] for i, _ in reads}
    spooled: dict[int, SpoolFile] = {}

    def check(run: list[tuple[int, pd.DataFrame]]) -> None:
        _check_run(source, results, run, done, typed)
        if typed and spool is not None:  # a slice's typed rows go to disk at once, not a whole file's at the end
            for i, parts in done.items():
                for part in parts:
                    if i not in spooled:
                        spooled[i] = SpoolFile(spool)
                    spooled[i].write(part)
                parts.clear()

    checked_rows: dict[int, int] = dict.fromkeys(done, 0)

    def refuse_the_broken(run: list[tuple[int, pd.DataFrame]]) -> None:
        for i, piece in run:
            checked_rows[i] += len(piece)
        for i in done:
            if results[i].rejected_whole is None and refused_as_broken(results[i], checked_rows[i]):
                done[i].clear()
                if i in spooled:
                    Path(spooled.pop(i).close()).unlink(missing_ok=True)

    run: list[tuple[int, pd.DataFrame]] = []
    for i, frame in reads:
        # a big file's first rows are checked on their own first: a broken export shows there (see
        # refused_as_broken), before a whole slice of failures is built
        big = len(frame) > BROKEN_SAMPLE
        cuts = [0, *range(BROKEN_SAMPLE, len(frame), limit)] if big else list(range(0, max(len(frame), 1), limit))
        for start, end in zip(cuts, [*cuts[1:], max(len(frame), 1)], strict=True):
            if results[i].rejected_whole is not None:
                break  # refused as broken: the rest of it is not checked
            run.append((i, frame.iloc[start:end]))
            if sum(len(piece) for _, piece in run) >= limit or (big and start == 0):
                check(run)
                refuse_the_broken(run)
                run = []
    if run:
        check(run)
        refuse_the_broken(run)
    del reads
    for i, parts in done.items():
        checked = results[i]
        if checked.rejected_whole is not None:
            continue
        if typed and spool is not None:
            checked.rows_file = spooled[i].close() if i in spooled else SpoolFile(spool).close()
        elif parts:
            whole = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
            if typed:
                checked.rows = whole
            else:
                checked.accepted = whole
        parts.clear()
    # the batch's time, shared by rows
    total = sum(c.rows_read for c in results) or 1
    t_done = time.monotonic()
    for c in results:
        share = c.rows_read / total
        c.seconds = {"read": round((t_read - started) * share, 3), "validate": round((t_done - t_read) * share, 3)}
    if len(files) > 1:
        log.debug("checked %d %s files in one batch (%.1f s)", len(files), source.name, t_done - started)
    return results


MAX_REJECTED_ROWS = 100_000  # a file with more rows that fail their checks is refused whole as broken
BROKEN_SAMPLE = 20_000  # a bigger file is checked this many rows first: if nearly all fail (BROKEN_SHARE),
BROKEN_SHARE = 0.9  # it is refused whole as broken too


def refused_as_broken(checked: Checked, checked_rows: int | None = None) -> bool:
    """Refuse `checked` whole when more than MAX_REJECTED_ROWS of its rows fail their checks, or when
    BROKEN_SHARE of its first `checked_rows` rows (at least BROKEN_SAMPLE) do: such a file is broken
    (columns shifted, another source's file, a wrong export), a row-by-row quarantine of it would be of no
    use to anyone, and its rejections alone would hold gigabytes (two million rows of card events that
    failed took a load to 14 GB). The department is asked for it again; a few of the reasons say what is
    wrong. Its rows count as not read, as for any file refused whole."""
    # rows waiting for their region (kind reference) are not broken: a later regions.csv admits them
    failed = [r for r in checked.rejections if r.line is not None and r.kind != "reference"]
    sampled = checked_rows is not None and checked_rows >= BROKEN_SAMPLE
    if len(failed) <= MAX_REJECTED_ROWS and not (sampled and len(failed) >= BROKEN_SHARE * (checked_rows or 0)):
        return False
    how_many = (f"超过{MAX_REJECTED_ROWS:,}行" if len(failed) > MAX_REJECTED_ROWS else f"前{checked_rows:,}行中{len(failed):,}行",
                f"more than {MAX_REJECTED_ROWS:,}" if len(failed) > MAX_REJECTED_ROWS
                else f"{len(failed):,} of the first {checked_rows:,}")
    examples = " | ".join(list(dict.fromkeys(r.reason for r in failed[:1000]))[:3])  # IDs and names masked
    checked.rejected_whole = (
        f"{how_many[0]}未通过检查（共读入{checked.rows_read:,}行），文件有误，整个拒收，请部门重新交付 / "
        f"{how_many[1]} of its {checked.rows_read:,} rows fail their checks: the file is refused whole as broken "
        f"(columns shifted, another source's file, a wrong export); ask the department for it again. "
        f"例如 / for example: {examples}")
    checked.rejections = [quality.Rejection(None, None, "file", "", checked.rejected_whole)]
    checked.rows_read = 0
    checked.accepted = checked.rows = None
    return True


def _check_run(source: Source, results: list[Checked], run: list[tuple[int, pd.DataFrame]],
               done: dict[int, list[pd.DataFrame]], typed: bool) -> None:
    """One suite run over pieces of files (`run`: result index, rows); each piece's passing rows (typed
    with `typed`) are appended to `done[index]`, its rejections to its result."""
    pieces = [piece.reset_index(drop=True) for _, piece in run]
    frames = [derived.derive(source, piece, derived.Context(
        villages=frozenset(), regions={}, today=date.fromisoformat(results[i].day))) for (i, _), piece in zip(
        run, pieces, strict=True)]
    checked_all = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    _, failures, _ = checks.run_suite(source, checked_all)
    reasons = checks.reasons_by_row(failures, checked_all, source.personal)
    first = 0
    for (i, _), piece, piece_checked in zip(run, pieces, frames, strict=True):
        last = first + len(piece)
        mine = {pos - first: why for pos, why in reasons.items() if first <= pos < last}
        accepted, invalid = _split(source, piece, piece_checked, mine)
        results[i].rejections += invalid
        done[i].append(typed_rows(source, accepted, results[i].day, results[i].label) if typed else accepted)
        first = last


class SpoolFile:
    """A file's typed rows as one Arrow file in the spool folder, written a slice at a time."""

    def __init__(self, spool: Path) -> None:
        fd, self.name = tempfile.mkstemp(suffix=".arrow", dir=spool)
        os.close(fd)
        self.sink = pa.OSFile(self.name, "wb")
        self.writer: pa.ipc.RecordBatchFileWriter | None = None
        self.schema: pa.Schema | None = None

    def write(self, part: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(part, schema=self.schema, preserve_index=False)
        if self.writer is None:
            self.schema = table.schema
            self.writer = pa.ipc.new_file(self.sink, self.schema)
        self.writer.write_table(table)

    def close(self) -> str:
        if self.writer is not None:
            self.writer.close()
        self.sink.close()
        return self.name
