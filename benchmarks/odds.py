"""Benchmark: BehaviourForest on the ODDS data sets against Liu, Ting and Zhou (ICDM 2008), Table 2.

    .venv/bin/python -m benchmarks.odds [--seeds 5] [--only http,smtp] [--data DIR]

A benchmark, not a test: with the paper's settings (t = 100 trees, ψ = 256, unsupervised: fitted and
scored on all rows, labels used only for the AUC), it prints each data set's ROC-AUC (mean of the seeds
0..N-1; higher score = more anomalous, y = 1 anomalies) beside the paper's iForest AUC, the difference,
whether it is within 0.03, and the time per seed to fit (this includes scoring the training rows once, for
`train_scores_`) and to score. Exit status 1 when a data set present misses the 0.03 band.

The data sets and how they differ from the paper's are in ../shared/datasets/odds/SOURCES.md. That file
lists no AUCs, so the paper's values below are Table 2's iForest column, as published.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from sklearn.metrics import roc_auc_score

from risk.scoring.model import BehaviourForest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "odds"
BAND = 0.03


@dataclass(frozen=True)
class DataSet:
    name: str  # as in the paper
    file: str | None  # in DATA; None when not available
    paper_auc: float  # Table 2, iForest


DATASETS = (
    DataSet("Http", "16_http.npz", 1.00),
    DataSet("ForestCover", "10_cover.npz", 0.88),
    DataSet("Mulcross", None, 0.97),  # synthetic; not in ODDS/ADBench (SOURCES.md)
    DataSet("Smtp", "34_smtp.npz", 0.88),
    DataSet("Shuttle", "32_shuttle.npz", 1.00),
    DataSet("Mammography", "23_mammography.npz", 0.86),
    DataSet("Annthyroid", "2_annthyroid.npz", 0.82),
    DataSet("Satellite", "30_satellite.npz", 0.71),
    DataSet("Pima", "29_Pima.npz", 0.67),
    DataSet("Breastw", "4_breastw.npz", 0.99),
    DataSet("Arrhythmia", "arrhythmia.mat", 0.80),
    DataSet("Ionosphere", "18_Ionosphere.npz", 0.85),
)


def read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(X as float64, y as 0/1 int) from an ADBench .npz or an ODDS .mat."""
    if path.suffix == ".mat":
        mat = scipy.io.loadmat(path)
        X, y = mat["X"], mat["y"]
    else:
        with np.load(path, allow_pickle=False) as npz:
            X, y = npz["X"], npz["y"]
    return np.asarray(X, dtype=np.float64), np.asarray(y).ravel().astype(int)


@dataclass(frozen=True)
class Result:
    aucs: list[float]
    fit_seconds: float  # mean per seed
    score_seconds: float


def run(X: np.ndarray, y: np.ndarray, seeds: int) -> Result:
    aucs, fit_times, score_times = [], [], []
    for seed in range(seeds):
        started = time.perf_counter()
        model = BehaviourForest(n_estimators=100, max_samples=256, random_state=seed).fit(X)
        fitted = time.perf_counter()
        scores = model.score_samples(X)
        scored = time.perf_counter()
        aucs.append(float(roc_auc_score(y, scores)))
        fit_times.append(fitted - started)
        score_times.append(scored - fitted)
    return Result(aucs, float(np.mean(fit_times)), float(np.mean(score_times)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.odds", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="random_state 0..N-1, AUC averaged (default 5)")
    parser.add_argument("--only", default="", help="comma-separated data set names (default: all)")
    parser.add_argument("--data", type=Path, default=DATA, help=f"folder of the data files (default {DATA})")
    args = parser.parse_args(argv)
    wanted = {name.strip().lower() for name in args.only.split(",") if name.strip()}

    header = (
        f"{'data set':<12} {'n':>7} {'d':>4} {'anom%':>6}  {'AUC':>6} {'sd':>6} {'min':>6} {'max':>6}  "
        f"{'paper':>5} {'diff':>6}  {'±0.03':<5} {'fit s':>6} {'score s':>7}"
    )
    print(f"BehaviourForest (t=100, ψ=256), ROC-AUC mean of seeds 0..{args.seeds - 1}, vs Liu, Ting & Zhou 2008 Table 2")
    print(header)
    print("-" * len(header))
    misses = []
    started = time.perf_counter()
    for data_set in DATASETS:
        if wanted and data_set.name.lower() not in wanted:
            continue
        path = args.data / data_set.file if data_set.file else None
        if path is None or not path.exists():
            print(f"{data_set.name:<12} {'':>7} {'':>4} {'':>6}  {'n/a':>6} {'':>6} {'':>6} {'':>6}  "
                  f"{data_set.paper_auc:>5.2f} {'':>6}  {'—':<5} (no data file)")
            continue
        X, y = read(path)
        result = run(X, y, args.seeds)
        auc = float(np.mean(result.aucs))
        diff = auc - data_set.paper_auc
        within = abs(diff) <= BAND
        if not within:
            misses.append(data_set.name)
        print(
            f"{data_set.name:<12} {X.shape[0]:>7} {X.shape[1]:>4} {100 * y.mean():>6.2f}  {auc:>6.3f} "
            f"{np.std(result.aucs):>6.3f} {min(result.aucs):>6.3f} {max(result.aucs):>6.3f}  "
            f"{data_set.paper_auc:>5.2f} {diff:>+6.3f}  {'yes' if within else 'NO':<5} "
            f"{result.fit_seconds:>6.2f} {result.score_seconds:>7.2f}",
            flush=True,
        )
    print(f"total {time.perf_counter() - started:.1f} s; fit and score are seconds per seed (fit includes scoring "
          "the training rows once)")
    if misses:
        print(f"outside ±{BAND}: {', '.join(misses)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
