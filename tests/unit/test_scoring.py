"""Nightly behaviour scoring on a small generated city: scores for everyone, a registered model whose
hash guards its file, anomaly alerts with explanations a supervisor can read, and the planted outliers
near the top."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, text

from risk import pipeline
from risk.db import gateway
from risk.db.tables import alert, delivery, model, recipient, score, score_night, score_part
from risk.detection import evaluate
from risk.errors import ModelFileError
from risk.scoring import nightly, registry
from risk.scoring.features import compute_features
from risk.scoring.model import loads
from risk.scoring.report import scores_csv
from risk.settings import Settings
from risk.synth import generate


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Settings, Path]:
    out = tmp_path_factory.mktemp("scored-city")
    generate(out, people=3000, months=6, seed=5)
    settings = Settings(database_url=f"sqlite:///{out / 'w.db'}", var_dir=out / "var")
    pipeline.run(settings, out / "landing")
    return settings, out


def test_everyone_is_scored_by_the_registered_model(city):
    settings, _ = city
    with gateway.transaction(settings.database_url) as conn:
        people = conn.execute(select(func.count()).select_from(recipient)).scalar()
        scored = conn.execute(select(func.count()).select_from(score)).scalar()
        registered = registry.current(conn)
        versions = set(conn.execute(select(score.c.model_version)).scalars())
        night = conn.execute(select(score_night)).first()
    assert scored == people > 0
    assert registered is not None and versions == {registered.version}
    assert len(registered.sha256) == 64 and registered.rows == people
    assert night.people == people and night.drift is not None


def test_anomaly_alerts_are_the_top_half_percent_with_explanations(city):
    settings, _ = city
    with gateway.transaction(settings.database_url) as conn:
        people = conn.execute(select(func.count()).select_from(score)).scalar()
        alerts = conn.execute(select(alert).where(alert.c.rule == "anomaly")).all()
        top = set(conn.execute(select(score.c.person_id).where(score.c.rank <= math.ceil(0.005 * people)))
                  .scalars())
    assert len(alerts) == math.ceil(0.005 * people)
    assert {a.person_id for a in alerts} == top
    for a in alerts:
        explanation = json.loads(a.explanation)
        assert explanation["model_version"]
        assert 1 <= len(explanation["reasons"]) <= 3
        for reason in explanation["reasons"]:
            assert reason["zh"] and reason["en"] and reason["title_zh"]
        assert a.amount_at_risk_cents == 0 and a.severity == "medium"


def test_scoring_again_keeps_the_frozen_explanations(city):
    settings, _ = city
    with gateway.transaction(settings.database_url) as conn:
        before = {a.person_id: a.explanation for a in conn.execute(select(alert).where(alert.c.rule == "anomaly"))}
    pipeline.score(settings)
    with gateway.transaction(settings.database_url) as conn:
        after = {a.person_id: a.explanation for a in conn.execute(select(alert).where(alert.c.rule == "anomaly"))}
    assert {p: before[p] for p in before} == {p: after[p] for p in before}


def test_only_the_candidates_keep_an_explanation_and_everyone_gets_top_features(city):
    """score_part after one part: everyone's top_features are the model's own explanation (as json.dumps
    writes it); reasons and feature values are kept for the part's K most unusual only."""
    settings, _ = city
    plan = pipeline.start_scoring(settings)
    scored = pipeline.score_counties(settings, plan, None)
    assert pipeline.score_counties(settings, plan, None) == scored > 0  # a retried task replaces its rows
    with gateway.transaction(settings.database_url) as conn:
        rows = pd.DataFrame(conn.execute(select(score_part)).mappings().all()).set_index("person_id")
        registered = registry.current(conn)
        X = compute_features(conn, date.fromisoformat(plan["as_of"]))[registered.features]
    assert len(rows) == scored
    pipeline.finish_scoring(settings, plan)
    candidates = rows.sort_values("score", ascending=False, kind="stable").index[:plan["k"]]
    assert set(rows.index[rows["reasons"].notna()]) == set(candidates) == set(rows.index[rows["features"].notna()])
    model = registry.load_model(settings, registered)
    explained = dict(zip(X.index, model.explain(X, top=3), strict=True))
    for person in [*candidates[:5], *rows.index[::97]]:
        expected = json.dumps([{"feature": r.feature, "value": round(r.value, 4), "median": round(r.median, 4),
                                "share": round(r.isolation_share, 3)} for r in explained[person]], ensure_ascii=False)
        assert rows.loc[person, "top_features"] == expected
    for person in candidates:
        assert json.loads(rows.loc[person, "reasons"]) == [asdict(r) for r in explained[person]]
        assert json.loads(rows.loc[person, "features"]) == X.loc[person].to_dict()


def test_the_city_wide_rank_breaks_ties_by_person_id(db_url):
    """finish ranks in the warehouse: the highest score first, equal scores in person_id order (an X after
    the digits); the top K get the anomaly alerts, in rank order."""
    gateway.migrate(db_url)
    as_of = date(2025, 6, 30)
    ids = ["430000000000000005", "43000000000000000X", "430000000000000001", "430000000000000003",
           "430000000000000002", "430000000000000004"]
    scores = [0.61, 0.70, 0.70, 0.55, 0.70, 0.40]
    registered = registry.Registered("iforest-test", "none.skops", "0" * 64, as_of, as_of, ["age"],
                                     [float(q) for q in np.linspace(0.3, 0.8, 101)], 6, {})
    reasons = json.dumps([{"feature": "age", "value": 101.0, "median": 70.0, "robust_z": 4.0,
                           "isolation_share": 1.0}])
    with gateway.transaction(db_url) as conn:
        gateway.insert_frame(conn, score_part, pd.DataFrame({
            "person_id": ids, "as_of": as_of, "model_version": "iforest-test", "score": scores,
            "top_features": "[]", "reasons": reasons, "features": json.dumps({"age": 101.0})}))
        result = nightly.finish(conn, registered, as_of, budget=0.5)
        ranked = conn.execute(select(score.c.person_id, score.c.rank).order_by(score.c.rank)).all()
        alerted = dict(conn.execute(select(alert.c.person_id, alert.c.explanation).where(alert.c.rule == "anomaly")).all())
        left = conn.execute(select(func.count()).select_from(score_part)).scalar()
    assert [p for p, _ in ranked] == ["430000000000000001", "430000000000000002", "43000000000000000X",
                                      "430000000000000005", "430000000000000003", "430000000000000004"]
    assert [r for _, r in ranked] == [1, 2, 3, 4, 5, 6]
    assert result["alerts_budget"] == 3 and result["anomaly_raised"] == 3 and left == 0
    assert {p: json.loads(e)["rank"] for p, e in alerted.items()} == {
        "430000000000000001": 1, "430000000000000002": 2, "43000000000000000X": 3}


def test_scores_export_has_the_contract_columns(city):
    settings, _ = city
    with gateway.transaction(settings.database_url) as conn:
        rows = list(csv.DictReader(io.StringIO(scores_csv(conn))))
    assert list(rows[0]) == ["person_id", "score", "model_version", "top_features"]
    values = [float(r["score"]) for r in rows]
    assert values == sorted(values, reverse=True) and 0 < values[-1] <= values[0] < 1


def test_planted_outliers_rank_near_the_top(city):
    settings, out = city
    with gateway.transaction(settings.database_url) as conn:
        result = evaluate.evaluate_scoring(conn, out / "truth")
    assert result is not None and result.planted > 0
    assert result.roc_auc is not None and result.roc_auc >= 0.9


def test_a_tampered_model_is_never_loaded(city, tmp_path):
    """The model's bytes in the warehouse, changed: a process that has not kept the model refuses them."""
    settings, _ = city
    with gateway.transaction(settings.database_url) as conn:
        registered = registry.current(conn)
        original = conn.execute(select(model.c.skops).where(model.c.version == registered.version)).scalar()
    assert original is not None and not list(registry.models_dir(settings).glob("*.skops"))  # no file beside
    registry._loaded.clear()  # a process that has not loaded it yet
    try:
        with gateway.transaction(settings.database_url) as conn:
            conn.execute(model.update().where(model.c.version == registered.version).values(skops=original + b"\0"))
        with pytest.raises(ModelFileError, match="SHA-256"):
            registry.load_model(settings, registered)
    finally:
        with gateway.transaction(settings.database_url) as conn:
            conn.execute(model.update().where(model.c.version == registered.version).values(skops=original))
    assert registry.load_model(settings, registered) is not None


def test_training_again_registers_a_new_current_model(city):
    settings, _ = city
    first = pipeline.train_model(settings)
    second = pipeline.train_model(settings)
    with gateway.transaction(settings.database_url) as conn:
        statuses = dict(conn.execute(select(model.c.version, model.c.status)).all())
    assert statuses[second["version"]] == "current"
    assert statuses[first["version"]] == "retired"
    assert list(statuses.values()).count("current") == 1


def test_a_process_builds_each_registered_model_once(city):
    """A worker scoring several parts builds the forests from the warehouse's skops bytes once per model; a
    newly registered model is built afresh and replaces the kept one."""
    settings, _ = city
    with gateway.transaction(settings.database_url) as conn:
        registered = registry.current(conn)
    kept = registry.load_model(settings, registered)
    plan = pipeline.start_scoring(settings)
    parts = pipeline.detection_parts(settings, groups=100)  # one county each
    assert len(parts) > 2 and sum(pipeline.score_counties(settings, plan, part) for part in parts) > 0
    assert registry.load_model(settings, registered) is kept
    pipeline.finish_scoring(settings, plan)
    with gateway.transaction(settings.database_url) as conn:  # another window: another model
        earlier = conn.execute(select(delivery.c.day).order_by(delivery.c.day.desc()).offset(3)).scalars().first()
    newer = pipeline.train_model(settings, as_of=earlier)
    with gateway.transaction(settings.database_url) as conn:
        registered_newer = registry.current(conn)
    assert registered_newer.version == newer["version"]
    fresh = registry.load_model(settings, registered_newer)
    assert fresh is not kept and registry.load_model(settings, registered_newer) is fresh
    with gateway.transaction(settings.database_url) as conn:
        X = compute_features(conn, date.fromisoformat(plan["as_of"]))
    data, _ = registry.model_bytes(settings, registered_newer)
    kept_in_warehouse = loads(data, registered_newer.sha256)
    assert np.array_equal(fresh.score_samples(X), kept_in_warehouse.score_samples(X))
    assert not np.array_equal(fresh.score_samples(X), kept.score_samples(X))


def test_model_report_shows_drift_and_the_current_model(city):
    settings, _ = city
    report = pipeline.model_report(settings)
    assert report["current_model"]["version"]
    night = report["latest_drift"]
    assert night["drift_word"] in {"stable", "watch", "retrain"}
    # scored on the data it was trained on: no drift
    assert night["drift"] < 0.1


def test_drift_index_rises_when_the_scores_shift():
    import numpy as np

    from risk.scoring.nightly import psi

    train = list(np.quantile(np.random.default_rng(0).normal(0.4, 0.03, 5000), np.linspace(0, 1, 101)))
    same = np.random.default_rng(1).normal(0.4, 0.03, 5000)
    shifted = np.random.default_rng(2).normal(0.46, 0.03, 5000)
    assert psi(train, same) < 0.05
    assert psi(train, shifted) > 0.25


_CITY_FEATURES = pipeline.city_features


def _no_features(database_url, as_of, window_days):
    """In a worker process, ends it at once (as the kernel ends one out of memory); in the main process
    (doing the dead worker's work) the real computation."""
    import multiprocessing
    import os

    if multiprocessing.parent_process() is not None:
        os._exit(9)
    return _CITY_FEATURES(database_url, as_of, window_days)


@pytest.mark.parametrize("worker", ["beside", "dies"])
def test_features_computed_beside_the_rules_score_as_computed_after_them(city, tmp_path, monkeypatch, caplog,
                                                                         worker):
    """A big city's features are computed in a worker process while the rules run; the scores are the ones
    the same night gives when they are computed after the rules, also when that process dies."""
    import logging
    import sqlite3

    settings, out = city
    monkeypatch.setattr(pipeline, "FEATURES_BESIDE", 0)
    # the reference: tonight's scores with the current model, the features computed after the rules in this
    # process (a test before may have registered a model the warehouse's scores are not from)
    pipeline.score(settings)
    if worker == "dies":
        monkeypatch.setattr(pipeline, "city_features", _no_features)
    db = tmp_path / "w.db"
    with sqlite3.connect(out / "w.db") as source, sqlite3.connect(db) as copy:  # WAL and all, unlike a file copy
        source.backup(copy)
    again = Settings(database_url=f"sqlite:///{db}", var_dir=settings.var_dir)
    with gateway.transaction(again.database_url) as conn:  # tonight's scoring, undone: it runs again
        conn.execute(score.delete())
    pipeline.detect(again)  # every rule has run (whatever the tests before left): tonight's detection is incremental
    assert pipeline._features_beside(again)
    with gateway.transaction(again.database_url) as conn:  # a first night, or a new rule: some rule runs whole
        marks = conn.execute(text("SELECT * FROM detection_mark")).all()
        conn.execute(text("DELETE FROM detection_mark WHERE rule = 'dual_benefit'"))
    # a whole detection runs beside the features only when both fit in the memory budget
    assert pipeline._features_beside(again) and not pipeline._features_beside(again.model_copy(update={"memory_mib": 100}))
    with gateway.transaction(again.database_url) as conn:
        conn.execute(text("DELETE FROM detection_mark"))
        conn.execute(text("INSERT INTO detection_mark VALUES (" + ", ".join(f":c{i}" for i in range(len(marks[0])))
                          + ")"), [{f"c{i}": v for i, v in enumerate(m)} for m in marks])
    with caplog.at_level(logging.INFO, logger="risk.worker"):
        pipeline.run(again, out / "landing", send_digests=False)
    assert ("the worker process stopped" in caplog.text) == (worker == "dies")
    assert "no worker process" not in caplog.text

    def scores(url):
        with gateway.transaction(url) as conn:
            return conn.execute(select(score.c.person_id, score.c.score, score.c.rank, score.c.top_features)
                                .order_by(score.c.person_id)).all()

    got, want = scores(again.database_url), scores(settings.database_url)
    assert len(got) == len(want) > 2_000 and got == want



@pytest.mark.parametrize("order", ["as returned", "reversed"])
def test_account_people_counts_everyone_paid_into_any_of_a_persons_accounts(city, monkeypatch, order):
    """account_people, against a count straight from the payments: the people paid in the window into any
    account the person was paid into. People paid into several accounts are looked up apart, and their
    counts go to them by person, whatever order the database returns people in (PostgreSQL's plans change
    it: here every query's rows are also taken in reverse)."""
    from risk.scoring import features as module

    settings, _ = city
    if order == "reversed":
        real = module.frame
        monkeypatch.setattr(module, "frame", lambda *a, **k: real(*a, **k).iloc[::-1])
    with gateway.reading(settings.database_url) as conn:
        as_of = date.fromisoformat(conn.execute(select(func.max(delivery.c.day))).scalar())
        features = compute_features(conn, as_of, settings.window_days)
        paid = pd.read_sql("SELECT person_id, bank_account, paid_on FROM payment", conn)
    start = pd.Timestamp(as_of) - pd.Timedelta(days=settings.window_days)
    day = pd.to_datetime(paid["paid_on"])
    pairs = paid[(day > start) & (day <= pd.Timestamp(as_of))][["person_id", "bank_account"]].drop_duplicates()
    sharing = pairs.merge(pairs, on="bank_account", suffixes=("", "_other"))
    want = sharing.groupby("person_id")["person_id_other"].nunique().astype(float)
    several = pairs.groupby("person_id").size()
    assert (several > 1).sum() >= 3, "the city has too few people paid into several accounts to tell"
    got = features["account_people"].reindex(want.index)
    assert got.to_dict() == want.to_dict()
