"""Nightly scoring: everyone's recent behaviour through the current model, the night's score distribution
(and its drift from training), and `anomaly` alerts for the most unusual people in the city, each with an
explanation frozen at alert time."""
from __future__ import annotations

import json
import logging
import math
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, select

from risk.db.gateway import insert_frame
from risk.db.tables import alert, recipient, score, score_night
from risk.detect import alert_id
from risk.scoring.catalogue import CATALOGUE, describe
from risk.scoring.features import compute_features
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


def score_people(conn: Connection, settings: Settings, registered: Registered, as_of: date,
                 window_days: int = DEFAULT_WINDOW_DAYS, budget: float = DEFAULT_BUDGET) -> dict:
    model = load_model(settings, registered)
    features = compute_features(conn, as_of, window_days).sort_index()
    missing = [f for f in registered.features if f not in features.columns]
    if missing:
        raise ValueError(f"model {registered.version} needs features that are not computed: {missing}")
    X = features[registered.features]
    scores = model.score_samples(X)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), dtype=np.int64)
    rank[order] = np.arange(1, len(scores) + 1)
    explanations = model.explain(X, top=3)
    top_features = [json.dumps([{"feature": r.feature, "value": round(r.value, 4), "median": round(r.median, 4),
                                 "share": round(r.isolation_share, 3)} for r in reasons], ensure_ascii=False)
                    for reasons in explanations]
    frame = pd.DataFrame({"person_id": X.index.astype(str), "as_of": as_of, "model_version": registered.version,
                          "score": scores.astype(float), "rank": rank, "top_features": top_features})
    conn.execute(delete(score))
    insert_frame(conn, score, frame)
    drift = psi(registered.train_scores, scores)
    conn.execute(delete(score_night).where((score_night.c.as_of == as_of)
                                           & (score_night.c.model_version == registered.version)))
    conn.execute(score_night.insert().values(
        as_of=as_of, model_version=registered.version, people=len(scores),
        quantiles=json.dumps([float(q) for q in np.quantile(scores, QUANTILES)]), drift=drift))
    k = max(1, math.ceil(budget * len(scores))) if len(scores) else 0
    top = order[:k]
    raised = _anomaly_alerts(conn, X, scores, rank, explanations, top, registered.version, as_of)
    return {"model_version": registered.version, "scored": len(scores), "alerts_budget": k,
            "anomaly_raised": raised, "drift_psi": round(drift, 4)}


def _reason_words(reason, lang: str) -> str:
    try:
        return describe(reason.feature, reason.value, reason.median, lang=lang)
    except Exception:  # an unknown feature name still gets a plain sentence
        return f"{reason.feature} = {reason.value:g} (median {reason.median:g})"


def _anomaly_alerts(conn: Connection, X: pd.DataFrame, scores: np.ndarray, rank: np.ndarray, explanations,
                    top: np.ndarray, version: str, as_of: date) -> int:
    """One `anomaly` alert per person among tonight's most unusual; an open one is left as it is (its
    explanation was frozen when it was raised)."""
    people = X.index.astype(str)
    already = set(conn.execute(select(alert.c.person_id).where(alert.c.rule == ANOMALY)).scalars())
    wanted = [i for i in top if people[i] not in already]
    if not wanted:
        return 0
    villages = dict(conn.execute(select(recipient.c.person_id, recipient.c.village_code).where(
        recipient.c.person_id.in_([people[i] for i in wanted]))).all())
    rows = []
    for i in wanted:
        person = people[i]
        reasons = explanations[i]
        explanation = {
            "model_version": version, "as_of": as_of.isoformat(), "score": round(float(scores[i]), 4),
            "rank": int(rank[i]), "people_scored": len(scores),
            "reasons": [{"feature": r.feature, "value": r.value, "peer_value": r.median,
                         "share": round(r.isolation_share, 3),
                         "zh": _reason_words(r, "zh"), "en": _reason_words(r, "en"),
                         "title_zh": CATALOGUE[r.feature].zh if r.feature in CATALOGUE else r.feature,
                         "title_en": CATALOGUE[r.feature].en if r.feature in CATALOGUE else r.feature}
                        for r in reasons],
        }
        evidence = [{"fact": "feature", "id": name, "flagged": any(r.feature == name for r in reasons),
                     "value": float(X.iloc[i][name]), "detail": f"{as_of.isoformat()} window",
                     "file": None, "line": None, "delivery_day": as_of.isoformat()} for name in X.columns]
        rows.append({
            "alert_id": alert_id(ANOMALY, person), "rule": ANOMALY, "rule_version": 1, "person_id": person,
            "village_code": villages.get(person), "severity": "medium", "score": float(scores[i]),
            "amount_at_risk_cents": 0, "first_seen": as_of.isoformat(), "last_changed": as_of.isoformat(),
            "status": "new", "evidence": json.dumps(evidence, ensure_ascii=False, separators=(",", ":")),
            "evidence_count": len(evidence), "explanation": json.dumps(explanation, ensure_ascii=False),
            "raised_at": datetime.now(), "level": "village"})
    conn.execute(alert.insert(), rows)
    return len(rows)
