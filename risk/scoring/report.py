"""Watching the model: the scores export of contract §5, drift of each night's scores from the training
distribution, and the precision of anomaly alerts that supervisors have decided, per model version."""
from __future__ import annotations

import io
import json

from sqlalchemy import Connection, select

from risk import spreadsheet
from risk.db.tables import alert, score, score_night
from risk.domain import PROVED, RuleCode, Status
from risk.scoring.registry import current, listing
from risk.settings import Settings

DRIFT_WATCH = 0.1  # population stability index: under 0.1 stable, 0.1-0.25 watch, over 0.25 retrain
DRIFT_ACT = 0.25
SCORE_COLUMNS = ["person_id", "score", "model_version", "top_features"]


def scores_csv(conn: Connection) -> str:
    buf = io.StringIO()
    w = spreadsheet.writer(buf, lineterminator="\n")  # no cell a live formula
    w.writerow(SCORE_COLUMNS)
    for r in conn.execute(select(score.c.person_id, score.c.score, score.c.model_version, score.c.top_features)
                          .order_by(score.c.rank)):
        w.writerow([r.person_id, f"{r.score:.6f}", r.model_version,
                    ";".join(f["feature"] for f in json.loads(r.top_features))])
    return buf.getvalue()


def drift_word(psi: float | None) -> str:
    if psi is None:
        return "unknown"
    return "stable" if psi < DRIFT_WATCH else ("watch" if psi < DRIFT_ACT else "retrain")


def model_report(conn: Connection, settings: Settings) -> dict:
    registered = current(conn)
    nights = [dict(r) for r in conn.execute(select(
        score_night.c.as_of, score_night.c.model_version, score_night.c.people, score_night.c.drift)
        .order_by(score_night.c.as_of)).mappings()]
    for n in nights:
        n["as_of"] = str(n["as_of"])
        n["drift_word"] = drift_word(n["drift"])
    decided: dict[str, dict[str, int]] = {}
    for status, explanation in conn.execute(select(alert.c.status, alert.c.explanation).where(
            alert.c.rule == RuleCode.ANOMALY)):
        version = json.loads(explanation or "{}").get("model_version", "?")
        counts = decided.setdefault(version, {"alerts": 0, "confirmed": 0, "dismissed": 0})
        counts["alerts"] += 1
        if status in PROVED:
            counts["confirmed"] += 1
        elif status == Status.DISMISSED:
            counts["dismissed"] += 1
    precision = {v: {**c, "precision": (c["confirmed"] / (c["confirmed"] + c["dismissed"])
                                        if c["confirmed"] + c["dismissed"] else None)}
                 for v, c in decided.items()}
    return {
        "current_model": None if registered is None else {
            "version": registered.version, "window": [str(registered.window_start), str(registered.window_end)],
            "rows": registered.rows, "features": registered.features, "params": registered.params},
        "models": [{**m, "trained_at": str(m["trained_at"]), "window_start": str(m["window_start"]),
                    "window_end": str(m["window_end"])} for m in listing(conn)],
        "nights": nights[-30:],
        "latest_drift": nights[-1] if nights else None,
        "anomaly_precision_by_model": precision,
    }
