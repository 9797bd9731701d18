"""Nightly scoring: everyone's recent behaviour through the current model, the night's score distribution
(and its drift from training), and `anomaly` alerts for the most unusual people in the city, each with an
explanation frozen at alert time."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, select

from risk.db.gateway import insert_frame
from risk.db.tables import alert, recipient, score, score_night, score_part
from risk.detect import alert_id
from risk.scoring.catalogue import CATALOGUE, describe
from risk.scoring.features import compute_features
from risk.scoring.model import Reason
from risk.scoring.registry import DEFAULT_WINDOW_DAYS, QUANTILES, Registered, load_model
from risk.settings import Settings

log = logging.getLogger(__name__)

ANOMALY = "anomaly"
DEFAULT_BUDGET = 0.005  # the top 0.5% of scored people get an alert


def psi(train_quantiles: list[float], scores: np.ndarray, bins: int = 10) -> float:
    """Population stability index of tonight's scores against the training scores: the training scores'
    deciles make the bins (each held a tenth of training), tonight's shares are compared with that."""
    edges = np.unique(np.quantile(np.asarray(train_quantiles), np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    counts, _ = np.histogram(scores, bins=edges)
    actual = counts / max(len(scores), 1)
    expected = np.full(len(actual), 1 / len(actual))
    eps = 1e-6
    return float(np.sum((actual - expected) * np.log((actual + eps) / (expected + eps))))


def candidates_per_part(people: int, budget: float) -> int:
    """K, the number of anomaly alerts tonight: the top `budget` share of the city's scored people."""
    return max(1, math.ceil(budget * people)) if people else 0


def score_county(conn: Connection, settings: Settings, registered: Registered, as_of: date, county: str | None,
                 k: int, window_days: int = DEFAULT_WINDOW_DAYS) -> int:
    """Score the recipients of one county (None: the whole city) into `score_part`; the part's K most
    unusual also keep their reasons and feature values. Returns how many people were scored."""
    model = load_model(settings, registered)
    features = compute_features(conn, as_of, window_days, county=county).sort_index()
    missing = [f for f in registered.features if f not in features.columns]
    if missing:
        raise ValueError(f"model {registered.version} needs features that are not computed: {missing}")
    X = features[registered.features]
    if X.empty:
        return 0
    scores = model.score_samples(X)
    explanations = model.explain(X, top=3)
    order = np.argsort(-scores, kind="stable")
    candidate = np.zeros(len(scores), dtype=bool)
    candidate[order[:k]] = True
    rows = pd.DataFrame({
        "person_id": X.index.astype(str), "as_of": as_of, "model_version": registered.version,
        "score": scores.astype(float),
        "top_features": [_top_features(reasons) for reasons in explanations],
        "reasons": [json.dumps([asdict(r) for r in reasons]) if c else None
                    for reasons, c in zip(explanations, candidate, strict=True)],
        "features": [json.dumps({n: float(v) for n, v in X.iloc[i].items()}) if candidate[i] else None
                     for i in range(len(X))],
    })
    for chunk in range(0, len(rows), 10_000):  # a person who moved county was scored under the old one
        conn.execute(delete(score_part).where(score_part.c.person_id.in_(list(rows["person_id"][chunk:chunk + 10_000]))))
    insert_frame(conn, score_part, rows)
    return len(rows)


def _top_features(reasons) -> str:
    return json.dumps([{"feature": r.feature, "value": round(r.value, 4), "median": round(r.median, 4),
                        "share": round(r.isolation_share, 3)} for r in reasons], ensure_ascii=False)


def finish(conn: Connection, registered: Registered, as_of: date, budget: float = DEFAULT_BUDGET) -> dict:
    """Rank tonight's scores city-wide into `score`, record the night's distribution and its drift, raise
    `anomaly` alerts for the city's K most unusual, and clear `score_part`."""
    mine = (score_part.c.as_of == as_of) & (score_part.c.model_version == registered.version)
    parts = pd.DataFrame(conn.execute(select(score_part.c.person_id, score_part.c.score, score_part.c.top_features)
                                      .where(mine)).all(), columns=["person_id", "score", "top_features"])
    parts = parts.sort_values("person_id", kind="stable").reset_index(drop=True)
    scores = parts["score"].to_numpy(dtype=float)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(1, len(scores) + 1)
    frame = pd.DataFrame({"person_id": parts["person_id"].astype(str), "as_of": as_of,
                          "model_version": registered.version, "score": scores, "rank": rank,
                          "top_features": parts["top_features"]})
    conn.execute(delete(score))
    insert_frame(conn, score, frame)
    drift = psi(registered.train_scores, scores) if len(scores) else 0.0
    conn.execute(delete(score_night).where((score_night.c.as_of == as_of)
                                           & (score_night.c.model_version == registered.version)))
    if len(scores):
        conn.execute(score_night.insert().values(
            as_of=as_of, model_version=registered.version, people=len(scores),
            quantiles=json.dumps([float(q) for q in np.quantile(scores, QUANTILES)]), drift=drift))
    k = candidates_per_part(len(scores), budget)
    top = {str(parts["person_id"][i]): int(rank[i]) for i in order[:k]}
    candidates = conn.execute(select(score_part.c.person_id, score_part.c.score, score_part.c.reasons,
                                     score_part.c.features).where(mine, score_part.c.person_id.in_(list(top)))).all()
    raised = _anomaly_alerts(conn, [(c.person_id, c.score, top[c.person_id], json.loads(c.reasons),
                                     json.loads(c.features)) for c in sorted(candidates, key=lambda c: top[c.person_id])],
                             len(scores), registered.version, as_of)
    conn.execute(delete(score_part))
    return {"model_version": registered.version, "scored": len(scores), "alerts_budget": k,
            "anomaly_raised": raised, "drift_psi": round(drift, 4)}


def _reason_words(reason, lang: str) -> str:
    try:
        return describe(reason.feature, reason.value, reason.median, lang=lang)
    except Exception:  # an unknown feature name still gets a plain sentence
        return f"{reason.feature} = {reason.value:g} (median {reason.median:g})"


def _anomaly_alerts(conn: Connection, top: list[tuple[str, float, int, list[dict], dict[str, float]]],
                    people_scored: int, version: str, as_of: date) -> int:
    """One `anomaly` alert per person among tonight's most unusual (person, score, rank, reasons, feature
    values); an open one is left as it is (its explanation was frozen when it was raised)."""
    already = set(conn.execute(select(alert.c.person_id).where(alert.c.rule == ANOMALY)).scalars())
    wanted = [t for t in top if t[0] not in already]
    if not wanted:
        return 0
    villages = dict(conn.execute(select(recipient.c.person_id, recipient.c.village_code).where(
        recipient.c.person_id.in_([t[0] for t in wanted]))).all())
    rows = []
    for person, person_score, person_rank, reason_rows, values in wanted:
        reasons = [Reason(**r) for r in reason_rows]
        explanation = {
            "model_version": version, "as_of": as_of.isoformat(), "score": round(float(person_score), 4),
            "rank": person_rank, "people_scored": people_scored,
            "reasons": [{"feature": r.feature, "value": r.value, "peer_value": r.median,
                         "share": round(r.isolation_share, 3),
                         "zh": _reason_words(r, "zh"), "en": _reason_words(r, "en"),
                         "title_zh": CATALOGUE[r.feature].zh if r.feature in CATALOGUE else r.feature,
                         "title_en": CATALOGUE[r.feature].en if r.feature in CATALOGUE else r.feature}
                        for r in reasons],
        }
        evidence = [{"fact": "feature", "id": name, "flagged": any(r.feature == name for r in reasons),
                     "value": float(value), "detail": f"{as_of.isoformat()} window",
                     "file": None, "line": None, "delivery_day": as_of.isoformat()} for name, value in values.items()]
        rows.append({
            "alert_id": alert_id(ANOMALY, person), "rule": ANOMALY, "rule_version": 1, "person_id": person,
            "village_code": villages.get(person), "severity": "medium", "score": float(person_score),
            "amount_at_risk_cents": 0, "first_seen": as_of.isoformat(), "last_changed": as_of.isoformat(),
            "status": "new", "evidence": json.dumps(evidence, ensure_ascii=False, separators=(",", ":")),
            "evidence_count": len(evidence), "explanation": json.dumps(explanation, ensure_ascii=False),
            "raised_at": datetime.now(), "level": "village"})
    conn.execute(alert.insert(), rows)
    return len(rows)
