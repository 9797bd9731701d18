"""Benchmark: detection and scoring of one night, whole against split by county (a benchmark, not a test).

    .venv/bin/python -m benchmarks.scale_out [--people 20000] [--months 12] [--seed 5] [--db URL]

Generates the city once (var/bench/city-N-M-S), loads it with `risk run` (no digests) up to the day before
its last delivery day, then loads that last day (a month of card events and the day's deaths). Detection
is timed twice, whole and split: as a first detection (the warehouse's marks set aside: everything is
decided again) and as that night's detection (only the people the last day touched). Split means what the
nightly DAG does one worker at a time: its find_parts step, then every county part in turn; the sum is
what all the workers do together, the largest part what one worker per county waits for. Detection runs in
transactions that are rolled back. Then the night's scoring, whole and one part at a time.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.detection import split, whole
from risk import detect, pipeline
from risk.db import gateway
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
    days = pipeline.delivery_days(out / "landing")
    pipeline.run(settings, out / "landing", until=days[-2], send_digests=False)
    if days[-1] not in pipeline.loaded_days(settings):
        pipeline.load_day(settings, out / "landing", days[-1])
    with gateway.transaction(settings.database_url) as conn:
        parts = detect.parts(conn)  # not pipeline.detection_parts: the night's city-wide step is timed below
    print(f"{args.people:,} people × {args.months} months, {len(parts)} parts, {settings.database_url}")

    for first, what in ((True, "first detection"), (False, f"the night of {days[-1]}")):
        print(f"detection, {what}:")
        whole(settings.database_url, days[-1], first=first, label="whole")
        split(settings.database_url, days[-1], first=first)

    pipeline.detect(settings)
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
