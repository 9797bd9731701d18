"""The nightly steps as plain functions of (settings, delivery day).

`risk run` and the Airflow tasks call exactly these; they hand each other keys (a landing folder, a
delivery day), never data: the warehouse is the contract between steps.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, delete, func, select

from risk import checks, privacy, quality
from risk.contract import BY_NAME, SOURCES, Source
from risk.db import gateway
from risk.db.tables import delivery, delivery_file, quality_issue, region
from risk.errors import InputError
from risk.ingest import LINE, FileRejected, files_of_day, read_file
from risk.load import record_certifications, store, typed_rows
from risk.settings import Settings

log = logging.getLogger(__name__)
privacy.install()  # every process that runs these steps (the CLI, an Airflow task) masks IDs in its logs

DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
SENSITIVE = frozenset({"person_id", "name", "bank_account", "phone", "card_no"})
Progress = Callable[[str], None]


def prepare(settings: Settings) -> None:
    """Create or migrate the warehouse to the newest schema."""
    gateway.migrate(settings.database_url)


def delivery_days(landing: str | Path) -> list[str]:
    root = Path(landing)
    if not root.is_dir():
        raise InputError(f"找不到落地目录 / landing folder not found: {root}")
    days = []
    for p in sorted(root.iterdir()):
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


def load_day(settings: Settings, landing: str | Path, day: str, progress: Progress | None = None) -> dict:
    """Read, validate and load one delivery day in one transaction; return its summary (JSON-able)."""
    day_dir = Path(landing) / day
    if not day_dir.is_dir():
        raise InputError(f"找不到交付日目录 / delivery-day folder not found: {day_dir}")
    checks.warm_up()
    files, warnings, extra = files_of_day(day_dir)
    for w in warnings:
        log.warning("%s", w)
    summaries: list[FileSummary] = []
    with gateway.transaction(settings.database_url) as conn:
        for source in SOURCES:
            if source.name in files:
                summaries.append(_load_file(conn, source, files[source.name], day))
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


def _context(conn: Connection, day: str) -> checks.Context:
    regions = dict(conn.execute(select(region.c.code, region.c.level)).all())
    return checks.Context(villages=frozenset(c for c, lv in regions.items() if lv == "village"),
                          regions=regions, today=date.fromisoformat(day))


def _load_file(conn: Connection, source: Source, path: Path, day: str) -> FileSummary:
    started = time.monotonic()
    label = f"{day}/{path.name}"
    s = FileSummary(source=source.name, file=label)
    try:
        read = read_file(source, path)
    except FileRejected as e:
        s.rejected_whole = str(e)
        log.error("%s: 整个文件被拒收 / file rejected whole: %s", label, e)
        quality.record(conn, source.name, day, label, [quality.Rejection(None, None, "file", "", str(e))])
        _record_file(conn, s, rejected_whole=True)
        return s
    s.warnings = read.warnings
    t_read = time.monotonic()
    rejections = [quality.Rejection(line, None, "row", "", why) for line, why in read.bad_rows]
    accepted, invalid = validate(conn, source, read.frame, day)
    rejections += invalid
    rows = typed_rows(source, accepted, day, label)
    t_valid = time.monotonic()
    seen_before = conn.execute(select(delivery_file.c.source).where(
        (delivery_file.c.delivery_day == day) & (delivery_file.c.source == source.name))).first() is not None
    stored = store(conn, source, rows, seen_before=seen_before)
    if source.name == "recipients":
        record_certifications(conn, rows)
    quality.record(conn, source.name, day, label, rejections)
    s.stages = {"read": round(t_read - started, 3), "validate": round(t_valid - t_read, 3),
                "store": round(time.monotonic() - t_valid, 3)}
    s.read = read.rows_read
    s.loaded, s.redelivered, s.superseded = stored.loaded, stored.redelivered, stored.superseded
    s.rejected = len(rejections) + stored.conflicts
    s.seconds = round(time.monotonic() - started, 3)
    _record_file(conn, s, rejected_whole=False)
    return s


def validate(conn: Connection, source: Source, frame: pd.DataFrame, day: str) -> tuple[pd.DataFrame, list]:
    """Run the source's expectation suite; return the passing rows (checked frame) and the rejections."""
    context = _context(conn, day)
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
    rejections = []
    for pos, (fields, why, reference_only) in sorted(reasons.items()):
        raw = {c: frame.at[pos, c] for c in source.column_names}
        rejections.append(quality.Rejection(int(frame.at[pos, LINE]), frame.at[pos, source.key] or None,
                                            "reference" if reference_only else "invalid", fields, why, raw))
    accepted = checked.drop(index=list(reasons)) if reasons else checked
    return accepted, rejections


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


def detection_parts(settings: Settings) -> list[str]:
    """The parts (counties, and people who are not recipients) that detection and scoring can split into.
    Called once a night before the parts run, it also does the night's city-wide step: it turns what the
    loads touched into people per rule (risk.scope.translate), and deletes what every part has seen."""
    from risk import detect as detection
    from risk import scope, touched
    from risk.rules import RULES

    with gateway.transaction(settings.database_url) as conn:
        found = detection.parts(conn)
        scope.translate(conn, RULES)
        touched.forget_seen(conn, found)
        return found


def detect(settings: Settings, as_of: str | None = None, county: str | None = None) -> dict:
    """Run the rules over the warehouse (or over one part of it, `county`: see `detection_parts`) and
    upsert alerts; return counts per rule (JSON-able).

    `as_of` bounds nothing in the facts (the warehouse holds what was loaded); it names the delivery day
    new alerts are first seen on: the newest loaded day up to `as_of`.
    """
    from risk import detect as detection

    with gateway.transaction(settings.database_url) as conn:
        day = _newest_day(conn, as_of)
        if day is None:
            return {"rules": {}, "alerts": 0, "raised": 0, "amount_at_risk": "0.00", "county": county}
        outcomes = detection.detect(conn, day, county=county)
    return {
        "as_of": day,
        "county": county,
        "rules": {o.rule: {"alerts": o.alerts, "raised": o.raised, "extended": o.extended, "withdrawn": o.withdrawn,
                           "amount_at_risk": f"{o.amount_cents / 100:.2f}", "seconds": round(o.seconds, 2),
                           "people": "all" if o.people < 0 else o.people,
                           "scope": "touched" if o.touched_only else "whole"}
                  for o in outcomes},
        "alerts": sum(o.alerts for o in outcomes),
        "raised": sum(o.raised for o in outcomes),
        "amount_at_risk": f"{sum(o.amount_cents for o in outcomes) / 100:.2f}",
    }


def _newest_day(conn: Connection, as_of: str | None) -> str | None:
    q = select(func.max(delivery.c.day))
    if as_of:
        q = q.where(delivery.c.day <= as_of)
    return conn.execute(q).scalar()


def train_model(settings: Settings, as_of: str | None = None) -> dict:
    """Train a behaviour model on the window ending at the newest loaded day (≤ as_of) and make it current."""
    from risk.scoring import registry

    with gateway.transaction(settings.database_url) as conn:
        day = _newest_day(conn, as_of)
        if day is None:
            raise InputError("仓库中还没有数据，无法训练 / nothing loaded yet: no data to train on")
        r = registry.train(conn, settings, date.fromisoformat(day), window_days=settings.window_days)
    return {"version": r.version, "rows": r.rows, "window": [str(r.window_start), str(r.window_end)],
            "features": r.features, "sha256": r.sha256}


def start_scoring(settings: Settings, as_of: str | None = None) -> dict:
    """Tonight's scoring plan: the current model (a first one is trained when none is registered), the day,
    and K, the number of anomaly alerts (the top share of the city's recipients). Clears what an earlier,
    unfinished night left in `score_part`. {"scored": 0, ...} when there is nothing to score."""
    from risk.db.tables import recipient, score_part
    from risk.scoring import nightly, registry

    with gateway.transaction(settings.database_url) as conn:
        day = _newest_day(conn, as_of)
        if day is None:
            return {"scored": 0}
        registered = registry.current(conn)
        trained = registered is None
        if registered is None:
            log.info("no behaviour model registered yet: training the first one")
            try:
                registered = registry.train(conn, settings, date.fromisoformat(day), window_days=settings.window_days)
            except registry.TooFewPeople as e:
                log.warning("behaviour scoring skipped: %s", e)
                return {"scored": 0, "skipped": str(e)}
        conn.execute(delete(score_part))
        people = conn.execute(select(func.count()).select_from(recipient)).scalar() or 0
    return {"as_of": day, "model_version": registered.version, "trained_first_model": trained,
            "k": nightly.candidates_per_part(people, settings.anomaly_budget)}


def _registered(conn: Connection, plan: dict):
    from risk.scoring import registry

    registered = registry.current(conn)
    if registered is None or registered.version != plan["model_version"]:
        raise InputError(f"模型已更换 / the current model is no longer {plan['model_version']}: score again")
    return registered


def score_county(settings: Settings, plan: dict, county: str | None = None) -> int:
    """Score one county's recipients (None: everyone) with the plan's model; returns how many."""
    from risk.scoring import nightly

    if not plan.get("model_version") or county == "-":  # "-": people who are not recipients are not scored
        return 0
    with gateway.transaction(settings.database_url) as conn:
        return nightly.score_county(conn, settings, _registered(conn, plan), date.fromisoformat(plan["as_of"]),
                                    county, plan["k"], settings.window_days)


def finish_scoring(settings: Settings, plan: dict) -> dict:
    """Rank the night's scores city-wide, record their distribution and drift, raise the anomaly alerts."""
    from risk.scoring import nightly

    if not plan.get("model_version"):
        return plan
    with gateway.transaction(settings.database_url) as conn:
        result = nightly.finish(conn, _registered(conn, plan), date.fromisoformat(plan["as_of"]),
                                settings.anomaly_budget)
    return {**result, "trained_first_model": plan["trained_first_model"]}


def score(settings: Settings, as_of: str | None = None) -> dict:
    """Score everyone's recent behaviour with the current model (a first model is trained when none is
    registered yet) and raise `anomaly` alerts for the most unusual people: the split night's three steps
    with the whole city as one part."""
    plan = start_scoring(settings, as_of)
    score_county(settings, plan, None)
    return finish_scoring(settings, plan)


def model_report(settings: Settings) -> dict:
    """The current model, drift of the nightly score distributions from its training, and the precision of
    decided anomaly alerts per model version."""
    from risk.scoring import report

    with gateway.transaction(settings.database_url) as conn:
        return report.model_report(conn, settings)


def escalate(settings: Settings) -> dict:
    """Move alerts nobody acknowledged within their SLA up one level (the daily escalation DAG calls this)."""
    from risk import workflow

    with gateway.transaction(settings.database_url) as conn:
        moved = workflow.escalate(conn, sla_days=settings.sla_days)
    return {"escalated": len(moved), "alerts": moved}


def notify(settings: Settings, outbox: str | Path | None = None) -> dict:
    """One digest per supervisor with the new and escalated alerts in their area, sent through Apprise, or
    written to `outbox` (else settings.outbox, RISK_OUTBOX) instead. A failing channel never fails the run."""
    from risk import notify as digests

    box = outbox or settings.outbox
    with gateway.transaction(settings.database_url) as conn:
        due = digests.build(conn, base_url=settings.base_url)
        counts = digests.deliver(conn, due, outbox=Path(box) if box else None)
    return {"digests": len(due), **counts}


def write_quality_report(settings: Settings) -> str:
    """Write the data-quality report (HTML) and return its path."""
    with gateway.transaction(settings.database_url) as conn:
        return str(quality.write_report(conn, settings.reports_dir))


@dataclass
class RunSummary:
    days: list[dict]
    detection: dict
    report: str
    seconds: float


def run(settings: Settings, landing: str | Path, until: str | None = None,
        progress: Progress | None = None, send_digests: bool = True) -> RunSummary:
    """`risk run`: every pending delivery day, oldest first, each in its own transaction; then the rules,
    behaviour scoring, the data-quality report and the supervisors' digests, as the nightly DAG does."""
    started = time.monotonic()
    say = progress or (lambda _m: None)
    prepare(settings)
    days = pending_days(settings, landing, until)
    say(f"待加载交付日 {len(days)} 个 / {len(days)} delivery days to load" + (f": {days[0]} … {days[-1]}" if days else ""))
    done = []
    for i, day in enumerate(days, 1):
        t = time.monotonic()
        summary = load_day(settings, landing, day)
        done.append(summary)
        read = sum(f["read"] for f in summary["files"])
        rejected = sum(f["rejected"] for f in summary["files"])
        say(f"[{i}/{len(days)}] {day}: {len(summary['files'])} 个文件 files, 读入 read {read:,}, "
            f"拒收 rejected {rejected:,} ({time.monotonic() - t:.1f} s)")
    say("检测中 / running the rules …")
    detection = detect(settings, until)
    say(f"预警 / alerts: {detection['alerts']:,}（新 new {detection['raised']:,}），"
        f"涉及金额 / amount at risk: ¥{detection['amount_at_risk']}")
    say("行为评分中 / scoring behaviour …")
    scoring = score(settings, until)
    if scoring.get("scored"):
        say(f"评分 / scored {scoring['scored']:,} 人 people with {scoring['model_version']}; "
            f"异常预警 / anomaly alerts raised: {scoring['anomaly_raised']}")
    detection["scoring"] = scoring
    report = write_quality_report(settings)
    if send_digests:
        sent = notify(settings)
        detection["digests"] = sent
        say(f"每日摘要 / digests: {sent['digests']} 位监督人员 supervisors（成功 sent {sent['sent']}，"
            f"失败 failed {sent['failed']}）")
    return RunSummary(days=done, detection=detection, report=report, seconds=time.monotonic() - started)
