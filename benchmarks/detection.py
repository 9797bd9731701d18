"""Benchmark: detection on a loaded warehouse, per rule (a benchmark, not a test).

    .venv/bin/python -m benchmarks.detection --db URL [--landing DIR] [--repeat 2] [--parts [N]]
    .venv/bin/python -m benchmarks.detection --db URL --night 2026-01-01 --landing DIR [--parts [N]]

Whole (the default): every rule over the whole city, as a first detection does (the warehouse's marks are
set aside), timed per rule; beside it DuckDB (one thread) applying the same rules to the same landing files
(benchmarks.yardstick; its loading is not timed, only its rule queries), when --landing is given.
--night DAY: loads that delivery day from --landing (when it is not loaded yet) into a warehouse that has
had a detection, and times the next detection: the night's.
--parts: then the same detection split by county, the parts one after another as one worker would run
them, beginning with the city-wide step the DAG's find_parts task does: their sum against the whole (the
work all workers do together), and the largest part. --parts N: the counties in N groups, as the DAG
splits them (RISK_PARTS).

Every measurement runs in a transaction that is rolled back, so it can be repeated on the same warehouse.
Peak memory is this process's maximum resident set size and, on PostgreSQL, that of the server process
serving it (sampled; it includes the shared buffers that process touched). CPU is this process's (on SQLite
that is all the work; on PostgreSQL the server's work is not in it).
"""
from __future__ import annotations

import argparse
import inspect
import resource
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import Connection, select, text
from sqlalchemy import inspect as inspect_db

from risk import pipeline
from risk.db import gateway
from risk.db.dialect import Dialect
from risk.db.tables import delivery
from risk.ingest import delivery as deliveries
from risk.settings import Settings


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forget_marks(conn: Connection) -> None:
    """As on a warehouse that never had a detection (the alerts stay: a whole run decides them again)."""
    if "detection_mark" in inspect_db(conn).get_table_names():
        conn.execute(text("DELETE FROM detection_mark"))


SERVER_PEAK: list[float] = [0.0]  # the PostgreSQL backend's peak resident set, MiB (0 on SQLite)


def timed(step, conn: Connection | None = None) -> tuple[float, float, object]:
    """Wall and CPU seconds of `step()`, and its result. On PostgreSQL (given the connection, on this
    machine) the server process serving it is watched too: its peak resident set goes to SERVER_PEAK."""
    stop, watcher = threading.Event(), None
    server = None if conn is None else Dialect.of(conn).server_pid(conn)
    if server is not None:
        backend = psutil.Process(server)

        def watch() -> None:
            while not stop.is_set():
                try:
                    SERVER_PEAK[0] = max(SERVER_PEAK[0], backend.memory_info().rss / 2**20)
                except psutil.Error:
                    return
                stop.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    started, cpu = time.monotonic(), time.process_time()
    result = step()
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    stop.set()
    if watcher is not None:
        watcher.join()
    return seconds, cpu, result


def memory() -> str:
    server = f", PostgreSQL backend peak RSS {SERVER_PEAK[0]:,.0f} MiB" if SERVER_PEAK[0] else ""
    return f"peak RSS {peak_mib():,.0f} MiB{server}"


def show(label: str, seconds: float, cpu: float, outcomes) -> None:
    print(f"  {label}: {seconds:7.1f} s ({cpu:.1f} s CPU in this process), {memory()}")
    for o in outcomes:
        looked = getattr(o, "people", -1)
        scope = "whole city" if looked < 0 else f"{looked:,} people"
        print(f"    {o.rule:22} {o.seconds:7.2f} s  {o.alerts:6,} alerts  ({scope})")


def whole(url: str, as_of: str, first: bool, label: str) -> float:
    from risk.detection import run as detect

    with gateway.engine_for(url).connect() as conn, conn.begin() as tx:
        if first:
            forget_marks(conn)
        seconds, cpu, outcomes = timed(lambda: detect.detect(conn, as_of), conn)
        show(label, seconds, cpu, outcomes)
        tx.rollback()
    return seconds


def split(url: str, as_of: str, first: bool, groups: int | None = None) -> float:
    """Detection in parts (one per county; with `groups`, the counties in that many groups), one after
    another; prints and returns their sum (find_parts included)."""
    from risk.detection import run as detect

    with gateway.engine_for(url).connect() as conn, conn.begin() as tx:
        if first:
            forget_marks(conn)
        counties = detect.parts(conn) if groups is None else _groups(conn, groups)

        def find_parts() -> None:  # what pipeline.detection_parts does (nothing before incremental detection)
            try:
                from risk.detection import scope, touched
                from risk.detection.registry import RULES
            except ImportError:
                return
            scope.translate(conn, RULES)
            touched.forget_seen(conn, detect.parts(conn))

        seconds, cpu, _ = timed(find_parts, conn)
        times, cpus, per_rule = [seconds], [cpu], {}
        for part in counties:
            seconds, cpu, outcomes = timed(lambda p=part: _detect_part(detect, conn, as_of, p), conn)
            times.append(seconds)
            cpus.append(cpu)
            for o in outcomes:
                per_rule[o.rule] = per_rule.get(o.rule, 0.0) + o.seconds
        tx.rollback()
    print(f"  find_parts and {len(counties)} parts: sum {sum(times):.1f} s ({sum(cpus):.1f} s CPU in this process), "
          f"find_parts {times[0]:.1f} s, largest part {max(times[1:]):.1f} s, {memory()}")
    for rule, s in per_rule.items():
        print(f"    {rule:22} {s:7.2f} s (sum over the parts)")
    return sum(times)


def _groups(conn: Connection, n: int) -> list:
    from risk.detection import scope

    return scope.groups(conn, n)


def _detect_part(detect, conn: Connection, as_of: str, part):
    """One part's detection: a county, or a group of counties (on code from before parts were groups, a
    county alone)."""
    if "part" not in inspect.signature(detect.detect).parameters:
        return detect.detect(conn, as_of, county=part)
    return detect.detect(conn, as_of, part=[part] if isinstance(part, str) else part)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--landing", type=Path, help="the city's landing folder (for DuckDB, and for --night)")
    ap.add_argument("--night", help="load this delivery day, then time the night's detection")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--parts", nargs="?", type=int, const=0, default=None, metavar="N",
                    help="also time the detection split by county (N: in N groups of counties)")
    args = ap.parse_args()
    settings = Settings(database_url=args.db, var_dir=Path("var/bench/detection"))
    if args.night:
        if not args.landing:
            ap.error("--night needs --landing")
        if args.night not in deliveries.loaded_days(settings):
            seconds, _, _ = timed(lambda: pipeline.load_day(settings, args.landing, args.night))
            print(f"loaded {args.night} in {seconds:.1f} s")
    with gateway.transaction(args.db) as conn:
        as_of = conn.execute(select(delivery.c.day).order_by(delivery.c.day.desc()).limit(1)).scalar()
        people = conn.execute(text("SELECT COUNT(*) FROM recipient")).scalar()
    kind = f"the night of {args.night}" if args.night else "whole, as a first detection"
    print(f"{gateway.safe_url(args.db)}: {people:,} recipients, detection as of {as_of} ({kind})")
    for n in range(args.repeat):
        seconds = whole(args.db, as_of, first=not args.night, label=f"run {n + 1}")
        if args.parts is not None:
            parts = split(args.db, as_of, first=not args.night, groups=args.parts or None)
            print(f"  parts / whole: {parts / seconds:.2f}")
    if args.landing and not args.night:
        from benchmarks import yardstick

        result = yardstick.run(args.landing, threads=1)
        total = sum(result["rule_seconds"].values())
        print(f"  DuckDB (1 thread), the same rules on the same files: {total:.1f} s")
        for rule, s in result["rule_seconds"].items():
            print(f"    {rule:22} {s:7.2f} s  {result['alerts'][rule]:6,} alerts")


if __name__ == "__main__":
    main()
