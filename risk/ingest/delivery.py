"""Delivery days: which are waiting in the landing folder, and loading one of them into the warehouse.

A day is loaded in one transaction: every file read (`read`), its rows checked (`checks`), the good ones
stored by the contract's keys (`keys`) and the rest put in the quality queue (`quality`); rows that waited
for a region delivered today are admitted again. Loading a day twice, or days in any order, leaves the same
tables.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Table, delete, select

from risk import memory
from risk.contract import BY_NAME, SOURCES
from risk.db import gateway
from risk.db.tables import FACT_TABLES, certification, delivery, delivery_file, quality_issue
from risk.errors import InputError
from risk.ingest import checks, quality
from risk.ingest.ahead import Intake
from risk.ingest.intake import Checked, check_file, validate
from risk.ingest.keys import record_certifications, store, typed_rows
from risk.ingest.read import LINE, Limits, files_of_day, inside
from risk.progress import Step
from risk.settings import Settings

log = logging.getLogger(__name__)

DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
Progress = Callable[[str], None]


def delivery_days(landing: str | Path) -> list[str]:
    root = Path(landing)
    if not root.is_dir():
        raise InputError(f"找不到落地目录 / landing folder not found: {root}")
    days = []
    inner = root.resolve()
    for p in sorted(root.iterdir()):
        if not inside(p, inner):
            log.warning("%s: 链接指向落地目录之外，已跳过 / a link out of the landing folder, skipped", p.name)
            continue
        if p.is_dir() and DAY_RE.match(p.name):
            try:
                date.fromisoformat(p.name)
            except ValueError:
                log.warning("%s: 不是有效日期的目录，已跳过 / not a real date, skipped", p.name)
                continue
            days.append(p.name)
        else:
            log.warning("%s: 不是交付日目录（YYYY-MM-DD），已跳过 / not a delivery-day folder, skipped", p.name)
    return days


def loaded_days(settings: Settings) -> set[str]:
    with gateway.transaction(settings.database_url) as conn:
        return set(conn.execute(select(delivery.c.day)).scalars())


def pending_days(settings: Settings, landing: str | Path, until: str | None = None) -> list[str]:
    """Delivery days (YYYY-MM-DD folder names) in `landing` not loaded yet, oldest first, ≤ until."""
    if until is not None:
        try:
            date.fromisoformat(until)
        except ValueError:
            raise InputError(f"--until 不是YYYY-MM-DD日期 / --until is not a YYYY-MM-DD date: {until}") from None
    done = loaded_days(settings)
    return [d for d in delivery_days(landing) if d not in done and (until is None or d <= until)]


@dataclass
class FileSummary:
    source: str
    file: str
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    redelivered: int = 0
    superseded: int = 0
    rejected_whole: str | None = None
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # read, validate, store: seconds each
    warnings: list[str] = field(default_factory=list)


def load_days(settings: Settings, landing: str | Path, days: list[str],
              progress: Progress | None = None) -> list[dict]:
    """Load `days` (oldest first), each in its own transaction; the self-contained facts of several days
    are checked ahead in batches (see `intake`). Returns each day's summary."""
    out: list[dict] = []
    with Intake(landing, days, limits=Limits.of_mib(settings.max_file_mib)) as intake:
        bulk = _bulk_tables(settings, intake)
        if bulk and progress:
            progress(f"批量加载：先移除索引，加载后重建 / bulk load: indexes of {', '.join(t.name for t in bulk)} "
                     "are built again afterwards")
        _load_all(settings, landing, days, intake, bulk, out, progress)
    refresh_statistics(settings, out)
    return out


def refresh_statistics(settings: Settings, summaries: list[dict]) -> list[str]:
    """Refresh the statistics of the tables that loading these days (their summaries) changed a lot (see
    gateway.refresh_statistics): before detection plans its queries on them."""
    written: Counter[str] = Counter()
    for day in summaries:
        for f in day["files"]:
            rows = f["loaded"] + f["superseded"]
            written[FACT_TABLES[f["source"]].name] += rows
            if f["source"] == "recipients":
                written[certification.name] += rows
    started = time.monotonic()
    refreshed = gateway.refresh_statistics(settings.database_url, written)
    if refreshed:
        log.info("statistics refreshed (VACUUM ANALYZE) for %s (%.1f s)", ", ".join(refreshed),
                 time.monotonic() - started)
    return refreshed


def _load_all(settings: Settings, landing: str | Path, days: list[str], intake: Intake, bulk: list[Table],
              out: list[dict], progress: Progress | None) -> None:
    with gateway.indexes_set_aside(settings.database_url, bulk):
        for i, day in enumerate(days, 1):
            t = time.monotonic()
            out.append(load_day(settings, landing, day, intake=intake))
            if progress:
                read = sum(f["read"] for f in out[-1]["files"])
                rejected = sum(f["rejected"] for f in out[-1]["files"])
                progress(Step(f"[{i}/{len(days)}] {day}: {len(out[-1]['files'])} 个文件 files, 读入 read {read:,}, "
                              f"拒收 rejected {rejected:,} ({time.monotonic() - t:.1f} s)", i, len(days), read))


BULK_SOURCES = ("payments", "card_events")  # the big fact tables
BULK_SHARE = 0.5  # a load that brings at least half of what a table holds builds its indexes afterwards
BULK_MIN_ROWS = 20_000
ROW_BYTES = 80  # about one delivered row of either, as text


def _bulk_tables(settings: Settings, intake: Intake) -> list[Table]:
    """The big fact tables this load brings so much to that their secondary indexes are better built
    afterwards than kept up to date row by row (a backfill, or a warehouse still young)."""
    out = []
    with gateway.transaction(settings.database_url) as conn:
        for name in BULK_SOURCES:
            incoming = intake.text_bytes(name) / ROW_BYTES
            table = FACT_TABLES[name]
            if incoming >= BULK_MIN_ROWS and incoming >= BULK_SHARE * gateway.estimated_rows(conn, table):
                out.append(table)
    return out


def load_day(settings: Settings, landing: str | Path, day: str, progress: Progress | None = None,
             intake: Intake | None = None) -> dict:
    """Read, validate and load one delivery day in one transaction; return its summary (JSON-able).
    `intake` may hold some of the day's files already read and checked."""
    day_dir = Path(landing) / day
    if not day_dir.is_dir():
        raise InputError(f"找不到交付日目录 / delivery-day folder not found: {day_dir}")
    files, warnings, extra = files_of_day(day_dir)
    checks.warm_up(files)
    for w in warnings:
        log.warning("%s", w)
    ahead = {name: intake.take(day, BY_NAME[name]) if intake else None for name in files}
    summaries: list[FileSummary] = []
    with gateway.transaction(settings.database_url) as conn:
        for source in SOURCES:
            if source.name in files:
                checked = ahead[source.name] or check_file(conn, source, files[source.name], day,
                                                           Limits.of_mib(settings.max_file_mib))
                summaries.append(_load_file(conn, checked))
                if progress:
                    s = summaries[-1]
                    progress(f"  {day} {s.file}: 读入 read {s.read:,}, 入库 loaded {s.loaded:,}, "
                             f"拒收 rejected {s.rejected:,}, 重复 re-delivered {s.redelivered:,} ({s.seconds:.1f} s)")
        for name, path in extra:
            quality.record(conn, name, day, f"{day}/{path.name}", [quality.Rejection(
                None, None, "file", "", f"同一天已有{files[name].name}，本文件不读 / {files[name].name} was "
                                        "delivered the same day; this second file of the source is not read")])
        if "regions" in files:
            readmitted, more = 0, readmit(conn, day)
            while more:  # a township admitted may let its villages, and they their recipients, in
                readmitted += more
                more = readmit(conn, day)
            if readmitted:
                log.info("%s: %d rows waiting for their region were loaded", day, readmitted)
        conn.execute(delete(delivery).where(delivery.c.day == day))
        conn.execute(delivery.insert().values(day=day, loaded_at=datetime.now(), files=len(files),
                                              warnings=json.dumps(warnings, ensure_ascii=False)))
    return {"day": day, "files": [asdict(s) for s in summaries], "warnings": warnings}


def _load_file(conn: Connection, checked: Checked) -> FileSummary:
    """Store a checked file's good rows, queue its rejections, and record the file."""
    started = time.monotonic()
    source, day = checked.source, checked.day
    s = FileSummary(source=source.name, file=checked.label, warnings=checked.warnings, read=checked.rows_read)
    if checked.rejected_whole is not None:
        s.rejected_whole = checked.rejected_whole
        log.error("%s: 整个文件被拒收 / file rejected whole: %s", checked.label, checked.rejected_whole)
        quality.record(conn, source.name, day, checked.label, checked.rejections)
        _record_file(conn, s, rejected_whole=True)
        return s
    t_typed = time.monotonic()
    rows = checked.rows if checked.rows is not None else typed_rows(source, checked.accepted, day, checked.label)
    checked.accepted = checked.rows = None  # the frames are not needed any more: let a big file's memory go
    memory.release()  # what checking freed goes back before storing builds its own (a big file's peak)
    seen_before = conn.execute(select(delivery_file.c.source).where(
        (delivery_file.c.delivery_day == day) & (delivery_file.c.source == source.name))).first() is not None
    stored = store(conn, source, rows, seen_before=seen_before)
    if source.name == "recipients":
        record_certifications(conn, rows)
    quality.record(conn, source.name, day, checked.label, checked.rejections)
    s.stages = {**checked.seconds, "store": round(time.monotonic() - t_typed, 3)}
    s.loaded, s.redelivered, s.superseded = stored.loaded, stored.redelivered, stored.superseded
    s.rejected = len(checked.rejections) + stored.conflicts
    s.seconds = round(sum(checked.seconds.values()) + time.monotonic() - started, 3)
    _record_file(conn, s, rejected_whole=False)
    memory.release()  # the allocators keep freed memory for reuse; a big file's goes back
    return s


def _record_file(conn: Connection, s: FileSummary, rejected_whole: bool) -> None:
    day = s.file.split("/", 1)[0]
    conn.execute(delete(delivery_file).where(
        (delivery_file.c.delivery_day == day) & (delivery_file.c.source == s.source)))
    conn.execute(delivery_file.insert().values(
        delivery_day=day, source=s.source, file_name=s.file, rows_read=s.read, rejected_whole=rejected_whole,
        load_ms=int(round(s.seconds * 1000)), warnings=json.dumps(s.warnings, ensure_ascii=False)))


def readmit(conn: Connection, day: str) -> int:
    """Rows rejected only because their village or region was unknown are checked again now that more
    regions are known; those that pass are loaded with their own provenance. Keeps loading order-free."""
    waiting = conn.execute(select(quality_issue).where(quality_issue.c.kind == "reference")).mappings().all()
    admitted = 0
    by_file: dict[tuple[str, str, str], list] = {}
    for w in waiting:
        by_file.setdefault((w["source"], w["delivery_day"], w["file_name"]), []).append(w)
    for (name, file_day, label), issues in by_file.items():
        source = BY_NAME[name]
        frame = pd.DataFrame([{**json.loads(i["raw"]), LINE: i["line"]} for i in issues])
        for c in source.column_names:
            frame[c] = frame[c].astype("str")
        accepted, still = validate(conn, source, frame, file_day)
        if accepted.empty:
            continue
        lines = accepted[LINE].astype(int).tolist()
        conn.execute(delete(quality_issue).where(
            (quality_issue.c.source == name) & (quality_issue.c.delivery_day == file_day)
            & quality_issue.c.line.in_(lines)))
        rows = typed_rows(source, accepted, file_day, label)
        store(conn, source, rows)
        if name == "recipients":
            record_certifications(conn, rows)
        admitted += len(lines)
    return admitted
