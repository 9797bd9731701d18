"""The model registry: every trained model with its version, training window, parameters, feature list,
row count, library versions, its skops bytes and their sha256. Only registered bytes that still have that
hash are ever loaded.

The model is kept with its warehouse, in the `model` table (column `skops`, about 7 MB deflated), not in
a folder beside it: two warehouses run from one folder cannot overwrite each other's model, a SQLite
file copied elsewhere carries its model, and every process that scores (a Celery worker on another
machine) gets it from the warehouse it writes to. The newest `KEEP_BYTES` models keep their bytes; an
older, retired one keeps its row (version, hash, parameters: what alerts and reports name). A model
registered before that (migration 0015) has no bytes in the table: its file in var/models is loaded when
its hash matches, and the night then stores it in the warehouse (`keep_in_warehouse`)."""
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
from risk.errors import ModelMissing, TooFewPeople
from risk.scoring.features import compute_features
from risk.scoring.grouped import GroupedBehaviourForest
from risk.scoring.model import check_bytes, dumps, loads, sha256_of, write
from risk.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 90
QUANTILES = np.linspace(0, 1, 101)


MIN_PEOPLE = 50
KEEP_BYTES = 3  # the newest models whose bytes the warehouse keeps (a weekly retrain adds one)


@dataclass(frozen=True)
class Registered:
    version: str
    file: str  # the name of its skops file: where a model registered before 0015 lies in var/models
    sha256: str
    window_start: date
    window_end: date
    features: list[str]
    train_scores: list[float]
    rows: int
    params: dict


def models_dir(settings: Settings) -> Path:
    """Where models registered before migration 0015 were saved (new ones are kept in the warehouse)."""
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
    """Keep a fitted model in the warehouse (skops bytes with their sha256) and make it the current one;
    the bytes of models older than the newest `KEEP_BYTES` go (their rows stay)."""
    seq = (conn.execute(select(func.count()).select_from(model_table)).scalar() or 0) + 1
    version = f"iforest-{as_of:%Y%m%d}-{seq:03d}"  # the same inputs give the same version, bytes and hash
    file = f"{version}.skops"
    data = dumps(forest)
    sha = sha256_of(data)
    _loaded.clear()  # the process that trained the model scores with it as saved, without loading it again
    _loaded[(version, sha)] = forest
    train_scores = [float(q) for q in np.quantile(scores, QUANTILES)]
    params = forest.get_params()
    conn.execute(update(model_table).where(model_table.c.status == "current").values(status="retired"))
    conn.execute(model_table.insert().values(
        version=version, file=file, sha256=sha, trained_at=datetime.now(),
        window_start=as_of - timedelta(days=window_days), window_end=as_of, params=json.dumps(params),
        features=json.dumps(list(features.columns)), rows=len(features), libraries=json.dumps(_libraries()),
        train_scores=json.dumps(train_scores), status="current", skops=data))
    newest = select(model_table.c.version).order_by(model_table.c.trained_at.desc(),
                                                    model_table.c.version.desc()).limit(KEEP_BYTES)
    conn.execute(update(model_table).where(model_table.c.status == "retired", model_table.c.skops.is_not(None),
                                           model_table.c.version.not_in(newest))
                 .values(skops=None))
    log.info("trained %s on %d people, window %s days to %s", version, len(features), window_days, as_of)
    return Registered(version, file, sha, as_of - timedelta(days=window_days), as_of, list(features.columns),
                      train_scores, len(features), params)


def current(conn: Connection) -> Registered | None:
    columns = [c for c in model_table.c if c.name != "skops"]  # the bytes only when loading
    row = conn.execute(select(*columns).where(model_table.c.status == "current")
                       .order_by(model_table.c.trained_at.desc())).first()
    if row is None:
        return None
    return Registered(row.version, row.file, row.sha256, _as_date(row.window_start), _as_date(row.window_end),
                      json.loads(row.features), json.loads(row.train_scores), row.rows, json.loads(row.params))


_loaded: dict[tuple[str, str], GroupedBehaviourForest] = {}


def load_model(settings: Settings, registered: Registered, conn: Connection | None = None) -> GroupedBehaviourForest:
    """The registered model, from its warehouse (`conn`, else a reading connection to
    settings.database_url), after checking its sha256 (never unpickled: skops with a fixed list of
    trusted types). A model registered before migration 0015 comes from its file in var/models, under
    the same check. A ModelFileError (ModelMissing when the bytes are nowhere) when it cannot be loaded.

    A process loads each model once: a worker that scores several parts builds the forests from the
    bytes for the first part and keeps them, keyed by version and registered sha256, so a newly
    registered model (another version and hash) is loaded afresh and replaces the kept one. The kept
    forests are the ones built from bytes that had the registered hash, so they are not fetched and
    checked again."""
    key = (registered.version, registered.sha256)
    kept = _loaded.get(key)
    if kept is None:
        data, where = model_bytes(settings, registered, conn)
        kept = loads(data, registered.sha256, where)
        _loaded.clear()
        _loaded[key] = kept
    return kept


def model_bytes(settings: Settings, registered: Registered, conn: Connection | None = None) -> tuple[bytes, str]:
    """The registered model's skops bytes, not yet checked, and a name for messages: the warehouse's, else
    (a model registered before 0015) its file's in var/models."""
    if conn is None:
        from risk.db import gateway

        with gateway.reading(settings.database_url) as reading:
            return model_bytes(settings, registered, reading)
    data = conn.execute(select(model_table.c.skops).where(model_table.c.version == registered.version)).scalar()
    if data is not None:
        return bytes(data), f"{registered.version}（仓库 / warehouse）"
    path = models_dir(settings) / registered.file
    if path.is_file():
        return path.read_bytes(), str(path)
    raise ModelMissing(f"模型 {registered.version} 不在仓库中，也没有模型文件 / model {registered.version} is "
                       f"neither in the warehouse nor in {path}")


def keep_in_warehouse(conn: Connection, settings: Settings, registered: Registered) -> bool:
    """Store the bytes of a model registered before migration 0015 (its file in var/models, with the
    registered hash) in its warehouse row; True when they were stored now. A copy of the warehouse then
    carries its model, and the file is no longer read."""
    if conn.execute(select(model_table.c.version).where(model_table.c.version == registered.version,
                                                        model_table.c.skops.is_(None))).first() is None:
        return False
    data, where = model_bytes(settings, registered, conn)
    check_bytes(data, registered.sha256, where)
    conn.execute(update(model_table).where(model_table.c.version == registered.version).values(skops=data))
    log.info("模型 %s 已存入仓库 / model %s stored in the warehouse (from %s)", registered.version,
             registered.version, where)
    return True


def export(conn: Connection, settings: Settings, registered: Registered, path: Path) -> str:
    """Write the registered model's skops bytes to `path` (checked against its hash first); their sha256.
    A copy for someone to inspect: the warehouse stays the model's home, nothing loads it from there."""
    data, where = model_bytes(settings, registered, conn)
    check_bytes(data, registered.sha256, where)
    return write(data, path)


def listing(conn: Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(select(
        model_table.c.version, model_table.c.status, model_table.c.trained_at, model_table.c.window_start,
        model_table.c.window_end, model_table.c.rows, model_table.c.sha256).order_by(
        model_table.c.trained_at)).mappings()]


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
