"""Benchmark (`make bench`): a backfill and the next night, DuckDB against `risk run` on SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.ingest [--people 100000] [--months 12] [--seed 1] [--million] [--no-pg] [--no-sqlite]
    .venv/bin/python -m benchmarks.ingest --landing ../shared/spec/sample/landing
    .venv/bin/python -m benchmarks.ingest --million --night-only   # the next night again, from a --keep run

A benchmark, not a test. It generates the city once (var/bench/city-N-M-S), then, in one command so that a
noisy machine slows every column alike:
- backfill: every delivery day before the next night's; `risk run --until <that day>` on an empty warehouse;
- next night: the last delivery days that together bring every kind of fact (`night_days`: in a generated
  city a month of card events with that day's deaths and custody records, and the month's payments,
  which departments deliver on another day), a second `risk run` on the same warehouse: what a night
  costs, taken at its heaviest.
The yardstick (benchmarks/yardstick.py: a plain DuckDB script on one thread that reads the same files and
applies contract §4) runs the same two steps; it keeps nothing between runs, so its next night reads and
judges everything again. Each cell: wall time, rows per second (rows of the days loaded), and the peak
resident memory of the process tree (for PostgreSQL the client's; the server is shared). What each
`risk run` printed (its steps and their seconds) is kept in <work>/logs.

With --keep the warehouses are kept, and so is a copy of each as the backfill left it (bench-N-backfill.db
with its var folder, the PostgreSQL database risk_bench_N_backfill): --night-only then measures the next
night again from that copy, without the backfill (a million-person backfill takes the better part of an hour).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RISK = ROOT / ".venv" / "bin" / "risk"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Measured:
    seconds: float
    peak_mib: float
    rows: int
    output: str = ""

    def cell(self, duck: Measured | None = None) -> str:
        rate = self.rows / self.seconds if self.seconds else 0
        ratio = f", {self.seconds / duck.seconds:.1f}× DuckDB" if duck else ""
        return f"{self.seconds:,.1f} s · {rate:,.0f} rows/s · {self.peak_mib:,.0f} MiB{ratio}"


def measured(cmd: list[str], env: dict | None = None, log: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of the process tree, standard output); exits on failure. `log`: the
    command's standard output and error are written there too (risk run's steps and seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
            while not stop.is_set():
                try:
                    rss = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
                    peak = max(peak, rss / 2**20)
                except psutil.Error:
                    pass
                stop.wait(0.05)
        except psutil.Error:
            return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out, err = proc.communicate()
    stop.set()
    t.join()
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n{out}\n{err}", encoding="utf-8")
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-3000:]}")
    return time.monotonic() - started, peak, out


def rows_of(landing: Path, days: list[str]) -> int:
    """Data rows (lines but the header) of the days' files, as the yardstick counts them."""
    import gzip

    total = 0
    for day in days:
        for f in (landing / day).iterdir():
            opener = gzip.open if f.name.endswith(".gz") else open
            with opener(f, "rb") as fh:
                total += max(sum(1 for _ in fh) - 1, 0)
    return total


FACTS = ("card_events", "payments", "deaths", "incarcerations")


def night_days(landing: Path, days: list[str]) -> list[str]:
    """The delivery days the next night loads: the last ones that together bring every kind of fact (a
    month of card events, payments, deaths and custody records; departments deliver them on different
    days), so the night measured is at least as heavy as any real one."""
    night: list[str] = []
    brought: set[str] = set()
    for day in reversed(days[1:]):
        night.insert(0, day)
        brought |= {p.name.split(".")[0] for p in (landing / day).iterdir()}
        if brought.issuperset(FACTS):
            break
    return night


def duckdb(landing: Path, until: str | None) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "benchmarks.yardstick", str(landing)] + (["--until", until] if until else [])
    seconds, peak, _ = measured(cmd)
    return seconds, peak


def risk_run(landing: Path, db_url: str, var: Path, until: str | None, log: Path | None = None) -> tuple[float, float]:
    env = {**os.environ, "RISK_VAR_DIR": str(var)}
    cmd = [str(RISK), "run", "--landing", str(landing), "--db", db_url, "--outbox", str(var / "outbox")]
    seconds, peak, _ = measured(cmd + (["--until", until] if until else []), env, log)
    return seconds, peak


def fresh_pg(name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def backfilled(name: str, url: str, var: Path, save: bool) -> str:
    """Save (save=True) or restore the warehouse and var folder as the backfill left them; the URL to use."""
    from sqlalchemy import create_engine, text

    copy_var = var.with_name(var.name + "-backfill")
    src, dst = (var, copy_var) if save else (copy_var, var)
    if not src.is_dir():
        sys.exit(f"no kept backfill at {src}: run once with --keep first")
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    if name == "SQLite":
        live = Path(url.removeprefix("sqlite:///"))
        copy = live.with_name(live.stem + "-backfill.db")
        a, b = (live, copy) if save else (copy, live)
        for suffix in ("-wal", "-shm"):
            Path(f"{b}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(a, b)
        return url
    live_db = url.rsplit("/", 1)[1]
    a, b = (live_db, live_db + "_backfill") if save else (live_db + "_backfill", live_db)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{b}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{b}" TEMPLATE "{a}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{live_db}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--million", action="store_true", help="1,000,000 people (overrides --people)")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--landing", type=Path, help="use this landing instead of generating a city")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--no-pg", action="store_true", help="leave PostgreSQL out")
    ap.add_argument("--no-sqlite", action="store_true", help="leave SQLite out")
    ap.add_argument("--keep", action="store_true",
                    help="keep the warehouses (SQLite file, PostgreSQL database) and a copy as the backfill left them")
    ap.add_argument("--night-only", action="store_true",
                    help="measure only the next night again, from the copy a --keep run left")
    a = ap.parse_args()
    people = 1_000_000 if a.million else a.people
    a.work.mkdir(parents=True, exist_ok=True)
    if a.landing:
        landing, label = a.landing.resolve(), str(a.landing)
    else:
        city = a.work / f"city-{people}-{a.months}-{a.seed}"
        landing = city / "landing"
        label = f"generated city, {people:,} people, {a.months} months, seed {a.seed}"
        if not landing.is_dir():
            print(f"generating {label} …", flush=True)
            g, gpeak, _ = measured([str(RISK), "generate", "--out", str(city), "--people", str(people),
                                    "--months", str(a.months), "--seed", str(a.seed)])
            print(f"  generated in {g:,.1f} s, peak {gpeak:,.0f} MiB")
    days = sorted(p.name for p in landing.iterdir() if p.is_dir())
    night = night_days(landing, days)
    before = days[-len(night) - 1]
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    backfill_rows, night_rows = rows_of(landing, days[:-len(night)]), rows_of(landing, night)
    print(f"landing: {label}, {len(days)} delivery days, {size / 2**20:,.0f} MiB on disk")
    print(f"backfill: {days[0]} … {before} ({backfill_rows:,} rows); next night: {', '.join(night)} "
          f"({night_rows:,} rows)")

    results: dict[str, dict[str, Measured]] = {}
    print("DuckDB (1 thread) …", flush=True)
    results["DuckDB"] = {}
    if not a.night_only:
        s, p = duckdb(landing, before)
        results["DuckDB"]["backfill"] = Measured(s, p, backfill_rows)
    s, p = duckdb(landing, None)
    results["DuckDB"]["next"] = Measured(s, p, night_rows)
    print("  " + "; ".join(f"{step} {m.cell()}" for step, m in results["DuckDB"].items()), flush=True)

    # warehouses named by the city's size: a 100,000-person run leaves a million-person one alone
    sqlite_file, pg_name = a.work / f"bench-{people}.db", f"risk_bench_{people}"
    backends = [] if a.no_sqlite else [("SQLite", lambda: f"sqlite:///{sqlite_file}")]
    if not a.no_pg:
        backends.append(("PostgreSQL", lambda: fresh_pg(pg_name)))
    for name, make_url in backends:
        var = a.work / f"var-{name.lower()}-{people}"
        print(f"risk run on {name} …", flush=True)
        results[name] = {}
        if a.night_only:
            url = backfilled(name, f"sqlite:///{sqlite_file}" if name == "SQLite"
                             else PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}", var, save=False)
        else:
            if name == "SQLite":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{sqlite_file}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(var, ignore_errors=True)
            url = make_url()
            s, p = risk_run(landing, url, var, before, a.work / "logs" / f"{name.lower()}-{people}-backfill.log")
            results[name]["backfill"] = Measured(s, p, backfill_rows)
            if a.keep:
                backfilled(name, url, var, save=True)
        s, p = risk_run(landing, url, var, None, a.work / "logs" / f"{name.lower()}-{people}-next.log")
        results[name]["next"] = Measured(s, p, night_rows)
        print("  " + "; ".join(f"{step} {m.cell(results['DuckDB'].get(step) if step == 'backfill' else None)}"
                               for step, m in results[name].items()), flush=True)
        if not a.keep and name == "PostgreSQL":
            from sqlalchemy import create_engine, text

            with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))

    names = list(results)
    print()
    print(f"{label}: backfill {backfill_rows:,} rows, next night {night_rows:,} rows")
    print()
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    duck = results["DuckDB"]
    if not a.night_only:
        print("| backfill | " + " | ".join(results[n]["backfill"].cell(None if n == "DuckDB" else duck["backfill"])
                                           for n in names) + " |")
    print("| next night | " + " | ".join(results[n]["next"].cell() for n in names) + " |")
    if not a.night_only:
        print("| next night ÷ backfill | " + " | ".join(
            f"{results[n]['next'].seconds / results[n]['backfill'].seconds:.2f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
