"""The model registry: every trained model with its version, training window, parameters, feature list,
row count, library versions and the sha256 of its skops file. Only a registered model whose file still
has that hash is ever loaded."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select, update

from risk.db.tables import model as model_table
from risk.errors import RiskError
from risk.scoring.features import compute_features
from risk.scoring.grouped import GroupedBehaviourForest
from risk.scoring.model import check_sha256, load, save
from risk.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 90
QUANTILES = np.linspace(0, 1, 101)


class TooFewPeople(RiskError):
    """Not enough people to train a model on."""


MIN_PEOPLE = 50


@dataclass(frozen=True)
class Registered:
    version: str
    file: str
    sha256: str
    window_start: date
    window_end: date
    features: list[str]
    train_scores: list[float]
    rows: int
    params: dict


def models_dir(settings: Settings) -> Path:
    return settings.var_dir / "models"


def _libraries() -> dict[str, str]:
    import pandas
    import sklearn
    import skops

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "pandas": pandas.__version__,
            "skops": skops.__version__}


def train(conn: Connection, settings: Settings, as_of: date, window_days: int = DEFAULT_WINDOW_DAYS,
          seed: int = 0, n_estimators: int = 100, max_samples: int = 1024,
          features: pd.DataFrame | None = None) -> Registered:
    """Fit a model on everyone's features over the window ending `as_of` (computed here unless given), save
    it and make it current."""
    if features is None:
        features = compute_features(conn, as_of, window_days)
    forest, scores = fit(features, seed=seed, n_estimators=n_estimators, max_samples=max_samples)
    return register(conn, settings, forest, features, scores, as_of, window_days)


def fit(features: pd.DataFrame, seed: int = 0, n_estimators: int = 100,
        max_samples: int = 1024) -> tuple[GroupedBehaviourForest, np.ndarray]:
    """The model fitted on `features` (one row per person) and its scores of them; no database needed, so
    the night fits it outside any transaction."""
    # in person order: the forest's subsamples are drawn by position, so the same people give the same model
    features = features.sort_index()
    if len(features) < MIN_PEOPLE:
        raise TooFewPeople(f"训练数据太少（{len(features)}人，至少{MIN_PEOPLE}人）/ too few people to train on "
                           f"({len(features)}, at least {MIN_PEOPLE})")
    forest = GroupedBehaviourForest(n_estimators=n_estimators, max_samples=max_samples, random_state=seed)
    return forest, forest.fit_score_samples(features)


def register(conn: Connection, settings: Settings, forest: GroupedBehaviourForest, features: pd.DataFrame,
             scores: np.ndarray, as_of: date, window_days: int) -> Registered:
    """Save a fitted model (skops, with its sha256) and make it the current one."""
    seq = (conn.execute(select(func.count()).select_from(model_table)).scalar() or 0) + 1
    version = f"iforest-{as_of:%Y%m%d}-{seq:03d}"  # the same inputs give the same version, file and hash
    folder = models_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    file = f"{version}.skops"
    sha = save(forest, folder / file)
    _loaded.clear()  # the process that trained the model scores with it as saved, without loading it again
    _loaded[(str((folder / file).resolve()), sha)] = forest
    train_scores = [float(q) for q in np.quantile(scores, QUANTILES)]
    params = forest.get_params()
    conn.execute(update(model_table).where(model_table.c.status == "current").values(status="retired"))
    conn.execute(model_table.insert().values(
        version=version, file=file, sha256=sha, trained_at=datetime.now(),
        window_start=as_of - timedelta(days=window_days), window_end=as_of, params=json.dumps(params),
        features=json.dumps(list(features.columns)), rows=len(features), libraries=json.dumps(_libraries()),
        train_scores=json.dumps(train_scores), status="current"))
    log.info("trained %s on %d people, window %s days to %s", version, len(features), window_days, as_of)
    return Registered(version, file, sha, as_of - timedelta(days=window_days), as_of, list(features.columns),
                      train_scores, len(features), params)


def current(conn: Connection) -> Registered | None:
    row = conn.execute(select(model_table).where(model_table.c.status == "current")
                       .order_by(model_table.c.trained_at.desc())).first()
    if row is None:
        return None
    return Registered(row.version, row.file, row.sha256, _as_date(row.window_start), _as_date(row.window_end),
                      json.loads(row.features), json.loads(row.train_scores), row.rows, json.loads(row.params))


_loaded: dict[tuple[str, str], GroupedBehaviourForest] = {}


def load_model(settings: Settings, registered: Registered) -> GroupedBehaviourForest:
    """The registered model's file, after checking its sha256 (never unpickled: skops with a fixed list
    of trusted types).

    A process loads each model once: a worker that scores several parts builds the forests from the
    skops file for the first part and keeps them, keyed by the file's path and registered sha256, so a
    newly registered model (another version, file and hash) is loaded afresh and replaces the kept one.
    The file is hashed again on every call (milliseconds, against seconds for building the forests): a
    file changed on disk is refused even while the model it once held is kept."""
    path = models_dir(settings) / registered.file
    key = (str(path.resolve()), registered.sha256)
    kept = _loaded.get(key)
    if kept is None:
        kept = load(path, registered.sha256)
        _loaded.clear()
        _loaded[key] = kept
    else:
        check_sha256(path, registered.sha256)
    return kept


def listing(conn: Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(select(
        model_table.c.version, model_table.c.status, model_table.c.trained_at, model_table.c.window_start,
        model_table.c.window_end, model_table.c.rows, model_table.c.sha256).order_by(
        model_table.c.trained_at)).mappings()]


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
