"""Benchmark: a night of fund_risk_nightly with the CeleryExecutor, one Celery worker against two (a
benchmark, not a test).

    .venv/bin/python -m benchmarks.workers [--people 20000] [--months 12] [--seed 5] [--workers 1 2] [--repeat 1]
    .venv/bin/python -m benchmarks.workers --landing /work/bench/city-100000-12-1/landing [--parts 2] [--backfill]

Generates the city once (var/bench/city-N-M-S; or takes --landing) and loads every delivery day but the
last into a PostgreSQL warehouse with `risk run` (once: the database `bench_celery_<city>` is kept and
reused as a template). Then, for each worker count, in turn: a copy of that warehouse and a metadata
database of its own, the api-server, scheduler, dag-processor and that many Celery workers (one task at a
time each, on this run's own Redis queue) started natively by testbed.services, and the DAG triggered
through the REST API for the last delivery day (a month of card events, that day's deaths and custody
records): the night's load, detection and scoring in --parts parts, the report and the digests (to files).
Wall time is the run's, from its start to its end as Airflow records them. --backfill: first the same for
the whole backfill (every day but the last, on an empty warehouse). The yardstick, `risk run` for the same
night on a copy of the same warehouse, runs first.

Peak memory: the largest sum of the resident sets of every process the Airflow services started (workers,
their task processes, scheduler, api-server, dag-processor), sampled twice a second, and the largest
single task process; beside them the PostgreSQL backends serving the warehouse. The machine's load
average is printed before and after each run: on a shared machine, repeat and read medians.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

from benchmarks import cities
from benchmarks.ingest import PG_ADMIN, risk_run
from risk.ingest import delivery
from risk.orchestration.local import DAG_ID
from testbed.services import CeleryWorkers, airflow_services, trigger_and_wait

RUN_TIMEOUT = 4 * 3600.0


@dataclass
class Peak:
    """The largest resident sets seen while a run went on (MiB)."""
    airflow: float = 0.0  # every process of the services' sessions together
    task: float = 0.0  # the largest single process
    postgres: float = 0.0  # the warehouse's PostgreSQL backends together
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def watch(self, pids, warehouse: str) -> threading.Thread:
        def sample() -> None:
            admin = create_engine(PG_ADMIN)
            with admin.connect() as conn:
                while not self.stop.is_set():
                    rss = [_rss(pid) for pid in pids()]
                    backends = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                                            {"d": warehouse}).scalars().all()
                    self.airflow = max(self.airflow, sum(rss))
                    self.task = max(self.task, max(rss, default=0.0))
                    self.postgres = max(self.postgres, sum(_rss(pid) for pid in backends))
                    self.samples += 1
                    conn.rollback()
                    self.stop.wait(0.5)
            admin.dispose()

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        return thread

    def __str__(self) -> str:
        return (f"peak RSS: Airflow and workers {self.airflow:,.0f} MiB, largest process {self.task:,.0f} MiB, "
                f"warehouse backends {self.postgres:,.0f} MiB")


def _rss(pid: int) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return 0.0


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def _admin():
    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")


def pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def create_db(name: str, template: str | None = None) -> str:
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine.dispose()
    return pg_url(name)


def drop_db(name: str) -> None:
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def base_warehouse(landing: Path, until: str, var: Path) -> str:
    """The database holding every day up to `until` (made once with `risk run`, then kept)."""
    name = "bench_celery_" + hashlib.sha256(f"{landing}|{until}".encode()).hexdigest()[:10]
    engine = _admin()
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    engine.dispose()
    if exists and (var / "models").is_dir():
        return name
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    url = create_db(name)
    seconds, peak = risk_run(landing, url, var, until)
    print(f"base warehouse {name}: `risk run --until {until}` {seconds:.0f} s, peak RSS {peak:,.0f} MiB")
    return name


def dag_run(landing: Path, template: str | None, base_var: Path | None, until: str | None, workers: int,
            parts: int, work: Path) -> tuple[float, Peak, dict[str, float], dict]:
    """One DAG run with `workers` Celery workers on a copy of `template` (None: an empty warehouse):
    (wall seconds, peaks, seconds per task summed over its mapped instances, the REST API's run)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    var = work / "var"
    if base_var is not None:
        shutil.copytree(base_var, var, ignore=shutil.ignore_patterns("outbox", "logs"))
    tag = f"{os.getpid()}_{workers}"
    warehouse, metadata = f"bench_celery_w_{tag}", f"bench_celery_m_{tag}"
    conf = {"landing": str(landing), "db": create_db(warehouse, template), "var_dir": str(var),
            "outbox": str(work / "outbox"), "parts": parts, "until": until}
    create_db(metadata)
    env = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", "RISK_VAR_DIR": str(var),
           "AIRFLOW__CORE__PARALLELISM": str(max(4, 2 * workers))}
    peak = Peak()
    try:
        with airflow_services(work / "airflow", pg_url(metadata), env,
                              celery=CeleryWorkers(count=workers, concurrency=1)) as services:
            watcher = peak.watch(services.pids, warehouse)
            result = trigger_and_wait(services, DAG_ID, conf, timeout=RUN_TIMEOUT)
            peak.stop.set()
            watcher.join()
    finally:
        peak.stop.set()
        drop_db(warehouse)
        drop_db(metadata)
    if result.state != "success":
        raise SystemExit(result.describe())
    per_task: dict[str, float] = defaultdict(float)
    for ti in result.task_instances:
        if ti.get("start_date") and ti.get("end_date"):
            per_task[ti["task_id"]] += (_when(ti["end_date"]) - _when(ti["start_date"])).total_seconds()
    seconds = (_when(result.run["end_date"]) - _when(result.run["start_date"])).total_seconds()
    return seconds, peak, dict(per_task), result.run


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cities.add_arguments(ap)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--parts", type=int, default=2, help="conf parts: detection and scoring split into this many")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--backfill", action="store_true", help="also time the backfill through the DAG")
    args = ap.parse_args()
    landing, _ = cities.landing(args)
    work = Path("var/bench/celery").resolve()
    days = delivery.delivery_days(landing)
    night, before = days[-1], days[-2]
    base_var = work / f"base-{hashlib.sha256(str(landing).encode()).hexdigest()[:10]}"
    template = base_warehouse(landing, before, base_var)
    print(f"{landing}: the night of {night}, parts {args.parts}; {_load()}")

    yardstick = []
    for _ in range(args.repeat):
        shutil.rmtree(work / "yardstick", ignore_errors=True)
        shutil.copytree(base_var, work / "yardstick", ignore=shutil.ignore_patterns("outbox", "logs"))
        url = create_db(f"bench_celery_y_{os.getpid()}", template)
        seconds, peak_mib = risk_run(landing, url, work / "yardstick", night)
        drop_db(f"bench_celery_y_{os.getpid()}")
        yardstick.append(seconds)
        print(f"  risk run, the night: {seconds:6.1f} s, peak RSS {peak_mib:,.0f} MiB; {_load()}")

    runs = [("backfill", None, None, before)] if args.backfill else []
    runs.append(("night", template, base_var, night))
    for what, base, var, until in runs:
        walls: dict[int, list[float]] = defaultdict(list)
        for _ in range(args.repeat):
            for workers in args.workers:
                seconds, peak, per_task, run = dag_run(landing, base, var, until, workers, args.parts,
                                                       work / f"run-{workers}")
                walls[workers].append(seconds)
                tasks = ", ".join(f"{task} {s:.0f}" for task, s in sorted(per_task.items(), key=lambda x: -x[1]))
                print(f"  DAG, {what}, {workers} worker(s): {seconds:6.1f} s ({run['start_date']} to "
                      f"{run['end_date']}); {peak}; {_load()}\n"
                      f"    task seconds (summed over mapped instances): {tasks}")
        for workers, seconds in walls.items():
            print(f"{what}, {workers} worker(s): median {statistics.median(seconds):.1f} s of {len(seconds)}"
                  + (f", {statistics.median(seconds) / statistics.median(yardstick):.2f}× risk run"
                     if what == "night" else ""))
    print(f"risk run, the night: median {statistics.median(yardstick):.1f} s")


if __name__ == "__main__":
    main()
