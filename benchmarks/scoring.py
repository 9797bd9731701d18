"""Benchmark: behaviour features, training and scoring time and memory (a benchmark, not a test).

    .venv/bin/python -m benchmarks.scoring --db sqlite:///var/bench/bench.db [--million]

Times compute_features on the warehouse, then the production model (GroupedBehaviourForest) fit,
score_samples and explain on its
feature matrix; with --million also on a 1,000,000-row matrix made by resampling those people's features
with a little noise (loading a million-person city is a separate, longer job).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import func, select


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn):
    t = time.monotonic()
    out = fn()
    print(f"  {label:<34} {time.monotonic() - t:7.2f} s   peak RSS {peak_mib():7.0f} MiB", flush=True)
    return out


def main() -> int:
    from risk.db import gateway
    from risk.db.tables import delivery
    from risk.scoring.features import compute_features
    from risk.scoring.grouped import GroupedBehaviourForest

    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--million", action="store_true")
    a = ap.parse_args()
    gateway.migrate(a.db)
    with gateway.transaction(a.db) as conn:
        day = conn.execute(select(func.max(delivery.c.day))).scalar()
        print(f"warehouse {gateway.safe_url(a.db)}, as of {day}")
        X = timed("features (90-day window)", lambda: compute_features(conn, date.fromisoformat(day), 90))
    sets = [(f"{len(X):,} people", X)]
    if a.million:
        rng = np.random.default_rng(0)
        rows = rng.integers(0, len(X), 1_000_000)
        big = X.to_numpy()[rows] * rng.normal(1.0, 0.01, (1_000_000, X.shape[1]))
        sets.append(("1,000,000 people (resampled)", pd.DataFrame(big, columns=X.columns)))
    for label, M in sets:
        print(label)
        model = timed("fit (6 group forests, t=100, psi=1024)",
                      lambda M=M: GroupedBehaviourForest(max_samples=1024, random_state=0).fit(M))
        timed("score_samples", lambda M=M, model=model: model.score_samples(M))
        timed("explain (top 3)", lambda M=M, model=model: model.explain(M, top=3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
