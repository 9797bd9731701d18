"""Benchmark: detection and scoring of one night, whole against split into parts (a benchmark, not a test).

    .venv/bin/python -m benchmarks.scale_out [--people 20000] [--months 12] [--seed 5] [--db URL]
    .venv/bin/python -m benchmarks.scale_out --landing DIR --db URL --var-dir DIR [--parts 2] [--repeat 3]

Generates the city once (var/bench/city-N-M-S; or takes --landing), loads it with `risk run` (no digests) up
to the day before its last delivery day (unless the warehouse holds those days already), then loads that
last day (a month of card events and the day's deaths). Detection is timed twice, whole and split: as a
first detection (the warehouse's marks set aside: everything is decided again) and as that night's
detection (only the people the last day touched). Split means what the nightly DAG does one worker at a
time: its find_parts step, then every part in turn (--parts N: the counties in N groups, as RISK_PARTS
makes them; 0: one county each); the sum is what all the workers do together, the largest part what one
worker per part waits for. Detection runs in transactions that are rolled back. Then the night's scoring,
whole and in parts as the DAG scores them: start_scoring computes the city's features once and shares
them, then one part at a time, each loading the model afresh as a task process of its own does (the
night's detection is not committed: the benchmark can be repeated on the same warehouse).
Every measurement is repeated (--repeat) and printed with the ratio of the parts' sum to the whole;
peak memory is this process's maximum resident set size.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from benchmarks import cities
from benchmarks.detection import memory, split, timed, whole
from risk import pipeline
from risk.db import gateway
from risk.detection import run as detect
from risk.detection import scope
from risk.ingest import delivery as deliveries
from risk.scoring import registry
from risk.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cities.add_arguments(ap)
    ap.add_argument("--db", help="warehouse URL (default: a SQLite file beside the city)")
    ap.add_argument("--var-dir", type=Path, help="the warehouse's models and reports (default: beside the city)")
    ap.add_argument("--parts", type=int, default=2, help="groups of counties (0: one part per county)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    landing, city = cities.landing(args)
    out = city or Path("var/bench/scale-out").resolve()
    settings = Settings(database_url=args.db or f"sqlite:///{out / 'w.db'}",
                        var_dir=(args.var_dir or out / "var").resolve())
    days = deliveries.delivery_days(landing)
    if pipeline.pending_days(settings, landing, until=days[-2]):
        pipeline.run(settings, landing, until=days[-2], send_digests=False)
    if days[-1] not in deliveries.loaded_days(settings):
        pipeline.load_day(settings, landing, days[-1])
    groups = args.parts or None
    with gateway.transaction(settings.database_url) as conn:
        parts = detect.parts(conn) if groups is None else scope.groups(conn, groups)
    print(f"{landing}, {len(parts)} parts, {gateway.safe_url(settings.database_url)}")

    for first, what in ((True, "first detection"), (False, f"the night of {days[-1]}")):
        print(f"detection, {what}:")
        ratios = []
        for n in range(args.repeat):
            seconds = whole(settings.database_url, days[-1], first=first, label=f"whole, run {n + 1}")
            ratios.append(split(settings.database_url, days[-1], first=first, groups=groups) / seconds)
        print(f"  parts / whole: {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})")

    print("scoring (each part loads the model, as a task process does):")
    ratios, cpu_ratios = [], []
    for _ in range(args.repeat):
        registry._loaded.clear()  # a task process starts without a model
        alone, alone_cpu, _ = timed(lambda: pipeline.score(settings))
        started, started_cpu, plan = timed(lambda: pipeline.start_scoring(settings, for_parts=True))
        times, cpus = [], []
        for part in parts:
            registry._loaded.clear()
            seconds, cpu, _ = timed(lambda p=part, q=plan: pipeline.score_counties(settings, q, _counties(p)))
            times.append(seconds)
            cpus.append(cpu)
        finished, finished_cpu, _ = timed(lambda q=plan: pipeline.finish_scoring(settings, q))
        total, total_cpu = started + sum(times) + finished, started_cpu + sum(cpus) + finished_cpu
        ratios.append(total / alone)
        cpu_ratios.append(total_cpu / alone_cpu)
        print(f"  whole {alone:6.1f} s ({alone_cpu:.1f} s CPU); split: start {started:4.1f} s, {len(times)} parts "
              f"sum {sum(times):6.1f} s (largest {max(times):5.1f} s), finish {finished:4.1f} s: {total:6.1f} s "
              f"({total_cpu:.1f} s CPU), {memory()}")
    print(f"  parts / whole: {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}); "
          f"CPU: {', '.join(f'{r:.2f}' for r in cpu_ratios)} (median {statistics.median(cpu_ratios):.2f})")


def _counties(part) -> list[str]:
    """A part as score_counties takes it: a group's counties, or one county."""
    return [part] if isinstance(part, str) else list(part)

if __name__ == "__main__":
    main()
