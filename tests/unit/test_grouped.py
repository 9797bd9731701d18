"""The production model: one forest per feature group, the highest group score wins."""
from __future__ import annotations

import numpy as np
import pandas as pd
import skops.io

from risk.scoring.grouped import GroupedBehaviourForest
from risk.scoring.model import TRUSTED_TYPES, load, save


def city_like(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "night_share": rng.beta(1, 30, n), "away_share": rng.beta(1, 20, n),
        "pharmacy_per_30d": rng.poisson(2, n).astype(float), "pharmacy_busiest_month": rng.poisson(1, n) + 1.0,
        "medical_per_30d": rng.poisson(3, n).astype(float), "withdrawal_per_30d": rng.poisson(2, n).astype(float),
        "payment_peer_ratio": rng.normal(1.0, 0.15, n), "age": rng.normal(68, 6, n),
        "unlisted": rng.normal(0, 1, n),
    })


def test_an_extreme_on_one_feature_among_many_ranks_at_the_top():
    X = city_like()
    X.loc[7, "payment_peer_ratio"] = 5.0  # a pension five times the peers'
    X.loc[11, "pharmacy_busiest_month"] = 35.0  # a pharmacy burst
    model = GroupedBehaviourForest(max_samples=1024, random_state=0).fit(X)
    top = set(np.argsort(-model.score_samples(X))[:5])
    assert {7, 11} <= top
    assert model.explain(X.iloc[[7]])[0][0].feature == "payment_peer_ratio"
    assert model.explain(X.iloc[[11]])[0][0].feature == "pharmacy_busiest_month"


def test_features_in_no_group_are_scored_too():
    model = GroupedBehaviourForest(random_state=0).fit(city_like())
    assert ("other", ["unlisted"]) in model.groups_
    assert sum(len(cols) for _, cols in model.groups_) == 9


def test_same_seed_same_scores_and_a_safe_roundtrip(tmp_path):
    X = city_like()
    a = GroupedBehaviourForest(random_state=3).fit(X)
    b = GroupedBehaviourForest(random_state=3).fit(X)
    assert np.array_equal(a.score_samples(X), b.score_samples(X))
    path = tmp_path / "grouped.skops"
    digest = save(a, path)
    assert skops.io.get_untrusted_types(file=path) == sorted(TRUSTED_TYPES)
    assert np.array_equal(load(path, digest).score_samples(X), a.score_samples(X))


def test_one_pass_gives_the_scores_and_the_reasons_of_everyone():
    X = city_like(1500)
    model = GroupedBehaviourForest(max_samples=256, random_state=1)
    trained = model.fit_score_samples(X)
    assert np.array_equal(trained, model.score_samples(X))
    scores, reasons = model.scores_and_reasons(X, top=3)
    assert np.array_equal(scores, trained)
    names = list(model.feature_names_in_)
    explained = model.explain(X, top=3)
    assert reasons.as_lists(names) == explained
    # a row explained by the payment group (one feature) has one reason; the slots after it are empty
    best = model.group_scores(X).argmax(axis=0)
    one = [k for k, (_, cols) in enumerate(model.groups_) if cols == ["payment_peer_ratio"]][0]
    rows = np.flatnonzero(best == one)
    assert len(rows) and all(len(explained[r]) == 1 for r in rows)
    assert (reasons.columns[rows, 1:] == -1).all() and np.isnan(reasons.values[rows, 1:]).all()
