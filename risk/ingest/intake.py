"""A delivered file read and checked: the rows that pass, the rows that do not and why.

Great Expectations costs a fixed amount per expectation and per call, which dominates small files: the
facts whose checks need nothing beyond the file itself (payments, card events, deaths, custody records)
are checked in batches that span several delivery days (`Intake`), one suite run per batch; master data
(regions, recipients, supervisors), whose checks read the regions the warehouse knows, one file at a time
when its day is loaded.
"""
from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, select

from risk.contract import Source
from risk.db.tables import region
from risk.ingest import checks, quality
from risk.ingest.read import LINE, FileRejected, ReadFile, files_of_day, read_file

log = logging.getLogger(__name__)

SENSITIVE = frozenset({"person_id", "name", "bank_account", "phone", "card_no"})
# checked with nothing but the file (and its delivery day): can be checked before earlier days are loaded
SELF_CONTAINED = frozenset({"payments", "card_events", "deaths", "incarcerations"})
BATCH_BYTES = 64 * 2**20  # text checked in one suite run: ~700,000 payments


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


def context_of(conn: Connection, day: str) -> checks.Context:
    regions = dict(conn.execute(select(region.c.code, region.c.level)).all())
    return checks.Context(villages=frozenset(c for c, lv in regions.items() if lv == "village"),
                          regions=regions, today=date.fromisoformat(day))


def check_file(conn: Connection, source: Source, path: Path, day: str) -> Checked:
    """Read and check one file against what the warehouse knows now."""
    started = time.monotonic()
    checked, read = _read(source, path, day)
    if read is None:
        return checked
    t_read = time.monotonic()
    accepted, invalid = validate(conn, source, read.frame, day)
    checked.accepted, checked.rejections = accepted, checked.rejections + invalid
    checked.seconds = {"read": round(t_read - started, 3), "validate": round(time.monotonic() - t_read, 3)}
    return checked


def _read(source: Source, path: Path, day: str) -> tuple[Checked, ReadFile | None]:
    label = f"{day}/{path.name}"
    checked = Checked(source=source, day=day, label=label)
    try:
        read = read_file(source, path)
    except FileRejected as e:
        checked.rejected_whole = str(e)
        checked.rejections = [quality.Rejection(None, None, "file", "", str(e))]
        return checked, None
    checked.warnings = read.warnings
    checked.rows_read = read.rows_read
    checked.rejections = [quality.Rejection(line, None, "row", "", why) for line, why in read.bad_rows]
    return checked, read


def validate(conn: Connection, source: Source, frame: pd.DataFrame, day: str,
             context: checks.Context | None = None) -> tuple[pd.DataFrame, list[quality.Rejection]]:
    """Run the source's expectation suite; return the passing rows (checked frame) and the rejections."""
    context = context or context_of(conn, day)
    checked = checks.derive(source, frame, context)
    _, failures, _ = checks.run_suite(source, checked)
    reasons = checks.reasons_by_row(failures, checked, SENSITIVE)
    while source.name == "regions":  # a region that fails cannot be the parent of others in its file
        failed = frozenset(str(checked.at[pos, "code"]) for pos in reasons)
        if failed <= context.rejected:
            break
        context = replace(context, rejected=failed)
        checked = checks.derive(source, frame, context)
        _, failures, _ = checks.run_suite(source, checked)
        reasons = checks.reasons_by_row(failures, checked, SENSITIVE)
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


class Intake:
    """The self-contained facts of several pending days, checked ahead in batches (see the module's
    docstring). `take(day, source)` gives a file's result once; files it does not hold are checked by
    the caller when their day is loaded."""

    def __init__(self, landing: str | Path, days: list[str], batch_bytes: int = BATCH_BYTES):
        self.batch_bytes = batch_bytes
        self.waiting: dict[str, list[tuple[str, Path]]] = {name: [] for name in SELF_CONTAINED}
        for day in days:
            found, _warnings, _extra = files_of_day(Path(landing) / day)
            for name, path in found.items():
                if name in SELF_CONTAINED:
                    self.waiting[name].append((day, path))
        self.ready: dict[tuple[str, str], Checked] = {}

    def text_bytes(self, source_name: str) -> int:
        """The size, as text, of the files of `source_name` still waiting."""
        return sum(text_size(path) for _day, path in self.waiting.get(source_name, []))

    def take(self, day: str, source: Source) -> Checked | None:
        if source.name not in SELF_CONTAINED:
            return None
        if (day, source.name) not in self.ready:
            self._check_batch(source, day)
        return self.ready.pop((day, source.name), None)

    def _check_batch(self, source: Source, day: str) -> None:
        queue = self.waiting[source.name]
        while queue and queue[0][0] < day:  # days the caller loaded without asking
            queue.pop(0)
        if not queue or queue[0][0] != day:
            return
        batch: list[tuple[str, Path]] = []
        size = 0
        while queue and (not batch or size + text_size(queue[0][1]) <= self.batch_bytes):
            size += text_size(queue[0][1])
            batch.append(queue.pop(0))
        for checked in check_batch(source, batch):
            self.ready[(checked.day, source.name)] = checked


def check_batch(source: Source, files: list[tuple[str, Path]]) -> list[Checked]:
    """Read and check files of one self-contained source (each with its delivery day) in one suite run."""
    started = time.monotonic()
    results: list[Checked] = []
    frames: list[pd.DataFrame] = []
    derived: list[pd.DataFrame] = []
    for day, path in files:
        checked, read = _read(source, path, day)
        results.append(checked)
        if read is not None:
            context = checks.Context(villages=frozenset(), regions={}, today=date.fromisoformat(day))
            frames.append(read.frame.assign(_file=len(results) - 1))
            derived.append(checks.derive(source, read.frame, context))
    t_read = time.monotonic()
    if frames:
        frame = pd.concat(frames, ignore_index=True)
        checked_all = pd.concat(derived, ignore_index=True)
        _, failures, _ = checks.run_suite(source, checked_all)
        reasons = checks.reasons_by_row(failures, checked_all, SENSITIVE)
        owner = frame["_file"].to_numpy()
        for i, checked in enumerate(results):
            if checked.rejected_whole:
                continue
            mine = owner == i
            rows = frame.index[mine]
            first = int(rows[0]) if len(rows) else 0
            part = frame[mine].drop(columns="_file").reset_index(drop=True)
            part_checked = checked_all[mine].reset_index(drop=True)
            part_reasons = {pos - first: why for pos, why in reasons.items() if owner[pos] == i}
            accepted, invalid = _split(source, part, part_checked, part_reasons)
            checked.accepted = accepted
            checked.rejections += invalid
    # the batch's time, shared by rows
    total = sum(c.rows_read for c in results) or 1
    t_done = time.monotonic()
    for c in results:
        share = c.rows_read / total
        c.seconds = {"read": round((t_read - started) * share, 3), "validate": round((t_done - t_read) * share, 3)}
    if len(files) > 1:
        log.debug("checked %d %s files in one batch (%.1f s)", len(files), source.name, t_done - started)
    return results
