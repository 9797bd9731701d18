"""The nightly steps, in order, as plain functions of (settings, delivery day).

`risk run` and the Airflow tasks call exactly these; they hand each other keys (a landing folder, a
delivery day), never data: the warehouse is the contract between steps.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, delete, func, select

from risk import errors, memory, privacy, worker
from risk.db import gateway
from risk.db.tables import FACT_TABLES, delivery
from risk.detection.scope import NO_COUNTY
from risk.errors import InputError
from risk.ingest import quality
from risk.ingest.delivery import BULK_SOURCES, load_days, pending_days
from risk.ingest.delivery import load_day as load_day  # the DAG and the tests load single days
from risk.ingest.delivery import refresh_statistics as refresh_statistics  # the DAG, after its days
from risk.progress import Step
from risk.settings import Settings

log = logging.getLogger(__name__)
privacy.install()  # every process that runs these steps (the CLI, an Airflow task) masks IDs in its logs

Progress = Callable[[str], None]


def prepare(settings: Settings) -> None:
    """Create or migrate the warehouse to the newest schema; build any index a killed bulk load left out."""
    gateway.migrate(settings.database_url)
    built = gateway.ensure_indexes(settings.database_url, [FACT_TABLES[name] for name in BULK_SOURCES])
    if built:
        log.warning("indexes missing (a load stopped before it built them again) were built: %s", ", ".join(built))


def detection_parts(settings: Settings, groups: int | None = None) -> list[list[str]]:
    """The parts that detection and scoring split into: the counties (and NO_COUNTY, the people who are
    not recipients) in at most `groups` groups (else settings.parts) of about as many recipients each (see
    risk.detection.scope.groups). Called once a night before the parts run, it also does the night's city-wide
    step: it turns what the loads touched into people per rule (risk.detection.scope.translate), and deletes what
    every part has seen."""
    from risk.detection import scope, touched
    from risk.detection.registry import RULES

    with gateway.transaction(settings.database_url) as conn:
        found = scope.groups(conn, groups or settings.parts)
        scope.translate(conn, RULES)
        touched.forget_seen(conn, [county for part in found for county in part])
        return [list(part) for part in found]


def detect(settings: Settings, as_of: str | None = None, part: list[str] | None = None) -> dict:
    """Run the rules over the warehouse (or over one part of it, a list of counties: see
    `detection_parts`) and upsert alerts; return counts per rule (JSON-able).

    `as_of` bounds nothing in the facts (the warehouse holds what was loaded); it names the delivery day
    new alerts are first seen on: the newest loaded day up to `as_of`.
    """
    from risk.detection import run as detection

    with gateway.transaction(settings.database_url) as conn:
        day = _newest_day(conn, as_of)
        if day is None:
            return {"rules": {}, "alerts": 0, "raised": 0, "amount_at_risk": "0.00", "part": part}
        outcomes = detection.detect(conn, day, part=part)
    return {
        "as_of": day,
        "part": part,
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
    """Train a behaviour model on the window ending at the newest loaded day (≤ as_of) and make it current.
    The features are read without the write lock and the forests fitted outside any transaction; only
    registering the model writes."""
    from risk.scoring import registry
    from risk.scoring.features import compute_features

    with gateway.reading(settings.database_url) as conn:
        day = _newest_day(conn, as_of)
        if day is None:
            raise InputError("仓库中还没有数据，无法训练 / nothing loaded yet: no data to train on")
        features = compute_features(conn, date.fromisoformat(day), settings.window_days)
    forest, scores = registry.fit(features)
    with gateway.transaction(settings.database_url) as conn:
        r = registry.register(conn, settings, forest, features, scores, date.fromisoformat(day), settings.window_days)
    return {"version": r.version, "rows": r.rows, "window": [str(r.window_start), str(r.window_end)],
            "features": r.features, "sha256": r.sha256}


def start_scoring(settings: Settings, as_of: str | None = None, features: pd.DataFrame | None = None,
                  for_parts: bool = False) -> dict:
    """Tonight's scoring plan: the current model (a first one is trained when none is registered, on
    `features` when given: the whole city's of tonight), the day, and K, the number of anomaly alerts (the
    top share of the city's recipients). Clears what an earlier, unfinished night left in `score_part`.
    The current model is loaded here from the warehouse (kept by this process for its scoring): when it
    cannot be (its bytes fail the hash check or skops cannot build them, or a model registered before
    0015 has lost its file), a new one is trained in its place with a warning, and the plan says why
    (`retrained_because`), so that the night's scoring and digests go on. A model registered before 0015
    that loads from its file is stored in the warehouse.
    `for_parts`: the night is scored in parts (the DAG): the city's features are computed here, once, and
    shared with them (risk.scoring.night_features; the plan names the file). {"scored": 0, ...} when there
    is nothing to score."""
    from risk.db.tables import recipient, score_part
    from risk.errors import ModelFileError
    from risk.scoring import night_features, nightly, registry
    from risk.scoring.features import compute_features, home_counties

    homes = None
    retrained_because = None
    with gateway.reading(settings.database_url) as conn:
        day = _newest_day(conn, as_of)
        if day is None:
            return {"scored": 0}
        registered = registry.current(conn)
        first = registered is None
        if registered is not None:
            try:
                registry.load_model(settings, registered, conn)
            except (ModelFileError, OSError) as e:
                retrained_because = str(e) if isinstance(e, ModelFileError) else f"{type(e).__name__}: {e.strerror}"
                log.warning("当前模型无法加载，改为训练新模型 / the current model %s cannot be loaded, a new one is "
                            "trained in its place: %s", registered.version, e)
                registered = None
        if (registered is None or for_parts) and features is None:
            features = compute_features(conn, date.fromisoformat(day), settings.window_days)
        if for_parts:
            homes = home_counties(conn)
    trained = registered is None
    if registered is None:
        if first:
            log.info("no behaviour model registered yet: training the first one")
        assert features is not None
        try:
            forest, scores = registry.fit(features)
        except errors.TooFewPeople as e:
            log.warning("behaviour scoring skipped: %s", e)
            return {"scored": 0, "skipped": str(e), "retrained_because": retrained_because}
        with gateway.transaction(settings.database_url) as conn:
            registered = registry.register(conn, settings, forest, features, scores, date.fromisoformat(day),
                                           settings.window_days)
    with gateway.transaction(settings.database_url) as conn:
        conn.execute(delete(score_part))
        people = conn.execute(select(func.count()).select_from(recipient)).scalar() or 0
        if not trained:
            registry.keep_in_warehouse(conn, settings, registered)
    plan = {"as_of": day, "model_version": registered.version, "trained_first_model": trained and first,
            "retrained_because": retrained_because,
            "k": nightly.candidates_per_part(people, settings.anomaly_budget)}
    if for_parts:
        assert features is not None and homes is not None
        plan["features"] = night_features.share(settings, features, homes, date.fromisoformat(day))
    return plan


def _registered(conn: Connection, plan: dict):
    from risk.scoring import registry

    registered = registry.current(conn)
    if registered is None or registered.version != plan["model_version"]:
        raise InputError(f"模型已更换 / the current model is no longer {plan['model_version']}: score again")
    return registered


def score_counties(settings: Settings, plan: dict, counties: list[str] | None = None,
                   features: pd.DataFrame | None = None) -> int:
    """Score the recipients of a part's counties (None: everyone) with the plan's model, loaded once for
    them all; returns how many. The features: given, else the rows of the city's that the plan shares
    (see start_scoring), else computed here, read without the write lock; writing the scores takes it.
    The model comes from the warehouse, loaded before the write lock is taken (a process keeps it for its
    next parts). NO_COUNTY (people who are not recipients) has no one to score."""
    from risk.scoring import night_features, nightly, registry
    from risk.scoring.features import compute_features

    if counties is not None:
        counties = [c for c in counties if c != NO_COUNTY]
    if not plan.get("model_version") or counties == []:
        return 0
    as_of = date.fromisoformat(plan["as_of"])
    if features is None and plan.get("features"):
        features = night_features.read(settings, plan["features"], counties)
    with gateway.reading(settings.database_url) as conn:
        registry.load_model(settings, _registered(conn, plan), conn)
        if features is None:
            features = compute_features(conn, as_of, settings.window_days, counties=counties)
    with gateway.transaction(settings.database_url) as conn:
        return nightly.score_counties(conn, settings, _registered(conn, plan), as_of, counties, plan["k"],
                                      settings.window_days, features=features)


def finish_scoring(settings: Settings, plan: dict) -> dict:
    """Rank the night's scores city-wide, record their distribution and drift, raise the anomaly alerts;
    then the features the plan shared with the parts are deleted."""
    from risk.scoring import night_features, nightly

    if not plan.get("model_version"):
        return plan
    with gateway.transaction(settings.database_url) as conn:
        result = nightly.finish(conn, _registered(conn, plan), date.fromisoformat(plan["as_of"]),
                                settings.anomaly_budget)
    if plan.get("features"):
        night_features.forget(settings)
    return {**result, "trained_first_model": plan["trained_first_model"],
            "retrained_because": plan.get("retrained_because")}


def city_features(database_url: str, as_of: str | None, window_days: int) -> pd.DataFrame | None:
    """The city's behaviour features on the window ending at the newest loaded day (≤ as_of), read without
    the write lock; None when nothing is loaded. `risk run` computes them in a worker process while the
    rules run (they read facts only, never alerts)."""
    from risk.scoring.features import compute_features

    with gateway.reading(database_url) as conn:
        day = _newest_day(conn, as_of)
        return compute_features(conn, date.fromisoformat(day), window_days) if day else None


def score(settings: Settings, as_of: str | None = None, features: pd.DataFrame | None = None) -> dict:
    """Score everyone's recent behaviour with the current model (a first model is trained when none is
    registered yet) and raise `anomaly` alerts for the most unusual people: the split night's three steps
    with the whole city as one part. The city's features (given, else computed here) serve all three,
    also on the night that trains the first model on them."""
    if features is None:
        features = city_features(settings.database_url, as_of, settings.window_days)
    plan = start_scoring(settings, as_of, features=features)
    score_counties(settings, plan, None, features=features)
    return finish_scoring(settings, plan)


def model_report(settings: Settings) -> dict:
    """The current model, drift of the nightly score distributions from its training, and the precision of
    decided anomaly alerts per model version."""
    from risk.scoring import report

    with gateway.transaction(settings.database_url) as conn:
        return report.model_report(conn, settings)


def escalate(settings: Settings) -> dict:
    """Move alerts nobody acknowledged within their SLA up one level (the daily escalation DAG calls this)."""
    from risk.alerts import lifecycle as workflow

    with gateway.transaction(settings.database_url) as conn:
        moved = workflow.escalate(conn, sla_days=settings.sla_days)
    return {"escalated": len(moved), "alerts": moved}


def notify(settings: Settings, outbox: str | Path | None = None) -> dict:
    """One digest per supervisor with the new and escalated alerts in their area, sent through Apprise, or
    written to `outbox` (else settings.outbox, RISK_OUTBOX) instead. A failing channel never fails the run.
    The digests are decided and recorded in one short transaction, then each is sent outside any and
    marked in its own (risk.alerts.digests): a rerun after a stopped run sends only what is left, along with any
    new digests. `resent`: messages a stopped run had in flight, sent again (at-least-once)."""
    from datetime import datetime

    from risk.alerts import digests

    box = outbox or settings.outbox
    folder = Path(box) if box else None
    with gateway.transaction(settings.database_url) as conn:
        decided_at = datetime.now()
        due = digests.build(conn, base_url=settings.base_url)
        nowhere = digests.record(conn, due, outbox=folder, decided_at=decided_at)
    counts = digests.deliver(settings.database_url, outbox=folder)
    return {"digests": len(due), "sent": counts["sent"], "failed": counts["failed"] + nowhere,
            "resent": counts["resent"]}


def write_quality_report(settings: Settings) -> str:
    """Write the data-quality report (HTML) and return its path."""
    with gateway.transaction(settings.database_url) as conn:
        return str(quality.write_report(conn, settings.reports_dir))


FEATURES_BESIDE = 50_000  # recipients from which the features are computed beside the rules: a worker
# process takes a second or two to start, more than a small city's features take


FEATURES_BYTES_PER_PERSON = 1_600  # the features' process at a million people: 1,525 MiB (benchmarks.scoring)
WORKER_BYTES = 400 * 2**20  # a worker process before it holds anyone: the interpreter and the libraries


def _features_beside(settings: Settings) -> bool:
    """Whether tonight's features are computed in a worker process while the rules run: for a city big
    enough to pay the process's start, on a night whose rules all run on the people the new facts touch,
    or else (the first night, a backfill, a new rule: some rule runs whole) when this process, a worker
    and the features (`FEATURES_BYTES_PER_PERSON`) fit in the night's memory budget (settings.memory_mib).
    A whole detection leaves this process about as it found it: SQLite sorts what outgrows its cache in
    temporary files (gateway), PostgreSQL in its own processes."""
    import psutil

    from risk.db.tables import recipient
    from risk.detection import scope
    from risk.detection.registry import RULES

    with gateway.reading(settings.database_url) as conn:
        people = gateway.estimated_rows(conn, recipient)
        if people < FEATURES_BESIDE:
            return False
        night = scope.Night.plan(conn, RULES, None)
    if all(since is not None for since in night.since.values()):
        return True
    needed = psutil.Process().memory_info().rss + WORKER_BYTES + people * FEATURES_BYTES_PER_PERSON
    return needed <= settings.memory_mib * 2**20


@dataclass
class RunSummary:
    days: list[dict]
    detection: dict
    report: str
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step: load, detect, score, report, notify


def run(settings: Settings, landing: str | Path, until: str | None = None,
        progress: Progress | None = None, send_digests: bool = True, wait: float = 0) -> RunSummary:
    """`risk run`: every pending delivery day, oldest first, each in its own transaction; then the rules,
    behaviour scoring, the data-quality report and the supervisors' digests, as the nightly DAG does.
    One run at a time on a warehouse: another run holding it is waited for up to `wait` seconds, then
    `errors.WarehouseBusy` says who holds it since when (risk.runlock)."""
    from risk import runlock

    with runlock.held(settings.database_url, "risk run", wait=wait, say=progress or (lambda _m: None)):
        return _run(settings, landing, until, progress, send_digests)


def _run(settings: Settings, landing: str | Path, until: str | None, progress: Progress | None,
         send_digests: bool) -> RunSummary:
    started = time.monotonic()
    say = progress or (lambda _m: None)
    steps: dict[str, float] = {}
    clock = [time.monotonic()]

    def lap(step: str) -> None:
        memory.release()  # each step starts from what the night holds, not from the last one's high-water mark
        now = time.monotonic()
        steps[step] = round(now - clock[0], 3)
        clock[0] = now

    prepare(settings)
    days = pending_days(settings, landing, until)
    lap("prepare")
    say(Step(f"待加载交付日 {len(days)} 个 / {len(days)} delivery days to load"
             + (f": {days[0]} … {days[-1]}" if days else ""), 0, len(days)))
    done = load_days(settings, landing, days, progress=say)
    lap("load")
    say("检测中 / running the rules …")
    with worker.Worker() as beside:  # the second core computes a big city's behaviour features meanwhile
        features = beside.submit(city_features, settings.database_url, until, settings.window_days) \
            if _features_beside(settings) else None
        detection = detect(settings, until)
        lap("detect")
        say(f"预警 / alerts: {detection['alerts']:,}（新 new {detection['raised']:,}），"
            f"涉及金额 / amount at risk: ¥{detection['amount_at_risk']}")
        say("行为评分中 / scoring behaviour …")
        scoring = score(settings, until, features=worker.outcome(features, "the behaviour features"))
    lap("score")
    if scoring.get("scored"):
        say(f"评分 / scored {scoring['scored']:,} 人 people with {scoring['model_version']}; "
            f"异常预警 / anomaly alerts raised: {scoring['anomaly_raised']}")
    detection["scoring"] = scoring
    report = write_quality_report(settings)
    lap("report")
    if send_digests:
        sent = notify(settings)
        lap("notify")
        detection["digests"] = sent
        say(f"每日摘要 / digests: {sent['digests']} 位监督人员 supervisors（成功 sent {sent['sent']}，"
            f"失败 failed {sent['failed']}）")
    return RunSummary(days=done, detection=detection, report=report, seconds=time.monotonic() - started,
                      steps=steps)
