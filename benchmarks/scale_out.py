"""Benchmark: detection and scoring of one night, whole against split by county (a benchmark, not a test).

    .venv/bin/python -m benchmarks.scale_out [--people 20000] [--months 12] [--seed 5] [--db URL]

Generates the city once (var/bench/city-N-M-S), loads it with `risk run` (no digests), then times the
whole night's detection and scoring and the same steps one part at a time, in sequence: the largest part
is what one worker per county would wait for, the sum what all the workers do together.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from risk import pipeline
from risk.settings import Settings
from risk.synth import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--db", help="warehouse URL (default: a SQLite file beside the city)")
    args = ap.parse_args()
    out = Path(f"var/bench/city-{args.people}-{args.months}-{args.seed}").resolve()
    if not (out / "landing").is_dir():
        generate(out, people=args.people, months=args.months, seed=args.seed)
    settings = Settings(database_url=args.db or f"sqlite:///{out / 'w.db'}", var_dir=out / "var")
    pipeline.run(settings, out / "landing", send_digests=False)
    parts = pipeline.detection_parts(settings)
    print(f"{args.people:,} people × {args.months} months, {len(parts)} parts, {settings.database_url}")

    t = time.monotonic()
    pipeline.detect(settings)
    print(f"detection whole        {time.monotonic() - t:7.1f} s")
    times = []
    for county in parts:
        t = time.monotonic()
        pipeline.detect(settings, county=county)
        times.append(time.monotonic() - t)
    print(f"detection split        largest part {max(times):6.1f} s, sum {sum(times):6.1f} s")

    t = time.monotonic()
    pipeline.score(settings)
    print(f"scoring whole          {time.monotonic() - t:7.1f} s")
    plan = pipeline.start_scoring(settings)
    times = []
    for county in parts:
        t = time.monotonic()
        pipeline.score_county(settings, plan, county)
        times.append(time.monotonic() - t)
    t = time.monotonic()
    pipeline.finish_scoring(settings, plan)
    print(f"scoring split          largest part {max(times):6.1f} s, sum {sum(times):6.1f} s, "
          f"city-wide step {time.monotonic() - t:5.1f} s")


if __name__ == "__main__":
    main()
