"""One isolation forest per group of related features; a person's score is the highest of their groups.

Why: an isolation forest picks a feature at random for every split, so with 19 features a person who is
extreme on one of them (a pension five times their peers') is isolated no faster than a heavy but ordinary
card user who is a little high on many. Measured on a generated 20,000-person city: one forest over all
19 features gave ROC-AUC 0.88 against the planted outliers; one forest per behaviour (where and when the
card is used, pharmacy use, card volume, payment level, accounts, status) and the maximum of their
scores gave 0.99. Each group's forest is a `BehaviourForest` (the paper's score), so scores stay in
(0, 1] and comparable across groups, and the explanation comes from the group that scored highest.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from risk.scoring.model import TRAIN_SCORE_QUANTILES, BehaviourForest
from risk.scoring.reasons import Reason, TopReasons

GROUPS: dict[str, list[str]] = {
    "time_and_place": ["night_share", "away_share", "distinct_counties"],
    "pharmacy": ["pharmacy_per_30d", "pharmacy_busiest_day", "pharmacy_busiest_month"],
    "card_volume": ["medical_per_30d", "withdrawal_per_30d", "transit_per_30d", "other_per_30d",
                    "card_amount_per_30d", "card_max_amount", "withdrawal_amount_share"],
    "payment_level": ["payment_peer_ratio"],
    "accounts": ["account_people", "other_account_share"],
    "status": ["days_since_certification", "age", "days_since_card_use"],
}


class GroupedBehaviourForest(OutlierMixin, BaseEstimator):
    """`BehaviourForest` per feature group; `score_samples` is the maximum of the groups' scores.

    Takes a DataFrame; features in no group form a group of their own ("other"). Parameters are those
    of `BehaviourForest`, given to every group's forest (group k is seeded random_state + k).
    """

    def __init__(self, groups: dict[str, list[str]] | None = None, n_estimators: int = 100,
                 max_samples: int | float | str = 256, random_state: Any = None) -> None:
        self.groups = groups
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any = None) -> GroupedBehaviourForest:
        self.fit_score_samples(X)
        return self

    def fit_score_samples(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """`fit(X)`, returning `score_samples(X)` of the training rows, taken from the pass each group's
        forest makes over them while fitting (equal to scoring them again, two passes cheaper)."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("GroupedBehaviourForest needs a DataFrame: its groups name columns")
        columns = [str(c) for c in X.columns]
        wanted = GROUPS if self.groups is None else self.groups
        groups = [(name, [c for c in cols if c in columns]) for name, cols in wanted.items()]
        grouped = {c for _, cols in groups for c in cols}
        rest = [c for c in columns if c not in grouped]
        groups = [(n, cols) for n, cols in groups if cols] + ([("other", rest)] if rest else [])
        seed = self.random_state
        self.groups_ = groups
        forests = [BehaviourForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                   random_state=None if seed is None else int(seed) + k)
                   for k in range(len(groups))]
        scores = np.vstack([forest.fit_score_samples(X[cols])
                            for forest, (_, cols) in zip(forests, groups, strict=True)]).max(axis=0)
        self.forests_ = forests
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        self.threshold_ = 0.5  # the paper's rule, as BehaviourForest with contamination="auto"
        self.train_scores_ = np.quantile(scores, TRAIN_SCORE_QUANTILES)
        return scores

    def group_scores(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """(n_groups, n_rows): every group's score of every row."""
        check_is_fitted(self)
        return np.vstack([f.score_samples(X[cols]) for f, (_, cols) in zip(self.forests_, self.groups_, strict=True)])

    def score_samples(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """The highest group score of each row: higher = more unusual."""
        return self.group_scores(X).max(axis=0)

    def decision_function(self, X: pd.DataFrame) -> NDArray[np.float64]:
        return self.threshold_ - self.score_samples(X)

    def predict(self, X: pd.DataFrame) -> NDArray[np.int_]:
        return np.where(self.decision_function(X) < 0, -1, 1)

    def explain(self, X: pd.DataFrame, top: int = 3) -> list[list[Reason]]:
        """For each row, the features of its highest-scoring group that isolated it, most important first."""
        return self.top_reasons(X, top).as_lists([str(c) for c in self.feature_names_in_])

    def scores_and_reasons(self, X: pd.DataFrame, top: int = 3) -> tuple[NDArray[np.float64], TopReasons]:
        """`score_samples(X)` and `top_reasons(X, top)` with one pass of X through the forests."""
        per_group = self.group_scores(X)
        return per_group.max(axis=0), self.top_reasons(X, top, per_group)

    def top_reasons(self, X: pd.DataFrame, top: int = 3, group_scores: NDArray[np.float64] | None = None
                    ) -> TopReasons:
        """`explain`'s answer as arrays (columns are positions in `feature_names_in_`); a row whose group has
        fewer than `top` features has fewer reasons (column -1). `group_scores`, when given, is
        `self.group_scores(X)`, already computed."""
        check_is_fitted(self)
        best = (self.group_scores(X) if group_scores is None else group_scores).argmax(axis=0)
        position = {str(c): j for j, c in enumerate(self.feature_names_in_)}
        out = TopReasons.empty(len(X), min(top, max(len(cols) for _, cols in self.groups_)))
        for k, (forest, (_, cols)) in enumerate(zip(self.forests_, self.groups_, strict=True)):
            rows = np.flatnonzero(best == k)
            if len(rows):
                out.place(rows, forest.top_reasons(X.iloc[rows][cols], top=top),
                          np.array([position[c] for c in cols], dtype=np.intp))
        return out
