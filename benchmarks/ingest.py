"""Benchmark: `risk run` on a generated city, against DuckDB (one thread) reading the same CSV files.

    .venv/bin/python -m benchmarks.ingest [--people 100000] [--months 12] [--seed 1] [--no-pg]
    .venv/bin/python -m benchmarks.ingest --landing ../shared/spec/sample/landing

A benchmark, not a test: it prints wall time, peak memory (RSS of the whole process tree) and rows per
second per source, for SQLite and PostgreSQL, and the ratio to DuckDB's time. DuckDB is only the yardstick.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RISK = ROOT / ".venv" / "bin" / "risk"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def measured(cmd: list[str], env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS MiB of the process tree, result)."""
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
                stop.wait(0.1)
        except psutil.Error:
            return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out, err = proc.communicate()
    stop.set()
    t.join()
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-3000:]}")
    return time.monotonic() - started, peak, result


def duckdb_yardstick(landing: Path, work: Path) -> tuple[float, float, int]:
    """DuckDB, one thread, reading every CSV file of the landing into a text table of its own."""
    script = f"""
import duckdb, pathlib, time
db = pathlib.Path({str(work / 'yardstick.duckdb')!r}); db.unlink(missing_ok=True)
con = duckdb.connect(str(db)); con.execute("SET threads=1")
rows = 0; t = time.monotonic()
for day in sorted(pathlib.Path({str(landing)!r}).iterdir()):
    for f in sorted(day.iterdir()):
        table = f.name.split('.')[0] + '_' + day.name.replace('-', '')
        con.execute(f"CREATE TABLE {{table}} AS SELECT * FROM read_csv('{{f}}', header=true, all_varchar=true)")
        rows += con.execute(f"SELECT count(*) FROM {{table}}").fetchone()[0]
con.close(); print(rows)
"""
    seconds, peak, result = measured([sys.executable, "-c", script])
    return seconds, peak, int(result.stdout.strip())


def risk_run(landing: Path, db_url: str, var: Path) -> tuple[float, float, dict]:
    env = {**os.environ, "RISK_VAR_DIR": str(var)}
    seconds, peak, _ = measured([str(RISK), "run", "--landing", str(landing), "--db", db_url], env)
    summary = json.loads((var / "runs" / "last-run.json").read_text(encoding="utf-8"))
    return seconds, peak, summary


def per_source(summary: dict) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for day in summary["days"]:
        for f in day["files"]:
            a = out.setdefault(f["source"], {"rows": 0, "seconds": 0.0, "read": 0.0, "validate": 0.0, "store": 0.0})
            a["rows"] += f["read"]
            a["seconds"] += f["seconds"]
            for k, v in f.get("stages", {}).items():
                a[k] += v
    return out


def fresh_pg(name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--landing", type=Path, help="use this landing instead of generating a city")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--no-pg", action="store_true")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.landing:
        landing = a.landing.resolve()
        label = str(a.landing)
    else:
        city = a.work / f"city-{a.people}-{a.months}-{a.seed}"
        landing = city / "landing"
        label = f"generated city, {a.people:,} people, {a.months} months, seed {a.seed}"
        if not landing.is_dir():
            print(f"generating {label} …", flush=True)
            g, gpeak, _ = measured([str(RISK), "generate", "--out", str(city), "--people", str(a.people),
                                    "--months", str(a.months), "--seed", str(a.seed)])
            print(f"  generated in {g:.1f} s (peak {gpeak:.0f} MiB)")
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    print(f"landing: {label} ({size / 2**20:.0f} MiB on disk)")

    print("DuckDB (1 thread) reading the same files …", flush=True)
    duck_s, duck_peak, duck_rows = duckdb_yardstick(landing, a.work)
    print(f"  {duck_rows:,} rows in {duck_s:.1f} s, peak {duck_peak:.0f} MiB")

    results = []
    backends = [("SQLite", lambda: f"sqlite:///{a.work / 'bench.db'}")]
    if not a.no_pg:
        backends.append(("PostgreSQL", lambda: fresh_pg("risk_bench")))
    for name, make_url in backends:
        if name == "SQLite":
            (a.work / "bench.db").unlink(missing_ok=True)
        var = a.work / f"var-{name.lower()}"
        shutil.rmtree(var, ignore_errors=True)
        print(f"risk run on {name} …", flush=True)
        seconds, peak, summary = risk_run(landing, make_url(), var)
        results.append((name, seconds, peak, per_source(summary)))
        print(f"  {seconds:.1f} s, peak {peak:.0f} MiB, {seconds / duck_s:.1f} × DuckDB")

    print()
    print(f"| backend | wall s | peak MiB | × DuckDB ({duck_s:.1f} s) |")
    print("|---|---:|---:|---:|")
    for name, seconds, peak, _ in results:
        print(f"| {name} | {seconds:.1f} | {peak:.0f} | {seconds / duck_s:.1f} |")
    print()
    print("| backend | source | rows | rows/s | read s | validate s | store s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, _, _, sources in results:
        for src, v in sources.items():
            rate = v["rows"] / v["seconds"] if v["seconds"] else 0
            print(f"| {name} | {src} | {v['rows']:,} | {rate:,.0f} | {v['read']:.1f} | {v['validate']:.1f} "
                  f"| {v['store']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
