"""Benchmark: behaviour scoring of a loaded warehouse, stage by stage, with time and peak memory (a benchmark,
not a test).

    .venv/bin/python -m benchmarks.scoring --db URL [--window-days 90] [--resample 1000000]

Every stage runs in a fresh Python process, as the nightly DAG's tasks do, and is measured from outside:
wall time, CPU time (user + system) and the peak RSS of the stage's process tree (psutil, sampled every
20 ms; the database server's own processes are not counted). CPU time is the steadier figure on a
shared machine. The stages, on the window ending at the newest delivery day:

  training     registry.train: features, the group forests fitted, their skops bytes registered
  baseline     imports and that model loaded (sha256 check, skops): what every stage carries
  features     compute_features for the whole city
  scoring      nightly.score_counties for the whole city: model, features, scores, everyone's top features,
               the K candidates' explanations, written to score_part
  explanation  inside that: everyone's top reasons and their JSON, the K candidates' Reasons (timed alone,
               after the features and scores the stage computes first)
  finish       nightly.finish: the city-wide ranking, the night's distribution, the anomaly alerts

The warehouse is left as it was found: training and finish roll back their transactions (the trained
model is exported to a temporary folder first, and the other stages load it from there as they would a
model registered before migration 0015: see registry.model_bytes), and the score_part rows that scoring
commits are deleted at the end.

The baseline shows what every stage carries before it holds anyone (the interpreter, the libraries,
the model). To estimate a larger city, run it on two warehouses of different sizes: every structure a
stage holds grows with the number of people (a row per person at every step), so peak RSS is close to
a straight line in the number of people. With --resample N the model's stages also run on N people
resampled from this warehouse's features with a little noise (fit, scores and everyone's top reasons,
their JSON): what an N-row matrix costs the model without a loaded city of that size.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from pathlib import Path

import psutil
from sqlalchemy import delete, func, select

from risk.db import gateway

STAGES = ("training", "baseline", "features", "scoring", "explanation", "finish")  # training makes the model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a loaded warehouse's URL")
    ap.add_argument("--window-days", type=int, default=90)
    ap.add_argument("--resample", type=int, default=0, help="also the model's stages on N resampled people")
    ap.add_argument("--stage", help=argparse.SUPPRESS)  # a child process: run one stage
    ap.add_argument("--state", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.stage:
        return child(a)
    from risk.db.tables import delivery, recipient

    gateway.migrate(a.db)
    with gateway.transaction(a.db) as conn:
        day = conn.execute(select(func.max(delivery.c.day))).scalar()
        people = conn.execute(select(func.count()).select_from(recipient)).scalar() or 0
    if day is None or people == 0:
        print("the warehouse holds nothing to score", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as var:
        state = Path(var) / "state.json"
        state.write_text(json.dumps({"db": a.db, "as_of": day, "window_days": a.window_days, "var": var,
                                     "people": people, "resample": a.resample}))
        print(f"warehouse {gateway.safe_url(a.db)}: {people:,} recipients, as of {day}, "
              f"{a.window_days}-day window")
        results = []
        try:
            for stage in STAGES + (("resampled",) if a.resample else ()):
                print(f"  … {stage}", file=sys.stderr, flush=True)
                results.append((stage, *run_stage(stage, state, a)))
        finally:
            registered = json.loads(state.read_text()).get("registered")
            if registered:
                from risk.db.tables import score_part

                with gateway.transaction(a.db) as conn:
                    conn.execute(delete(score_part).where(score_part.c.model_version == registered["version"]))
    print(f"{'stage':<58}{'wall s':>8}{'CPU s':>8}{'peak RSS MiB':>14}")
    for stage, seconds, cpu, peak, inner in results:
        print(f"{stage:<58}{seconds:>8.1f}{cpu:>8.1f}{peak:>14.0f}")
        for label, inner_seconds in inner.items():
            print(f"{'  ' + label:<58}{inner_seconds:>8.1f}")
    return 0


def run_stage(stage: str, state: Path, a: argparse.Namespace) -> tuple[float, float, float, dict]:
    """Run one stage in a child process; its wall time, CPU time (user + system, the whole process tree),
    the peak RSS (MiB) of its process tree, and the inner timings it reports."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    child = psutil.Popen([sys.executable, "-m", "benchmarks.scoring", "--db", a.db, "--stage", stage,
                          "--state", str(state)], stdout=subprocess.PIPE, text=True)
    peak = 0
    while child.poll() is None:
        try:
            tree = [child, *child.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    out = child.stdout.read() if child.stdout else ""
    if child.returncode:
        raise SystemExit(f"stage {stage} failed ({child.returncode})")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, peak / 2**20, json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------- the stages, each in its own process


@contextmanager
def rolled_back(url: str):
    with gateway.engine_for(url).connect() as conn:
        tx = conn.begin()
        try:
            yield conn
        finally:
            tx.rollback()


def child(a: argparse.Namespace) -> int:
    from risk.scoring import nightly, registry
    from risk.scoring.features import compute_features
    from risk.settings import Settings

    path = Path(a.state)
    state = json.loads(path.read_text())
    as_of, window = date.fromisoformat(state["as_of"]), state["window_days"]
    settings = Settings.load(db=state["db"], var_dir=state["var"])
    registered = registry.Registered(**{**state["registered"], "window_start": date.fromisoformat(
        state["registered"]["window_start"]), "window_end": date.fromisoformat(state["registered"]["window_end"])}
    ) if "registered" in state else None
    k = nightly.candidates_per_part(state["people"], settings.anomaly_budget)
    inner: dict[str, float] = {}
    if a.stage == "training":
        with rolled_back(state["db"]) as conn:
            trained = registry.train(conn, settings, as_of, window_days=window)
            registry.models_dir(settings).mkdir(parents=True, exist_ok=True)
            registry.export(conn, settings, trained, registry.models_dir(settings) / trained.file)
        path.write_text(json.dumps({**state, "registered": asdict(trained)}, default=str))
    elif a.stage == "baseline":
        registry.load_model(settings, registered)
    elif a.stage == "features":
        with rolled_back(state["db"]) as conn:
            compute_features(conn, as_of, window)
    elif a.stage == "scoring":
        with gateway.transaction(state["db"]) as conn:
            nightly.score_counties(conn, settings, registered, as_of, None, k, window)
    elif a.stage == "explanation":
        inner = explanation(settings, registered, as_of, window, k)
    elif a.stage == "finish":
        with rolled_back(state["db"]) as conn:
            nightly.finish(conn, registered, as_of, settings.anomaly_budget)
    elif a.stage == "resampled":
        inner = resampled(settings, as_of, window, state["resample"], k)
    print(json.dumps(inner))
    return 0


def explanation(settings, registered, as_of: date, window: int, k: int) -> dict[str, float]:
    import numpy as np

    from risk.scoring import nightly, registry
    from risk.scoring.features import compute_features

    model = registry.load_model(settings, registered)
    with rolled_back(settings.database_url) as conn:
        X = compute_features(conn, as_of, window)[registered.features]
    t = time.monotonic()
    per_group = model.group_scores(X)
    scored = time.monotonic() - t
    t = time.monotonic()
    reasons = model.top_reasons(X, 3, per_group)
    names = [str(n) for n in model.feature_names_in_]
    nightly._top_features(reasons, names)
    reasons.take(np.argsort(-per_group.max(axis=0), kind="stable")[:k]).as_lists(names)
    return {"scores (six group forests)": scored, "explanation (everyone's top 3, K candidates' reasons)":
            time.monotonic() - t}


def resampled(settings, as_of: date, window: int, n: int, k: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    from risk.scoring import nightly
    from risk.scoring.features import compute_features
    from risk.scoring.grouped import GroupedBehaviourForest

    with rolled_back(settings.database_url) as conn:
        X = compute_features(conn, as_of, window)
    rng = np.random.default_rng(0)
    big = pd.DataFrame(X.to_numpy()[rng.integers(0, len(X), n)] * rng.normal(1.0, 0.01, (n, X.shape[1])),
                       columns=X.columns)
    del X
    timings = {}
    t = time.monotonic()
    model = GroupedBehaviourForest(max_samples=1024, random_state=0).fit(big)
    timings[f"fit on {n:,} resampled"] = time.monotonic() - t
    t = time.monotonic()
    scores, reasons = model.scores_and_reasons(big, 3)
    timings["scores and everyone's top reasons"] = time.monotonic() - t
    t = time.monotonic()
    names = [str(c) for c in model.feature_names_in_]
    nightly._top_features(reasons, names)
    reasons.take(np.argsort(-scores, kind="stable")[:k]).as_lists(names)
    timings["top_features JSON, K candidates' reasons"] = time.monotonic() - t
    return timings


if __name__ == "__main__":
    sys.exit(main())
