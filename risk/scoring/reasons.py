"""Why a row scored high, as arrays: the isolation each feature did and the top reasons of every row.

`BehaviourForest.explain` defines what a reason is (isolation share, robust z-score, tie rules); this
module computes it for many rows at once, without a Python object per row, so that a city of a million
people can get its top features in one pass:

- `isolation_shares`: per tree, every node's bits of isolation, summed from the root down to each leaf
  and credited to the feature each split used (a few thousand numbers per tree), are looked up at the
  leaf each row reaches (`Tree.apply`, the same walk scoring does). The sums are taken in the order a
  row's path visits the nodes, root first, then tree after tree, which is the order in which adding up
  the row's path node by node (`Tree.decision_path`) takes them: the shares are equal to the bit.
- `rank`: the `top` columns of each row by share, then |z|, then column order, as one stable sort per
  key over the whole array (the last key sorted first).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROWS_AT_ONCE = 65_536  # rows per block: the per-tree lookups stay in cache, memory stays flat


@dataclass(frozen=True)
class Reason:
    """One feature behind a row's score.

    isolation_share: the share of the row's isolation (in the forest's trees) done by splits on this
    feature, 0-1. robust_z: (value - median) / scale of the training data, signed; ±inf when the feature
    was constant in training and the value differs from that constant.
    """

    feature: str
    value: float
    median: float
    robust_z: float
    isolation_share: float


@dataclass(frozen=True)
class TopReasons:
    """The top reasons of every row, each field of shape (n_rows, width), most important first.

    `columns` are positions in the model's features; -1 marks no reason (a row explained by a group of
    fewer features than `width`), its numbers are NaN."""

    columns: NDArray[np.intp]
    values: NDArray[np.float64]
    medians: NDArray[np.float64]
    robust_z: NDArray[np.float64]
    isolation_share: NDArray[np.float64]

    @classmethod
    def empty(cls, rows: int, width: int) -> TopReasons:
        return cls(np.full((rows, width), -1, dtype=np.intp),
                   *(np.full((rows, width), np.nan) for _ in range(4)))

    def place(self, rows: NDArray[np.intp], part: TopReasons, columns: NDArray[np.intp]) -> None:
        """Write `part` (the reasons of `rows`, its columns numbered in `columns`) into these rows."""
        width = part.columns.shape[1]
        self.columns[rows, :width] = columns[part.columns]
        for name in ("values", "medians", "robust_z", "isolation_share"):
            getattr(self, name)[rows, :width] = getattr(part, name)

    def take(self, rows: NDArray[np.intp]) -> TopReasons:
        return TopReasons(self.columns[rows], self.values[rows], self.medians[rows], self.robust_z[rows],
                          self.isolation_share[rows])

    def as_lists(self, names: list[str]) -> list[list[Reason]]:
        """One list of `Reason`s per row (a Python object per reason: for the few rows that need them)."""
        return [[Reason(names[c], v, m, z, s) for c, v, m, z, s in zip(*row, strict=True) if c >= 0]
                for row in zip(self.columns.tolist(), self.values.tolist(), self.medians.tolist(),
                               self.robust_z.tolist(), self.isolation_share.tolist(), strict=True)]


def top_reasons(forest: Any, X: NDArray[np.float64], medians: NDArray[np.float64], scales: NDArray[np.float64],
                top: int) -> TopReasons:
    """The `top` reasons of every row of X (checked, float64) in a fitted `IsolationForest`, whose training
    data had these robust medians and scales; a block of rows at a time."""
    n_rows, n_features = X.shape
    width = min(top, n_features)
    out = TopReasons.empty(n_rows, width)
    paths = [_bits_along_paths(tree.tree_, features, n_features)
             for tree, features in zip(forest.estimators_, forest.estimators_features_, strict=True)]
    for first in range(0, n_rows, ROWS_AT_ONCE):
        block = X[first:first + ROWS_AT_ONCE]
        shares = isolation_shares(forest, block, paths)
        z = robust_z(block, medians, scales)
        order = rank(shares, z, width)
        rows = np.arange(first, first + len(block))
        out.columns[rows] = order
        out.values[rows] = np.take_along_axis(block, order, axis=1)
        out.medians[rows] = medians[order]
        out.robust_z[rows] = np.take_along_axis(z, order, axis=1)
        out.isolation_share[rows] = np.take_along_axis(shares, order, axis=1)
    return out


def isolation_shares(forest: Any, X: NDArray[np.float64], paths: list[NDArray[np.float64]] | None = None
                     ) -> NDArray[np.float64]:
    """(n_rows, n_features): each feature's share of the bits of isolation over all trees."""
    n_rows, n_features = X.shape
    X32 = np.ascontiguousarray(X, dtype=np.float32)  # what the trees' Cython code takes
    if paths is None:
        paths = [_bits_along_paths(tree.tree_, features, n_features)
                 for tree, features in zip(forest.estimators_, forest.estimators_features_, strict=True)]
    bits = np.zeros((n_rows, n_features))
    for tree_model, features, along in zip(forest.estimators_, forest.estimators_features_, paths, strict=True):
        # As in IsolationForest: a tree sees a column subset only when max_features < n_features;
        # with all features, `features` is a permutation that is not applied.
        X_tree = X32 if len(features) == n_features else np.ascontiguousarray(X32[:, features])
        np.add(bits, np.take(along, tree_model.tree_.apply(X_tree), axis=0), out=bits)
    total = bits.sum(axis=1, keepdims=True)
    return np.divide(bits, total, out=np.zeros_like(bits), where=total > 0)


def rank(shares: NDArray[np.float64], z: NDArray[np.float64], top: int) -> NDArray[np.intp]:
    """(n_rows, top): per row, the columns by share (descending), then |z| (descending), then column order.
    Adding 0.0 turns -0.0 into 0.0, so that equal keys compare equal whatever the sort."""
    by_z = np.argsort(-np.abs(z) + 0.0, axis=1, kind="stable")
    by_share = np.argsort(-np.take_along_axis(shares, by_z, axis=1) + 0.0, axis=1, kind="stable")
    return np.take_along_axis(by_z, by_share, axis=1)[:, :top]


def robust_z(X: NDArray[np.float64], median: NDArray[np.float64], scale: NDArray[np.float64]) -> NDArray[np.float64]:
    offset = X - median
    with np.errstate(divide="ignore", invalid="ignore"):
        z = offset / scale
        return np.where(scale > 0, z, np.where(offset == 0, 0.0, np.sign(offset) * np.inf))


def _bits_along_paths(tree: Any, features: NDArray[np.intp], n_features: int) -> NDArray[np.float64]:
    """(node_count, n_features): for every node, the bits of isolation done on the way from the root to
    it, per feature (the column its parent split on gets log2(rows in parent / rows in node)). Nodes are
    filled level by level, a child from its parent, so each sum runs root first."""
    left, right = tree.children_left, tree.children_right
    split = np.flatnonzero(left != -1)
    parent = np.zeros(tree.node_count, dtype=np.intp)
    parent[left[split]] = split
    parent[right[split]] = split
    rows_in = tree.n_node_samples.astype(np.float64)
    node_bits = np.log2(rows_in[parent] / rows_in)
    node_feature = np.asarray(features, dtype=np.intp)[np.maximum(tree.feature[parent], 0)]
    along = np.zeros((tree.node_count, n_features))
    level = np.flatnonzero(left[:1] != -1)  # the root (node 0), when it splits
    while len(level):
        children = np.concatenate([left[level], right[level]])
        along[children] = along[parent[children]]
        along[children, node_feature[children]] += node_bits[children]
        level = children[left[children] != -1]
    return along
