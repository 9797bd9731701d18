"""The anomaly model: an isolation forest (Liu, Ting and Zhou, ICDM 2008) over behavioural features.

`BehaviourForest` wraps scikit-learn's `IsolationForest` with the paper's defaults (t = 100 trees, each on a
subsample of ψ = 256 rows) and follows the estimator conventions: the constructor stores parameters only,
everything learnt ends in `_`, randomness comes from `random_state`.

Sign convention — read this before using the scores:

* `score_samples(X)` is the paper's anomaly score s(x, n) in (0, 1]: HIGHER = MORE UNUSUAL. scikit-learn's
  `IsolationForest.score_samples` returns the opposite (-s, "the lower, the more abnormal"); this class
  returns `-forest_.score_samples(X)`, so s > 0.5 is the paper's "anomaly" region.
* `decision_function(X)` and `predict(X)` keep scikit-learn's meaning: decision = `threshold_ - s`,
  negative for outliers; predict is -1 for outliers and 1 for inliers. Both are exactly
  `forest_.decision_function(X)` and `forest_.predict(X)`. `threshold_` is 0.5 (the paper's) when
  contamination is "auto", else the training score above which that share of training rows lies.
* Hence `decision_function != score_samples - offset_`: scikit-learn's `check_outliers_train` asserts that
  relation and is an expected failure of this estimator (tests/unit/test_model.py checks the rest of it).

Explanations (`explain`) rank features by how much of the isolation each did (see `explain` for why),
and report beside each the robust z-score a person can verify by hand against the training medians.

Persistence (`dumps`/`loads` for the bytes the warehouse keeps, `save`/`load` for a file) uses skops, never
pickle: `loads` checks the SHA-256 of the bytes before it reads anything, then lets skops build only the
types in `TRUSTED_TYPES`. `dumps` writes the same bytes for the same model (see `dumps`).
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import numbers
import os
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted, validate_data
from skops.io.exceptions import UntrustedTypesFoundException

from risk.errors import ModelFileError
from risk.scoring.reasons import Reason, TopReasons, top_reasons

TRAIN_SCORE_QUANTILES = (0.0, 0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 1.0)
"""The levels at which `train_scores_` summarises the training scores (same order)."""

# Consistency constants: each turns its spread measure into σ for normally distributed data.
_MAD_TO_SIGMA = 1.4826  # 1 / Φ⁻¹(3/4)
_IQR_TO_SIGMA = 1.349  # Φ⁻¹(3/4) - Φ⁻¹(1/4)
_MEANAD_TO_SIGMA = 1.2533  # √(π/2)


class BehaviourForest(OutlierMixin, BaseEstimator):
    """Isolation forest whose `score_samples` is the paper's s(x, n): higher = more unusual.

    Input: a numeric array or DataFrame without NaN or infinity (rejected with a ValueError; the
    features of `risk.scoring.features` are never NaN, impute upstream otherwise). Sparse input is not
    accepted: the training medians and scales need dense columns.

    Parameters
    ----------
    n_estimators : int, default=100
        Trees in the forest (the paper's t).
    max_samples : int, float or "auto", default=256
        Rows drawn, without replacement, to grow each tree (the paper's ψ). An int larger than the
        number of training rows means all rows, as in the paper (and as scikit-learn does, but here
        without its warning).
    contamination : "auto" or float in (0, 0.5], default="auto"
        "auto": outliers are rows with s > 0.5, the paper's rule. A float: the share of training rows
        `predict` calls outliers.
    max_features : int or float, default=1.0
        Features drawn for each tree; 1.0 = all, as in the paper.
    random_state : int, RandomState instance or None, default=None
        Seed for subsampling and splits; an int makes `fit` reproducible.

    Attributes
    ----------
    forest_ : IsolationForest
        The fitted scikit-learn forest (fitted on a NumPy array, without feature names).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when `fit` got a DataFrame with string column names
    threshold_ : float
        Score above which `predict` calls a row an outlier (`decision_function = threshold_ - s`).
    train_scores_ : ndarray of shape (len(TRAIN_SCORE_QUANTILES),)
        Quantiles of the training rows' scores at the levels of `TRAIN_SCORE_QUANTILES`.
    feature_medians_ : ndarray of shape (n_features_in_,)
    feature_scales_ : ndarray of shape (n_features_in_,)
        Robust spread of each feature in training, in σ units for normal data: 1.4826 × MAD; where the
        MAD is 0 (at least half the rows share one value, e.g. counts that are mostly 0), IQR / 1.349;
        where that is 0 too, 1.2533 × the mean absolute deviation from the median; 0 only for a
        feature constant in training.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int | float | str = 256,
        contamination: str | float = "auto",
        max_features: int | float = 1.0,
        random_state: Any = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: Any = None) -> BehaviourForest:
        """Grow the forest on X (y is ignored) and summarise the training data for explanations."""
        self.fit_score_samples(X)
        return self

    def fit_score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """`fit(X)`, returning `score_samples(X)` of the training rows: the pass over them that fit makes
        for `train_scores_` anyway (equal to scoring them again, one pass cheaper)."""
        X_checked = validate_data(self, X, dtype=np.float64)
        n_rows = X_checked.shape[0]
        psi = self.max_samples
        if isinstance(psi, numbers.Integral) and not isinstance(psi, bool) and psi > n_rows:
            psi = n_rows
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=psi,
            contamination=self.contamination,
            max_features=self.max_features,
            random_state=self.random_state,
        ).fit(X_checked)
        self.threshold_ = float(-self.forest_.offset_)
        train_scores = -self.forest_.score_samples(X_checked)
        self.train_scores_ = np.quantile(train_scores, TRAIN_SCORE_QUANTILES)
        self.feature_medians_, self.feature_scales_ = _robust_location_and_scale(X_checked)
        return train_scores

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """The paper's anomaly score s(x, n) of each row, in (0, 1]: higher = more unusual."""
        check_is_fitted(self)
        X_checked = validate_data(self, X, dtype=np.float64, reset=False)
        return -self.forest_.score_samples(X_checked)

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """`threshold_ - score_samples(X)`: negative for outliers (scikit-learn's convention)."""
        check_is_fitted(self)
        return self.threshold_ - self.score_samples(X)

    def predict(self, X: ArrayLike) -> NDArray[np.int_]:
        """-1 for outliers, 1 for inliers (scikit-learn's convention); a row on the threshold is an inlier."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def explain(self, X: ArrayLike, top: int = 3) -> list[list[Reason]]:
        """For each row, the `top` features that made it unusual, most important first.

        Ranking is by isolation share: in every tree, the row's path from the root to its leaf narrows the
        tree's ψ training rows down to the few in the leaf; a split that keeps n_child of n_parent rows
        does log2(n_parent / n_child) bits of that isolation, and those bits add up, per tree, to
        log2(ψ / n_leaf) — exactly what makes the path short and the score high. Each split's bits are
        credited to the feature it split on, summed over the trees, and given as a share of the row's
        total. This explains the model's own score (what the forest actually used), including rows that
        are unusual only in a combination of features, and costs one pass of the row through the trees.

        The robust z-score (value against the training median and scale) is reported beside it, not
        used for the ranking: it is what a supervisor can check by hand, but it is blind to the model
        and to unusual combinations. A feature constant in training is never split on, so it cannot
        raise the score and gets no share; its z-score (±inf) still shows a value never seen in training.
        Ties in share are broken by |z|, then by column order. (Computed by `top_reasons`, for all rows
        at once; see risk/scoring/reasons.py.)
        """
        return self.top_reasons(X, top).as_lists(self._feature_names())

    def top_reasons(self, X: ArrayLike, top: int = 3) -> TopReasons:
        """`explain`'s answer as arrays of shape (n_rows, min(top, n_features)): no Python object per row."""
        check_is_fitted(self)
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        X_checked = validate_data(self, X, dtype=np.float64, reset=False)
        return top_reasons(self.forest_, X_checked, self.feature_medians_, self.feature_scales_, top)

    def _feature_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(name) for name in self.feature_names_in_]
        return [f"x{j}" for j in range(self.n_features_in_)]


def _robust_location_and_scale(X: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    median = np.median(X, axis=0)
    deviation = np.abs(X - median)
    mad = _MAD_TO_SIGMA * np.median(deviation, axis=0)
    q75, q25 = np.percentile(X, [75, 25], axis=0)
    iqr = (q75 - q25) / _IQR_TO_SIGMA
    mean_ad = _MEANAD_TO_SIGMA * deviation.mean(axis=0)
    scale = np.where(mad > 0, mad, np.where(iqr > 0, iqr, mean_ad))
    return median, scale


# ---------------------------------------------------------------------------------------------------------
# Persistence

TRUSTED_TYPES: list[str] = [
    # Exactly what skops.io.get_untrusted_types(file=...) lists for a fitted BehaviourForest (skops 0.16,
    # scikit-learn 1.9; fitted on an array and on a DataFrame, any contamination and max_features). The
    # rest of the file (builtins, NumPy arrays, IsolationForest, ExtraTreeRegressor) is on skops' default
    # trusted list. Recompute and review whenever the fitted attributes or those versions change.
    "risk.scoring.model.BehaviourForest",
    "sklearn.tree._tree.Tree",
    # the production model: one BehaviourForest per feature group (risk/scoring/grouped.py)
    "risk.scoring.grouped.GroupedBehaviourForest",
]
MODEL_CLASSES = ("BehaviourForest", "GroupedBehaviourForest")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry: no clock in the bytes


def dumps(model: Any) -> bytes:
    """The fitted model as skops bytes (deflated), the same bytes for the same model.

    skops names the parts of its zip after Python object ids (`__id__`, "140699441099568.npy") and stamps
    them with the time of writing, so the same model saved twice gave other bytes and another SHA-256.
    Here the ids and file names are renumbered in the order skops wrote them and every entry carries the
    same time: a model trained again on the same people has the same hash, and two warehouses that did
    the same work hold the same bytes. The archive stays one skops reads (`loads`; the tests load it)."""
    check_is_fitted(model)
    raw = skops.io.dumps(model)
    with zipfile.ZipFile(io.BytesIO(raw)) as source:
        entries = [info.filename for info in source.infolist()]
        schema = json.loads(source.read("schema.json"))
        ids: dict[int, int] = {}
        names: dict[str, str] = {}

        def renumber(node: Any) -> None:
            if isinstance(node, dict):
                if isinstance(node.get("__id__"), int):
                    node["__id__"] = ids.setdefault(node["__id__"], len(ids) + 1)
                if isinstance(node.get("file"), str) and node["file"] in entries:
                    node["file"] = names.setdefault(node["file"], f"{len(names) + 1}{Path(node['file']).suffix}")
                for value in node.values():
                    renumber(value)
            elif isinstance(node, list):
                for value in node:
                    renumber(value)

        renumber(schema)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            for name in entries:
                if name == "schema.json":
                    continue
                info = zipfile.ZipInfo(names.get(name, name), date_time=_ZIP_TIME)
                info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o600 << 16
                target.writestr(info, source.read(name), compresslevel=6)
            info = zipfile.ZipInfo("schema.json", date_time=_ZIP_TIME)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o600 << 16
            target.writestr(info, json.dumps(schema, indent=2), compresslevel=6)
    return out.getvalue()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(model: Any, path: str | os.PathLike[str]) -> str:
    """Write the fitted model with skops (atomically; `dumps`) and return the SHA-256 (hex) of the bytes."""
    return write(dumps(model), path)


def write(data: bytes, path: str | os.PathLike[str]) -> str:
    """Write model bytes to a file atomically and return their SHA-256 (hex)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(partial, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return sha256_of(data)


def check_sha256(path: str | os.PathLike[str], expected_sha256: str) -> bytes:
    """The file's bytes, when their SHA-256 is the one expected; a ModelFileError otherwise."""
    return check_bytes(Path(path).read_bytes(), expected_sha256, os.fspath(path))


def check_bytes(data: bytes, expected_sha256: str, where: str) -> bytes:
    """`data` (the model `where` names), when its SHA-256 is the one expected; a ModelFileError otherwise."""
    expected = expected_sha256.strip().lower()
    if not _SHA256_HEX.fullmatch(expected):
        raise ModelFileError(f"模型的 SHA-256 应为 64 位十六进制 / expected_sha256 must be 64 hex digits, got {expected_sha256!r}")
    actual = sha256_of(data)
    if not hmac.compare_digest(actual, expected):
        raise ModelFileError(
            f"模型校验失败，未加载 / model {where} not loaded: its SHA-256 is {actual}, expected {expected}"
        )
    return data


def load(path: str | os.PathLike[str], expected_sha256: str) -> Any:
    """Load a model saved by `save`, after checking its SHA-256; only `TRUSTED_TYPES` may be built.

    The file is read once; the hash is checked on those bytes and the same bytes are loaded, so a file
    swapped between the check and the load cannot slip through.
    """
    return loads(Path(path).read_bytes(), expected_sha256, os.fspath(path))


def loads(data: bytes, expected_sha256: str, where: str = "bytes") -> Any:
    """The model in `data` (`where` names it in messages), after checking its SHA-256; only `TRUSTED_TYPES`
    may be built. Bytes that pass the check but that skops cannot build (a library changed under them)
    are a ModelFileError too."""
    check_bytes(data, expected_sha256, where)
    try:
        model = skops.io.loads(data, trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException as error:
        raise ModelFileError(
            f"模型含有不受信任的类型，未加载 / model {where} not loaded: {error}"
        ) from error
    except Exception as error:
        raise ModelFileError(
            f"模型无法读取 / model {where} could not be read: {type(error).__name__}"
        ) from error
    if not (type(model).__module__.startswith("risk.scoring.") and type(model).__name__ in MODEL_CLASSES):
        raise ModelFileError(
            f"模型不是行为模型 / model {where} holds a {type(model).__name__}, not a behaviour model"
        )
    return model
