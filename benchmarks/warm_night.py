"""Benchmark (issue 11): what the next night costs against its backfill when no start-up is paid, as in a process
that outlives a night (a long-lived worker).

    .venv/bin/python -m benchmarks.warm_night [--city /work/bench/city-20000-12-7] [--until 2025-12-01] [--work DIR]

The city is one `risk generate` wrote (`benchmarks.ingest --people 20000 --seed 7` generates it). One process
first imports everything a night needs (pandas, Great Expectations with every suite loaded, scikit-learn, skops),
then runs the backfill (`risk run --until`) and the next night (`risk run`) on one SQLite warehouse, each
timed apart. The model the backfill trained is dropped before the night, so the night loads it from the
warehouse as a new process would. Prints the seconds of each and their ratio, with each run's steps, and the
peak resident memory of the process.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--city", default="/work/bench/city-20000-12-7", help="a folder `risk generate` wrote")
    ap.add_argument("--until", default="2025-12-01", help="the backfill's last delivery day")
    ap.add_argument("--work", default="var/bench/warm-night", help="a folder for the warehouse (emptied first)")
    args = ap.parse_args()

    started = time.monotonic()
    import sklearn.ensemble  # noqa: F401
    import skops.io  # noqa: F401

    from risk import pipeline
    from risk.ingest import checks
    from risk.scoring import features, nightly, registry  # noqa: F401
    from risk.settings import Settings

    checks.warm_up()
    print(f"imports and suites, paid once: {time.monotonic() - started:.2f} s", flush=True)

    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["RISK_VAR_DIR"] = str(work / "var")
    settings = Settings.load(db=f"sqlite:///{work / 'warehouse.db'}", var_dir=work / "var")
    landing = Path(args.city) / "landing"

    t = time.monotonic()
    backfill = pipeline.run(settings, landing, until=args.until, send_digests=False)
    backfill_s = time.monotonic() - t
    print(f"backfill {backfill_s:.2f} s {backfill.steps}", flush=True)
    registry._loaded.clear()  # the night loads the model as a new process would
    t = time.monotonic()
    night = pipeline.run(settings, landing, send_digests=False)
    night_s = time.monotonic() - t
    print(f"next night {night_s:.2f} s {night.steps}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"next night ÷ backfill: {night_s / backfill_s:.2f}; peak {peak:,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
