"""Nightly scoring: everyone's recent behaviour through the current model, the night's score distribution
(and its drift from training), and `anomaly` alerts for the most unusual people in the city, each with an
explanation frozen at alert time."""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete, func, insert, select

from risk.alerts.raising import Existing, Found, raise_alerts
from risk.db.gateway import in_code_point_order, insert_frame
from risk.db.tables import recipient, score, score_night, score_part
from risk.detection.registry import ANOMALY
from risk.scoring.catalogue import CATALOGUE, describe
from risk.scoring.features import compute_features, part_members
from risk.scoring.reasons import Reason, TopReasons
from risk.scoring.registry import DEFAULT_WINDOW_DAYS, QUANTILES, Registered, load_model
from risk.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 0.005  # the top 0.5% of scored people get an alert
ROWS_AT_ONCE = 100_000  # people per write into score_part: the JSON of a million never sits in memory at once


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


def score_counties(conn: Connection, settings: Settings, registered: Registered, as_of: date,
                   counties: Sequence[str] | None, k: int, window_days: int = DEFAULT_WINDOW_DAYS,
                   features: pd.DataFrame | None = None) -> int:
    """Score the recipients of a part's counties (None: the whole city) into `score_part` with one load of
    the model; the part's K most unusual also keep their reasons and feature values. Returns how many
    people were scored.

    Everyone gets a score and `top_features` (the scores export of contract §5), computed as arrays
    (`top_reasons`) and written a slice of people at a time; only the part's K candidates get `Reason`
    objects and the JSON an anomaly alert freezes."""
    model = load_model(settings, registered)
    if features is None:
        features = compute_features(conn, as_of, window_days, counties=counties)
    features = features.sort_index()
    missing = [f for f in registered.features if f not in features.columns]
    if missing:
        raise ValueError(f"model {registered.version} needs features that are not computed: {missing}")
    X = features[registered.features]
    del features
    if X.empty:
        return 0
    scores, reasons = model.scores_and_reasons(X, top=3)
    names = [str(name) for name in model.feature_names_in_]
    candidates = np.argsort(-scores, kind="stable")[:k]
    why = dict(zip(candidates.tolist(), reasons.take(candidates).as_lists(names), strict=True))
    people = X.index.astype(str)
    # the part's earlier rows, if any (a retried task; a person who moved county was scored under the old one)
    conn.execute(delete(score_part).where(part_members(counties)(score_part.c.person_id)))
    for first in range(0, len(X), ROWS_AT_ONCE):
        rows = np.arange(first, min(first + ROWS_AT_ONCE, len(X)))
        part = pd.DataFrame({
            "person_id": people[rows], "as_of": as_of, "model_version": registered.version,
            "score": scores[rows].astype(float),
            "top_features": _top_features(reasons.take(rows), names),
            "reasons": [json.dumps([asdict(r) for r in why[i]]) if i in why else None for i in rows.tolist()],
            "features": [json.dumps({n: float(v) for n, v in X.iloc[i].items()}) if i in why else None
                         for i in rows.tolist()],
        })
        insert_frame(conn, score_part, part)
    return len(X)


def _top_features(reasons: TopReasons, names: list[str]) -> list[str]:
    """Each row's `top_features` JSON: its reasons' feature, value and median (4 decimals) and isolation
    share (3 decimals), as json.dumps writes them; a list comprehension per reason slot over plain floats,
    no object per reason."""
    quoted = [json.dumps(name, ensure_ascii=False) for name in names]
    slots = [
        [f'{{"feature": {quoted[c]}, "value": {round(v, 4)!r}, "median": {round(m, 4)!r}, "share": {round(s, 3)!r}}}'
         if c >= 0 else "" for c, v, m, s in zip(reasons.columns[:, j].tolist(), reasons.values[:, j].tolist(),
                                                 reasons.medians[:, j].tolist(),
                                                 reasons.isolation_share[:, j].tolist(), strict=True)]
        for j in range(reasons.columns.shape[1])]
    return ["[" + ", ".join(slot for slot in row if slot) + "]" for row in zip(*slots, strict=True)]


def finish(conn: Connection, registered: Registered, as_of: date, budget: float = DEFAULT_BUDGET) -> dict:
    """Rank tonight's scores city-wide into `score`, record the night's distribution and its drift, raise
    `anomaly` alerts for the city's K most unusual, and clear `score_part`.

    The ranking is one INSERT … SELECT in the warehouse: rank 1 is the highest score, equal scores in
    person_id order (code points, as Python sorts)."""
    part = score_part.c
    mine = (part.as_of == as_of) & (part.model_version == registered.version)
    scores = np.fromiter(conn.execute(select(part.score).where(mine)).scalars(), dtype=float)
    conn.execute(delete(score))
    rank = func.row_number().over(order_by=(part.score.desc(), in_code_point_order(conn, part.person_id)))
    conn.execute(insert(score).from_select(
        ["person_id", "as_of", "model_version", "score", "rank", "top_features"],
        select(part.person_id, part.as_of, part.model_version, part.score, rank, part.top_features).where(mine)))
    drift = psi(registered.train_scores, scores) if len(scores) else 0.0
    conn.execute(delete(score_night).where((score_night.c.as_of == as_of)
                                           & (score_night.c.model_version == registered.version)))
    if len(scores):
        conn.execute(score_night.insert().values(
            as_of=as_of, model_version=registered.version, people=len(scores),
            quantiles=json.dumps([float(q) for q in np.quantile(scores, QUANTILES)]), drift=drift))
    k = candidates_per_part(len(scores), budget)
    top = conn.execute(select(score.c.person_id, score.c.score, score.c.rank, part.reasons, part.features,
                              recipient.c.village_code)
                       .select_from(score.join(score_part, part.person_id == score.c.person_id)
                                    .outerjoin(recipient, recipient.c.person_id == score.c.person_id))
                       .where(score.c.rank <= k, mine).order_by(score.c.rank)).all()
    found = {t.person_id: _anomaly(t.score, t.rank, json.loads(t.reasons), json.loads(t.features), t.village_code,
                                   len(scores), registered.version, as_of) for t in top}
    # an open anomaly alert is left as it is: its explanation was frozen when it was raised
    raised = raise_alerts(conn, ANOMALY, found, as_of.isoformat(), existing=Existing.KEEP).raised
    conn.execute(delete(score_part))
    return {"model_version": registered.version, "scored": len(scores), "alerts_budget": k,
            "anomaly_raised": raised, "drift_psi": round(drift, 4)}


def _reason_words(reason, lang: str) -> str:
    """The reason in words; a feature the catalogue does not know (a model trained on features since
    renamed) still gets a plain sentence, with a warning. Any other error is a bug and is raised."""
    try:
        return describe(reason.feature, reason.value, reason.median, lang=lang)
    except KeyError:
        log.warning("feature %r has no words in the catalogue: shown by its name", reason.feature)
        return f"{reason.feature} = {reason.value:g} (median {reason.median:g})"


def _anomaly(person_score: float, person_rank: int, reason_rows: list[dict], values: dict[str, float],
             village: str | None, people_scored: int, version: str, as_of: date) -> Found:
    """A person's anomaly alert as tonight's scores make it: the feature values as evidence, and the
    explanation frozen at alert time (model, rank, and the reasons in words)."""
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
    return Found(evidence=json.dumps(evidence, ensure_ascii=False, separators=(",", ":")),
                 evidence_count=len(evidence), amount_cents=0, village=village, score=float(person_score),
                 explanation=json.dumps(explanation, ensure_ascii=False))
